package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads; a real config is a few kilobytes.
const maxFileSize = 4 << 20

// maxNodes bounds how many YAML nodes one Load decodes, counting every
// expansion of an alias, so an alias bomb is a problem and not an outage.
const maxNodes = 100_000

// Load reads the YAML file at path into dst, a pointer to a struct that
// already holds the defaults, in this order:
//
//  1. parse the file into a YAML node tree;
//  2. expand ${env:NAME} in scalar values (never in keys), from the
//     environment or else the systemd credential NAME;
//  3. decode strictly: keys absent from the file keep their default, keys
//     the struct does not have are problems, and so is every value of the
//     wrong type;
//  4. call dst's Validate() error, if it has one.
//
// Everything wrong with the file's content comes back at once as Problems,
// each with its key path and line. A file that cannot be read gives the
// wrapped *fs.PathError instead.
func Load(path string, dst any) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxFileSize+1))
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return Problems{{Message: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}}
	}
	return decode(data, dst, lookupEnvOrCredential)
}

// decode is Load after the file is read; lookup resolves ${env:NAME}.
func decode(data []byte, dst any, lookup func(string) (string, bool)) error {
	target := reflect.ValueOf(dst)
	if target.Kind() != reflect.Pointer || target.IsNil() || target.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", dst)
	}
	root, problems := parse(data)
	d := &decoder{
		problems:  problems,
		lines:     map[string]int{},
		fromEnv:   map[*yaml.Node][]string{},
		expanding: map[*yaml.Node]bool{},
	}
	if root != nil {
		d.expand(root, "", lookup)
		d.decode(root, target.Elem(), "")
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		var check Check
		check.Nest("", v.Validate())
		for _, p := range check.problems {
			if p.Line == 0 {
				p.Line = d.lines[p.Path]
			}
			d.problems = append(d.problems, p)
		}
	}
	if len(d.problems) > 0 {
		return d.problems
	}
	return nil
}

