package app

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const exampleConfig = "../../../../deploy/config/mailmon.example.yaml"

// The example config documents every key: a key added to Config without
// an entry in the example fails here.
func TestExampleConfigHasEveryKey(t *testing.T) {
	setExampleSecrets(t)
	if _, err := Load(exampleConfig); err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	collectNodePaths(doc.Content[0], "", inFile)
	for _, path := range configPaths(reflect.TypeFor[Config](), "") {
		if !inFile[path] {
			t.Errorf("deploy/config/mailmon.example.yaml does not document %s", path)
		}
	}
}

// configPaths lists the dotted YAML key of every leaf of a config struct;
// list elements appear as "[]".
func configPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, configPaths(ft.Elem(), path+"[]")...)
			continue
		}
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 && !strings.Contains(ft.PkgPath(), "time") {
			out = append(out, configPaths(ft, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func collectNodePaths(n *yaml.Node, prefix string, into map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := n.Content[i].Value
			if prefix != "" {
				path = prefix + "." + path
			}
			into[path] = true
			collectNodePaths(n.Content[i+1], path, into)
		}
	case yaml.SequenceNode:
		for _, child := range n.Content {
			collectNodePaths(child, prefix+"[]", into)
		}
	}
}
