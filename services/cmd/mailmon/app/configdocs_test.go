package app

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/config/configdoc"
)

var updateConfigDocs = flag.Bool("update-config-docs", false, "rewrite deploy/config/mailmon.example.yaml and the README config tables from the field comments")

// regenerateConfigDocs is the command that rewrites the generated files.
const regenerateConfigDocs = "go tool task config-docs"

// generatedConfigDocs returns every file generated from the config
// structs' field comments, by path relative to the module: the example
// config and the configuration table of each worker's README (the README
// beside the package that declares a section's type).
func generatedConfigDocs(t *testing.T) (moduleDir string, files map[string][]byte) {
	t.Helper()
	moduleDir, err := configdoc.ModuleDir(".")
	if err != nil {
		t.Fatal(err)
	}
	src, err := configdoc.NewSource(moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string][]byte{}
	example, err := configdoc.ExampleYAML(src, exampleValues(), exampleConfigHeader)
	if err != nil {
		t.Fatal(err)
	}
	files["deploy/config/mailmon.example.yaml"] = example

	defaults := reflect.ValueOf(DefaultConfig())
	root := defaults.Type()
	const modulePath = "github.com/mailmon/mailmon/"
	for i := range root.NumField() {
		field := root.Field(i)
		if _, _, ok := config.YAMLKey(field); !ok || field.Type.Kind() != reflect.Struct {
			continue
		}
		pkg, ok := strings.CutPrefix(field.Type.PkgPath(), modulePath)
		if !ok || !strings.HasPrefix(pkg, "services/") || strings.HasPrefix(pkg, "services/internal/") || strings.HasPrefix(pkg, "services/cmd/") {
			continue // shared sections are documented in the example only
		}
		readmePath := pkg + "/README.md"
		readme, err := os.ReadFile(filepath.Join(moduleDir, readmePath))
		if err != nil {
			t.Fatalf("section %s: %v", field.Name, err)
		}
		table, err := configdoc.Table(src, defaults.Field(i).Interface())
		if err != nil {
			t.Fatal(err)
		}
		updated, err := configdoc.ReplaceTable(readme, table)
		if err != nil {
			t.Fatalf("%s: %v", readmePath, err)
		}
		files[readmePath] = updated
	}
	return moduleDir, files
}

// TestConfigDocsMatchTheSource fails when the example config or a README's
// configuration table no longer matches the field comments, yaml tags and
// defaults they are generated from.
func TestConfigDocsMatchTheSource(t *testing.T) {
	moduleDir, files := generatedConfigDocs(t)
	for path, want := range files {
		full := filepath.Join(moduleDir, path)
		if *updateConfigDocs {
			if err := os.WriteFile(full, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the config field comments generate (first difference at line %d); run `%s` and commit the result",
				path, firstDifferentLine(got, want), regenerateConfigDocs)
		}
	}
}

func firstDifferentLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestEveryConfigKeyIsDocumented fails for a config field, at any depth,
// without a doc comment (or a line comment, or a mention in the comment of
// the field declared just before it): the comment is the key's only
// documentation.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	moduleDir, err := configdoc.ModuleDir(".")
	if err != nil {
		t.Fatal(err)
	}
	src, err := configdoc.NewSource(moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := configdoc.Undocumented(src, reflect.TypeFor[Config]())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range missing {
		t.Errorf("config key %s has no doc comment on its Go field", path)
	}
}
