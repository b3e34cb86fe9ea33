package configdoc

import (
	"bytes"
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailmon/mailmon/services/internal/config"
)

// commentWidth is where comments wrap, indentation included.
const commentWidth = 80

var (
	secretType        = reflect.TypeFor[config.Secret]()
	durationType      = reflect.TypeFor[config.Duration]()
	yamlMarshalerType = reflect.TypeFor[yaml.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// ExampleYAML writes example, a root config struct holding example
// values, as a YAML file: header (comment lines, written as given) first,
// then every key with its documentation as comments and its value. A
// Secret is written as its raw text, so that an example can show
// "${env:NAME:-fallback}"; it must never hold a real secret.
//
// In a list (or map) of structs, the first entry shows every key with its
// comments; later ones only the keys they set, without comments.
func ExampleYAML(src *Source, example any, header string) ([]byte, error) {
	g := &generator{src: src}
	root, err := g.value(reflect.ValueOf(example), 0, true)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(header, "\n"))
	b.WriteString("\n")
	// A blank line before every top-level key (with its comment), as a
	// person would write the file.
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	for i, line := range lines {
		topLevel := line != "" && line[0] != ' ' && line[0] != '-'
		if topLevel && (i == 0 || !strings.HasPrefix(lines[i-1], "#")) {
			b.WriteString("\n")
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}

type generator struct {
	src *Source
}

// value builds the node of v at the given depth; full shows zero-valued
// keys and comments.
func (g *generator) value(v reflect.Value, depth int, full bool) (*yaml.Node, error) {
	t := v.Type()
	switch {
	case t == secretType:
		return scalar(v.String())
	case t == durationType:
		return scalar(shortDuration(v.Interface().(config.Duration).String()))
	case t.Implements(yamlMarshalerType) || t.Implements(textMarshalerType):
		return scalar(v.Interface())
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return scalar(nil)
		}
		return g.value(v.Elem(), depth, full)
	case reflect.Struct:
		return g.mapping(v, depth, full)
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 || isScalar(t.Elem()) {
			n.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			item, err := g.value(v.Index(i), depth+1, full && i == 0)
			if err != nil {
				return nil, err
			}
			if item.Kind == yaml.MappingNode && len(item.Content) > 0 {
				// The first key's comment goes above the "- ", not after it.
				item.HeadComment, item.Content[0].HeadComment = item.Content[0].HeadComment, ""
			}
			n.Content = append(n.Content, item)
		}
		return n, nil
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for i, k := range keys {
			key, err := scalar(k.Interface())
			if err != nil {
				return nil, err
			}
			item, err := g.value(v.MapIndex(k), depth+1, full && i == 0)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, key, item)
		}
		return n, nil
	default:
		return scalar(v.Interface())
	}
}

func (g *generator) mapping(v reflect.Value, depth int, full bool) (*yaml.Node, error) {
	fields, err := g.src.Fields(v.Type())
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		fv := v.Field(f.Index)
		if !full && fv.IsZero() {
			continue
		}
		value, err := g.value(fv, depth+1, full)
		if err != nil {
			return nil, err
		}
		if f.Inline && value.Kind == yaml.MappingNode {
			n.Content = append(n.Content, value.Content...)
			continue
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.Key}
		if full {
			if f.Doc != "" && !f.Shared {
				key.HeadComment = comment(f.Doc, commentWidth-2*depth)
			}
			if f.Line != "" {
				if value.Kind == yaml.ScalarNode || value.Style == yaml.FlowStyle {
					value.LineComment = "# " + f.Line
				} else {
					key.LineComment = "# " + f.Line
				}
			}
		}
		n.Content = append(n.Content, key, value)
	}
	if len(n.Content) == 0 {
		n.Style = yaml.FlowStyle
	}
	return n, nil
}

func isScalar(t reflect.Type) bool {
	if t == secretType || t.Implements(yamlMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		return false
	}
	return true
}

func scalar(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	return &n, nil
}

// comment wraps text into "# " lines no wider than width; paragraphs are
// separated by a line holding "#".
func comment(text string, width int) string {
	width = max(width-2, 30)
	var lines []string
	for i, p := range strings.Split(text, "\n\n") {
		if i > 0 {
			lines = append(lines, "#")
		}
		line := ""
		for _, word := range strings.Fields(p) {
			if line != "" && len(line)+1+len(word) > width {
				lines = append(lines, "# "+line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		if line != "" {
			lines = append(lines, "# "+line)
		}
	}
	return strings.Join(lines, "\n")
}

// shortDuration drops the zero units Go's form ends with: "1h0m0s" reads
// "1h", "10m0s" "10m"; "5m30s" stays.
func shortDuration(text string) string {
	if strings.HasSuffix(text, "m0s") || strings.HasSuffix(text, "h0s") {
		text = strings.TrimSuffix(text, "0s")
	}
	if strings.HasSuffix(text, "h0m") {
		text = strings.TrimSuffix(text, "0m")
	}
	return text
}
