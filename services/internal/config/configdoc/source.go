// Package configdoc generates mailmon's configuration documentation from
// one source: the doc comments of the config struct fields, their yaml
// tags and the default values. From them it writes the example config
// (every key, its comment and an example value) and each worker README's
// table of keys, and lists the fields nobody documented.
//
// A field is documented by its doc comment (the YAML comment above the
// key), by a line comment after it (the comment at the end of the key's
// line), or, for fields declared together such as RetryMin and RetryMax,
// by the doc comment of the field just before it when that comment names
// it. In the generated text the Go names of a struct's fields become
// their YAML keys, so "RetryMin and RetryMax bound ..." reads "retry_min
// and retry_max bound ...".
package configdoc

import (
	"bytes"
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Source reads the doc comments of config structs from the module's Go
// source, one package at a time.
type Source struct {
	moduleDir  string
	modulePath string
	// structs maps a package path to its struct types by name.
	structs map[string]map[string]*ast.StructType
}

// NewSource reads the module whose go.mod is in moduleDir.
func NewSource(moduleDir string) (*Source, error) {
	data, err := os.ReadFile(filepath.Join(moduleDir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	var path string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			path = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("configdoc: no module line in %s", filepath.Join(moduleDir, "go.mod"))
	}
	return &Source{moduleDir: moduleDir, modulePath: path, structs: map[string]map[string]*ast.StructType{}}, nil
}

// ModuleDir finds the directory of the go.mod above dir (a test runs in
// its package's directory).
func ModuleDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("configdoc: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("configdoc: no go.mod above %s", dir)
		}
		dir = parent
	}
}

// Field is one key of a config struct with its documentation.
type Field struct {
	// Index is the field's index in its struct, for reflect.
	Index int
	// Key is the field's YAML key; Inline marks a ",inline" field.
	Key    string
	Inline bool
	// GoName is the field's name in Go.
	GoName string
	// Doc is the doc comment, paragraphs separated by a blank line, the
	// lines of a paragraph joined; Go field names are replaced by keys.
	Doc string
	// Line is the line comment after the field, likewise.
	Line string
	// Shared marks a field documented by the previous field's comment,
	// which names it; Doc is that comment.
	Shared bool
}

// Documented reports whether the field has any documentation.
func (f Field) Documented() bool { return f.Doc != "" || f.Line != "" }

// Fields returns the keys of the struct type t in declaration order, each
// with its documentation. A type whose source is not in the module (or
// is not a named struct) is an error.
func (s *Source) Fields(t reflect.Type) ([]Field, error) {
	if t.Kind() != reflect.Struct || t.Name() == "" {
		return nil, fmt.Errorf("configdoc: %v is not a named struct type", t)
	}
	st, err := s.structType(t)
	if err != nil {
		return nil, err
	}
	type comments struct {
		doc, line string
		shared    bool
	}
	byName := map[string]comments{}
	var previousDoc string
	for _, f := range st.Fields.List {
		doc, line := f.Doc.Text(), f.Comment.Text()
		for _, name := range f.Names {
			c := comments{doc: doc, line: line}
			if doc == "" && line == "" && previousDoc != "" && mentions(previousDoc, name.Name) {
				c = comments{doc: previousDoc, shared: true}
			}
			byName[name.Name] = c
		}
		if len(f.Names) == 0 { // embedded
			byName[embeddedName(f.Type)] = comments{doc: doc, line: line}
		}
		if doc != "" {
			previousDoc = doc
		} else if line != "" {
			previousDoc = ""
		}
	}
	var fields []Field
	// keys renames every field where a comment opens with it; inText only
	// the values, not the sections, in the rest of a comment, since a
	// section's name (ClickHouse, NATS) is as often the product's.
	keys, inText := map[string]string{}, map[string]string{}
	for i := range t.NumField() {
		rf := t.Field(i)
		key, inline, ok := config.YAMLKey(rf)
		if !ok {
			continue
		}
		keys[rf.Name] = key
		if isScalar(rf.Type) || rf.Type.Kind() != reflect.Struct {
			inText[rf.Name] = key
		}
		c := byName[rf.Name]
		fields = append(fields, Field{Index: i, Key: key, Inline: inline, GoName: rf.Name, Doc: c.doc, Line: c.line, Shared: c.shared})
	}
	for i, f := range fields {
		fields[i].Doc = renameFields(flatten(f.Doc), keys, inText)
		fields[i].Line = renameFields(flatten(f.Line), keys, inText)
	}
	return fields, nil
}

func embeddedName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.StarExpr:
		return embeddedName(t.X)
	}
	return ""
}

func mentions(text, name string) bool {
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(text)
}