// parse returns the document's top node, or nil for an empty file.
func parse(data []byte) (*yaml.Node, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Problems{syntaxProblem(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, Problems{syntaxProblem(err)}
		}
		return nil, Problems{{Line: line, Message: "a config file holds one YAML document, found a second one"}}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

var lineInMessage = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxProblem turns a parser error ("yaml: line 3: did not find expected
// key") into a problem at that line.
func syntaxProblem(err error) Problem {
	line, msg := splitLine(err.Error())
	return Problem{Line: line, Message: "invalid YAML: " + msg}
}

func splitLine(msg string) (int, string) {
	m := lineInMessage.FindStringSubmatch(msg)
	if m == nil {
		return 0, strings.TrimPrefix(msg, "yaml: ")
	}
	line, _ := strconv.Atoi(m[1])
	return line, msg[len(m[0]):]
}

type decoder struct {
	problems Problems
	// lines maps each key path seen in the file to its line, so problems
	// found later by Validate point into the file too.
	lines map[string]int
	// fromEnv marks scalars whose text came (partly) from the environment,
	// with the variable names, so their decode problems never quote them.
	fromEnv   map[*yaml.Node][]string
	expanding map[*yaml.Node]bool
	nodes     int
	tooLarge  bool
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

var envReference = regexp.MustCompile(`\$\{env:([^}]*)\}`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellReference is a whole value written as a shell variable, ${NAME}.
var shellReference = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

// expand replaces ${env:NAME} in every scalar value below n. Keys are left
// alone, and so are aliases (the anchored node is expanded once, where it
// is defined). The result stays one scalar: the environment can supply a
// value, never YAML structure.
func (d *decoder) expand(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expand(n.Content[i+1], joinPath(path, n.Content[i].Value), lookup)
		}
	case yaml.SequenceNode:
		for i, child := range n.Content {
			d.expand(child, fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case yaml.ScalarNode:
		if shellReference.MatchString(n.Value) {
			// Taken literally it would become the value itself (a password
			// "${NAME}"): almost surely a reference missing its env: prefix.
			d.add(path, n.Line, "%s is not expanded: write ${env:%s}", n.Value, n.Value[2:len(n.Value)-1])
			return
		}
		if !strings.Contains(n.Value, "${env:") {
			return
		}
		var names []string
		expanded := envReference.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := ref[len("${env:") : len(ref)-1]
			// ${env:NAME:-fallback} uses fallback when NAME is unset or
			// empty, as in the shell.
			name, fallback, hasFallback := strings.Cut(name, ":-")
			if !envName.MatchString(name) {
				d.add(path, n.Line, "invalid environment reference %q: a name is letters, digits and _", ref)
				return ""
			}
			names = append(names, name)
			value, ok := lookup(name)
			if hasFallback && value == "" {
				return fallback
			}
			if !ok {
				d.add(path, n.Line, "environment variable %s is not set", name)
			}
			return value
		})
		if strings.Contains(envReference.ReplaceAllString(n.Value, ""), "${env:") {
			d.add(path, n.Line, "unterminated ${env:...} reference")
		}
		n.Value = expanded
		if len(names) > 0 {
			d.fromEnv[n] = names
		}
		// A plain, untagged scalar is typed again from its new text, so
		// "port: ${env:PORT}" can fill an int; quote the reference to keep
		// a string.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	timeType            = reflect.TypeFor[time.Time]()
)

// decode fills v from n. Structs, maps, slices and pointers are walked here
// so every unknown key and every bad value is found with its exact path;
// everything else is a leaf handed to the YAML library.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.tooLarge {
		return
	}
	d.nodes++
	if d.nodes > maxNodes {
		d.tooLarge = true
		d.add(path, n.Line, "document expands to more than %d nodes (too many aliases?)", maxNodes)
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.expanding[n] {
			d.add(path, n.Line, "alias refers to itself")
			return
		}
		d.expanding[n] = true
		d.decode(n.Alias, v, path)
		delete(d.expanding, n)
		return
	}
	d.lines[path] = n.Line
	if isLeaf(v.Type()) || n.ShortTag() == "!!null" {
		d.decodeLeaf(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeLeaf(n, v, path)
	}
}

func isLeaf(t reflect.Type) bool {
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) ||
		t == timeType {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8
	default:
		return true
	}
}

func (d *decoder) decodeLeaf(n *yaml.Node, v reflect.Value, path string) {
	err := n.Decode(v.Addr().Interface())
	if err == nil {
		return
	}
	if names, ok := d.fromEnv[n]; ok {
		// Any message about the value would quote it, and it may be a secret.
		d.add(path, n.Line, "the value of %s does not fit here: expected a %s", strings.Join(names, ", "), typeName(v.Type()))
		return
	}
	var typeErr *yaml.TypeError
	switch {
	case errors.As(err, &typeErr) && n.Kind == yaml.ScalarNode:
		d.add(path, n.Line, "expected a %s, got %q", typeName(v.Type()), shorten(n.Value))
	case errors.As(err, &typeErr):
		d.add(path, n.Line, "expected a %s, got a %s", typeName(v.Type()), kindName(n))
	default:
		// An UnmarshalYAML error, e.g. "invalid duration \"abc\"".
		_, text := splitLine(err.Error())
		d.add(path, n.Line, "%s", text)
	}
}

func shorten(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping of keys, got a %s", kindName(n))
		return
	}
	fields, err := fieldsOf(v.Type())
	if err != nil {
		d.add(path, n.Line, "%v", err)
		return
	}
	d.eachKey(n, path, func(key, value *yaml.Node, keyPath string) {
		index, ok := fields[key.Value]
		if !ok {
			d.add(keyPath, key.Line, "unknown key")
			return
		}
		d.decode(value, v.FieldByIndex(index), keyPath)
	}, func(merged *yaml.Node) {
		d.decode(merged, v, path)
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping, got a %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	keyType, elemType := v.Type().Key(), v.Type().Elem()
	d.eachKey(n, path, func(keyNode, value *yaml.Node, keyPath string) {
		key := reflect.New(keyType).Elem()
		if err := keyNode.Decode(key.Addr().Interface()); err != nil {
			d.add(keyPath, keyNode.Line, "invalid key: expected a %s", typeName(keyType))
			return
		}
		// Start from the default entry, if any, so keys absent from the
		// file keep their default inside map entries too.
		elem := reflect.New(elemType).Elem()
		if existing := v.MapIndex(key); existing.IsValid() {
			elem.Set(existing)
		}
		d.decode(value, elem, keyPath)
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		v.SetMapIndex(key, elem)
	}, func(merged *yaml.Node) {
		d.decode(merged, v, path)
	})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "expected a list, got a %s", kindName(n))
		return
	}
	// A list in the file replaces the default list: merging lists by
	// position would surprise more than it helps.
	list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, list.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(list)
}

// eachKey calls visit for every key of a mapping, reporting duplicate and
// non-scalar keys, and merge for every "<<: *anchor" source first, so that
// keys written out override merged ones as YAML specifies.
func (d *decoder) eachKey(n *yaml.Node, path string, visit func(key, value *yaml.Node, keyPath string), merge func(*yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			sources := []*yaml.Node{value}
			if value.Kind == yaml.SequenceNode {
				sources = value.Content
			}
			for _, source := range sources {
				target := source
				if target.Kind == yaml.AliasNode && target.Alias != nil {
					target = target.Alias
				}
				if target.Kind != yaml.MappingNode {
					d.add(joinPath(path, "<<"), key.Line, "can only merge a mapping or a list of mappings")
					continue
				}
				merge(source)
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.add(path, key.Line, "keys must be plain scalars, got a %s", kindName(key))
			continue
		}
		keyPath := joinPath(path, key.Value)
		if first, dup := seen[key.Value]; dup {
			d.add(keyPath, key.Line, "duplicate key (first set at line %d)", first)
			continue
		}
		seen[key.Value] = key.Line
		visit(key, value, keyPath)
	}
}

// fieldsOf maps YAML keys to struct fields the way the YAML library names
// them: the yaml tag's name, else the lower-cased field name; "-" hides a
// field and ",inline" lifts an embedded struct's keys into its parent.
func fieldsOf(t reflect.Type) (map[string][]int, error) {
	fields := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, inline, ok := YAMLKey(f)
		if !ok {
			continue
		}
		if inline {
			if f.Type.Kind() != reflect.Struct {
				return nil, fmt.Errorf("config: inline field %s of %v must be a struct", f.Name, t)
			}
			inner, err := fieldsOf(f.Type)
			if err != nil {
				return nil, err
			}
			for key, index := range inner {
				if _, dup := fields[key]; dup {
					return nil, fmt.Errorf("config: key %q appears twice in %v", key, t)
				}
				fields[key] = append([]int{i}, index...)
			}
			continue
		}
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("config: key %q appears twice in %v", name, t)
		}
		fields[name] = []int{i}
	}
	return fields, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	default:
		return "single value"
	}
}

// typeName names a Go type for an operator: "duration", not "config.Duration".
func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration](), reflect.TypeFor[time.Duration]():
		return "duration"
	case reflect.TypeFor[ByteSize]():
		return "size"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "mapping"
	default:
		return t.String()
	}
}