// flatten joins the lines of each paragraph of a comment with spaces and
// separates paragraphs with one blank line.
func flatten(text string) string {
	var paragraphs []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		lines := strings.Fields(p)
		if len(lines) > 0 {
			paragraphs = append(paragraphs, strings.Join(lines, " "))
		}
	}
	return strings.Join(paragraphs, "\n\n")
}

var (
	goIdentifier = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)
	// subjectList is the names a comment opens with: "RetryMin and
	// RetryMax bound ...", "IPs, CIDRs and Domains are ...".
	subjectList = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*(?:(?:, | and | or |, and )[A-Z][A-Za-z0-9]*)*\b`)
	// acronym is a name that is all capitals (IPs, IPv6, URL, CIDRs).
	acronym = regexp.MustCompile(`^[A-Z]+(?:s|v[46])?$`)
)

// renameFields replaces the Go names of the struct's fields by their YAML
// keys: every name of keys the comment opens with, and in the rest of the
// text the names of inText that cannot be ordinary words – compound names (RetryMin) anywhere,
// and single words (Memory) inside a sentence. An all-capitals name (IPs,
// URL) is left alone past the opening: in prose it is more often the word.
func renameFields(text string, keys, inText map[string]string) string {
	opening := subjectList.FindString(text)
	renamedOpening := goIdentifier.ReplaceAllStringFunc(opening, func(word string) string {
		if key, ok := keys[word]; ok {
			return key
		}
		return word
	})
	// Only rename the opening when every name in it is a field: "Postfix
	// closes ..." opens with a word, not a key.
	openingNames := goIdentifier.FindAllString(opening, -1)
	allFields := len(openingNames) > 0
	for _, name := range openingNames {
		if _, ok := keys[name]; !ok {
			allFields = false
		}
	}
	rest := text
	if allFields {
		rest = text[len(opening):]
	} else {
		renamedOpening = ""
	}
	var b strings.Builder
	b.WriteString(renamedOpening)
	last := 0
	for _, loc := range goIdentifier.FindAllStringIndex(rest, -1) {
		word := rest[loc[0]:loc[1]]
		key, ok := inText[word]
		if !ok || acronym.MatchString(word) || (!compound(word) && startsSentence(rest[:loc[0]], b.Len() == 0 && loc[0] == 0)) {
			continue
		}
		b.WriteString(rest[last:loc[0]])
		b.WriteString(key)
		last = loc[1]
	}
	b.WriteString(rest[last:])
	return b.String()
}

// compound reports a name of more than one word (RetryMin, TLSCAFile).
func compound(name string) bool {
	return strings.IndexFunc(name[1:], func(r rune) bool { return r >= 'A' && r <= 'Z' }) >= 0
}

// startsSentence reports whether a word preceded by before opens a
// sentence (or the text).
func startsSentence(before string, atStart bool) bool {
	trimmed := strings.TrimRight(before, " ")
	return atStart || trimmed == "" || strings.HasSuffix(trimmed, ".") || strings.HasSuffix(trimmed, ":")
}

// structType finds the declaration of t in its package's source.
func (s *Source) structType(t reflect.Type) (*ast.StructType, error) {
	pkg := t.PkgPath()
	types, ok := s.structs[pkg]
	if !ok {
		var err error
		types, err = s.parsePackage(pkg)
		if err != nil {
			return nil, err
		}
		s.structs[pkg] = types
	}
	st, ok := types[t.Name()]
	if !ok {
		return nil, fmt.Errorf("configdoc: struct %s not found in the source of %s", t.Name(), pkg)
	}
	return st, nil
}

func (s *Source) parsePackage(pkg string) (map[string]*ast.StructType, error) {
	rel, ok := strings.CutPrefix(pkg, s.modulePath)
	if !ok {
		return nil, fmt.Errorf("configdoc: package %s is outside module %s", pkg, s.modulePath)
	}
	dir := filepath.Join(s.moduleDir, filepath.FromSlash(strings.TrimPrefix(rel, "/")))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("configdoc: %w", err)
	}
	// Non-test files first: a type an external test package declares under
	// the same name must not shadow the package's own.
	isTest := func(e os.DirEntry) int {
		if strings.HasSuffix(e.Name(), "_test.go") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(entries, func(a, b os.DirEntry) int { return cmp.Compare(isTest(a), isTest(b)) })
	types := map[string]*ast.StructType{}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		// Test files count too: a package's tests may declare config structs.
		if e.IsDir() || !strings.HasSuffix(name, ".go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("configdoc: %w", err)
		}
		if !bytes.Contains(src, []byte("struct")) {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, name), src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("configdoc: %w", err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				if _, seen := types[ts.Name.Name]; seen {
					continue
				}
				if st, ok := ts.Type.(*ast.StructType); ok {
					types[ts.Name.Name] = st
				}
			}
		}
	}
	return types, nil
}
