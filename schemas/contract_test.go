package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The contract test: for every kind, the Go type, the JSON Schema, the
// example, the subject and the ClickHouse table agree, and nothing exists
// without a kind. A new type without the other four fails here.

const examplesDir = "testdata/events"

var typePattern = regexp.MustCompile(`^mailmon\.([a-z]+)\.v([1-9][0-9]*)\.([a-z][a-z_]*)$`)

func TestContractNaming(t *testing.T) {
	subjects := map[string]string{}
	tables := map[string]string{}
	for _, k := range Kinds() {
		m := typePattern.FindStringSubmatch(k.Type)
		if m == nil {
			t.Errorf("type %q does not read mailmon.<domain>.v<N>.<event>", k.Type)
			continue
		}
		domain, version, event := m[1], m[2], m[3]
		if want := "mailmon." + domain + "." + event; k.Subject != want {
			t.Errorf("%s: subject %q, want %q (the type's domain and event, no version)", k.Type, k.Subject, want)
		}
		wantTable := domain + "_" + event
		if version != "1" {
			wantTable += "_v" + version
		}
		if k.Table != wantTable {
			t.Errorf("%s: table %q, want %q", k.Type, k.Table, wantTable)
		}
		if other, dup := subjects[k.Subject]; dup {
			t.Errorf("%s and %s share subject %s", other, k.Type, k.Subject)
		}
		subjects[k.Subject] = k.Type
		if other, dup := tables[k.Table]; dup {
			t.Errorf("%s and %s share table %s", other, k.Type, k.Table)
		}
		tables[k.Table] = k.Type
		if got, ok := KindByType(k.Type); !ok || got != k {
			t.Errorf("KindByType(%q) = %v, %v", k.Type, got, ok)
		}
		if got, err := KindOf(k.New()); err != nil || got != k {
			t.Errorf("KindOf(%s.New()) = %v, %v", k.Type, got, err)
		}
	}
	if n := len(Kinds()); n != 22 {
		t.Errorf("%d kinds registered, the v1 contract has 22", n)
	}
}

func TestContractPerKind(t *testing.T) {
	migrations, _ := loadMigrations(t)
	for _, k := range Kinds() {
		t.Run(k.Type, func(t *testing.T) {
			schema := compileSchema(t, k)
			raw, err := os.ReadFile(filepath.Join(examplesDir, k.Type+".json"))
			if err != nil {
				t.Fatalf("example: %v", err)
			}
			doc := decodeGeneric(t, raw)
			if err := schema.Validate(doc); err != nil {
				t.Errorf("example does not validate against its schema: %v", err)
			}

			ev, err := Decode(raw)
			if err != nil {
				t.Fatalf("example does not decode strictly: %v", err)
			}
			if got, _ := KindOf(ev); got != k {
				t.Fatalf("example decoded as %v, want %v", got, k.Type)
			}
			if h := ev.EventHeader(); h.Type != k.Type {
				t.Errorf("example type %q, want %q", h.Type, k.Type)
			}
			if err := Validate(ev); err != nil {
				t.Errorf("example fails Validate: %v", err)
			}
			again, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if re := decodeGeneric(t, again); !reflect.DeepEqual(doc, re) {
				t.Errorf("example does not survive a Go round trip:\n have %s\n got  %s", compact(t, raw), again)
			}

			table, ok := migrations[k.Table]
			if !ok {
				t.Fatalf("no migration creates table %s", k.Table)
			}
			if diff := diffColumns(table.columns, Columns(k)); diff != "" {
				t.Errorf("DDL of %s disagrees with Columns: %s", k.Table, diff)
			}
			checkTableKey(t, k, table)
			checkRow(t, k, ev)
		})
	}
}

// diffColumns names the first difference between the DDL's columns and
// the Go type's, or returns "".
func diffColumns(ddl, want []Column) string {
	for i := range max(len(ddl), len(want)) {
		switch {
		case i >= len(ddl):
			return fmt.Sprintf("column %d %v is missing from the DDL", i+1, want[i])
		case i >= len(want):
			return fmt.Sprintf("column %d %v is not in the Go type", i+1, ddl[i])
		case ddl[i] != want[i]:
			return fmt.Sprintf("column %d is %v in the DDL, %v from the Go type", i+1, ddl[i], want[i])
		}
	}
	return ""
}

// compileSchema loads k's schema from the embedded JSONSchemas, as a
// subscriber would get it, and checks its header against the kind.
func compileSchema(t *testing.T, k Kind) *jsonschema.Schema {
	t.Helper()
	raw, err := fs.ReadFile(JSONSchemas, k.SchemaFile())
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	top, _ := doc.(map[string]any)
	if top["$schema"] != jsonSchemaDraft {
		t.Errorf("schema $schema = %v, want draft 2020-12", top["$schema"])
	}
	if top["$id"] != SchemaBaseURL+k.SchemaFile() {
		t.Errorf("schema $id = %v", top["$id"])
	}
	if top["title"] != k.Type || top["additionalProperties"] != false {
		t.Errorf("schema title %v / additionalProperties %v", top["title"], top["additionalProperties"])
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := "mem:///" + k.SchemaFile()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

// TestSchemasReject proves the schemas are not vacuous: each rejects a
// document with an unknown field, a missing required field, another kind's
// type or a malformed time.
func TestSchemasReject(t *testing.T) {
	mutations := []struct {
		name   string
		mutate func(t *testing.T, k Kind, doc map[string]any)
	}{
		{"unknown field", func(_ *testing.T, _ Kind, doc map[string]any) { doc["colour"] = "blue" }},
		{"missing id", func(_ *testing.T, _ Kind, doc map[string]any) { delete(doc, "id") }},
		{"missing source host", func(_ *testing.T, _ Kind, doc map[string]any) { delete(doc["source"].(map[string]any), "host") }},
		{"other type", func(_ *testing.T, k Kind, doc map[string]any) {
			doc["type"] = TypeAlertRaised
			if k.Type == TypeAlertRaised {
				doc["type"] = TypeProbeSent
			}
		}},
		{"bad time", func(_ *testing.T, _ Kind, doc map[string]any) { doc["time"] = "14/03/2025 09:26" }},
		{"missing kind field", func(t *testing.T, k Kind, doc map[string]any) {
			// The first required field after the header.
			for _, f := range Columns(k)[5:] {
				if _, ok := doc[f.Name]; ok && !isOptional(k, f.Name) {
					delete(doc, f.Name)
					return
				}
			}
			t.Fatalf("%s has no required field of its own", k.Type)
		}},
	}
	for _, k := range Kinds() {
		schema := compileSchema(t, k)
		raw, err := os.ReadFile(filepath.Join(examplesDir, k.Type+".json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mutations {
			t.Run(k.Type+"/"+m.name, func(t *testing.T) {
				doc := decodeGeneric(t, raw).(map[string]any)
				m.mutate(t, k, doc)
				if err := schema.Validate(doc); err == nil {
					t.Errorf("schema accepted a document with %s", m.name)
				}
			})
		}
	}
}

func isOptional(k Kind, column string) bool {
	for _, f := range plans[k.GoType()].fields {
		if f.Column == column {
			return f.Optional
		}
	}
	return true
}

// checkTableKey checks the engine and key rules that make a duplicate event
// merge away and keep the table portable.
func checkTableKey(t *testing.T, k Kind, table ddlTable) {
	t.Helper()
	if table.engine != "ReplacingMergeTree()" {
		t.Errorf("%s: engine %q, want ReplacingMergeTree()", k.Table, table.engine)
	}
	if table.partition != "toYYYYMMDD(time)" {
		t.Errorf("%s: partition %q, want toYYYYMMDD(time)", k.Table, table.partition)
	}
	key := table.orderBy
	if len(key) < 2 || key[len(key)-1] != "id" || !slices.Contains(key, "time") {
		t.Errorf("%s: ORDER BY %v must contain time and end in id", k.Table, key)
	}
	types := map[string]string{}
	for _, c := range Columns(k) {
		types[c.Name] = c.Type
	}
	for _, col := range key {
		typ, ok := types[col]
		if !ok {
			t.Errorf("%s: ORDER BY column %s is not a column", k.Table, col)
		}
		if strings.HasPrefix(typ, "Array(") {
			t.Errorf("%s: ORDER BY column %s is an array", k.Table, col)
		}
	}
}

// checkRow checks Row against Columns: one value per column, each of the Go
// type clickhouse-go expects for the column type, holding the field's value.
func checkRow(t *testing.T, k Kind, ev Event) {
	t.Helper()
	row := Row(ev)
	cols := Columns(k)
	if len(row) != len(cols) {
		t.Fatalf("Row has %d values for %d columns", len(row), len(cols))
	}
	v := reflect.ValueOf(ev).Elem()
	for i, c := range cols {
		want, err := goTypeFor(c.Type)
		if err != nil {
			t.Errorf("column %s: %v", c.Name, err)
			continue
		}
		if got := reflect.TypeOf(row[i]); got != want {
			t.Errorf("Row[%d] (%s %s) is %v, want %v", i, c.Name, c.Type, got, want)
			continue
		}
		f := plans[k.GoType()].fields[i]
		field := v.FieldByIndex(f.Index).Interface()
		switch fv := field.(type) {
		case bool:
			if (row[i] == uint8(1)) != fv {
				t.Errorf("Row %s = %v for %v", c.Name, row[i], fv)
			}
		case time.Time:
			if !fv.IsZero() && !row[i].(time.Time).Equal(fv) {
				t.Errorf("Row %s = %v for %v", c.Name, row[i], fv)
			}
		default:
			if reflect.TypeOf(field).Kind() == reflect.Slice {
				if reflect.ValueOf(field).Len() == 0 && reflect.ValueOf(row[i]).Len() == 0 {
					continue
				}
				if !reflect.DeepEqual(row[i], field) {
					t.Errorf("Row %s = %v, field holds %v", c.Name, row[i], field)
				}
				continue
			}
			if row[i] != field {
				t.Errorf("Row %s = %v, field holds %v", c.Name, row[i], field)
			}
		}
	}
}

// goTypeFor is the Go type clickhouse-go v2 appends to a column type; kept
// independent of the mapping under test.
func goTypeFor(chType string) (reflect.Type, error) {
	if inner, ok := strings.CutPrefix(chType, "Array("); ok {
		elem, err := goTypeFor(strings.TrimSuffix(inner, ")"))
		if err != nil {
			return nil, err
		}
		return reflect.SliceOf(elem), nil
	}
	switch chType {
	case "String", "LowCardinality(String)":
		return reflect.TypeFor[string](), nil
	case "DateTime('UTC')":
		return reflect.TypeFor[time.Time](), nil
	case "UInt8":
		return reflect.TypeFor[uint8](), nil
	case "UInt16":
		return reflect.TypeFor[uint16](), nil
	case "UInt32":
		return reflect.TypeFor[uint32](), nil
	case "UInt64":
		return reflect.TypeFor[uint64](), nil
	case "Int8":
		return reflect.TypeFor[int8](), nil
	case "Int16":
		return reflect.TypeFor[int16](), nil
	case "Int32":
		return reflect.TypeFor[int32](), nil
	case "Int64":
		return reflect.TypeFor[int64](), nil
	case "Float32":
		return reflect.TypeFor[float32](), nil
	case "Float64":
		return reflect.TypeFor[float64](), nil
	}
	return nil, fmt.Errorf("column type %s has no known Go type", chType)
}

func TestNoOrphans(t *testing.T) {
	schemaFiles := map[string]bool{}
	exampleFiles := map[string]bool{}
	for _, k := range Kinds() {
		schemaFiles[k.SchemaFile()] = true
		exampleFiles[k.Type+".json"] = true
	}
	err := fs.WalkDir(JSONSchemas, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !schemaFiles[p] {
			t.Errorf("jsonschema/%s belongs to no registered kind", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The embedded copy is what ships; the directory is what gets edited.
	onDisk, err := filepath.Glob(filepath.Join(schemaDir, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != len(schemaFiles) {
		t.Errorf("%d files under %s/, %d kinds", len(onDisk), schemaDir, len(schemaFiles))
	}
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !exampleFiles[e.Name()] {
			t.Errorf("%s/%s belongs to no registered kind", examplesDir, e.Name())
		}
	}
	// Every table is a kind's or a listed rollup's; every view feeds a
	// listed rollup (loadMigrations checks that).
	tables, _ := loadMigrations(t)
	for name := range tables {
		isKind := slices.ContainsFunc(Kinds(), func(k Kind) bool { return k.Table == name })
		isRollup := slices.ContainsFunc(Rollups(), func(r Rollup) bool { return r.Table == name })
		if !isKind && !isRollup {
			t.Errorf("table %s has a migration but no kind and is not in Rollups", name)
		}
	}
}

// rollupStates are the aggregate states a rollup may hold: a count
// (distinct ids, or rows; README.md says which rollups count which) and
// states of a fixed size (sums of the messages or sessions a report row
// stands for among them), so merging a month of buckets stays cheap.
var rollupStates = []string{
	"AggregateFunction(uniqExact, String)",
	"AggregateFunction(count)",
	"AggregateFunction(quantiles(0.5, 0.95), Int64)",
	"AggregateFunction(any, String)",
	"AggregateFunction(max, Float64)",
	"AggregateFunction(max, DateTime('UTC'))",
	"AggregateFunction(sum, UInt64)",
}

// TestRollups checks each dashboard rollup against the rules that keep its
// counts right and its retention working: an AggregatingMergeTree table
// partitioned by day of bucket, keyed by every dimension, holding a count
// and only states of a fixed size, and fed by exactly its view from a
// kind's table.
func TestRollups(t *testing.T) {
	tables, views := loadMigrations(t)
	if len(Rollups()) == 0 {
		t.Fatal("no rollups listed")
	}
	for _, r := range Rollups() {
		t.Run(r.Table, func(t *testing.T) {
			if !slices.ContainsFunc(Kinds(), func(k Kind) bool { return k.Table == r.Source }) {
				t.Errorf("source %s is not a kind's table", r.Source)
			}
			table, ok := tables[r.Table]
			if !ok {
				t.Fatalf("no migration creates rollup table %s", r.Table)
			}
			if table.engine != "AggregatingMergeTree()" {
				t.Errorf("engine %q, want AggregatingMergeTree()", table.engine)
			}
			// Retention drops day partitions of the bucket, like the raw tables'.
			if want := "toYYYYMMDD(" + RollupTimeColumn + ")"; table.partition != want {
				t.Errorf("partition %q, want %s", table.partition, want)
			}
			if len(table.columns) == 0 || table.columns[0] != (Column{Name: RollupTimeColumn, Type: "DateTime('UTC')"}) {
				t.Errorf("first column %v, want %s DateTime('UTC')", table.columns[:min(1, len(table.columns))], RollupTimeColumn)
			}
			counts := 0
			for _, c := range table.columns {
				if strings.HasPrefix(c.Type, "AggregateFunction(") {
					if !slices.Contains(rollupStates, c.Type) {
						t.Errorf("column %s is %s, want one of %v", c.Name, c.Type, rollupStates)
					}
					if c.Type == "AggregateFunction(uniqExact, String)" || c.Type == "AggregateFunction(count)" {
						counts++
					}
					if slices.Contains(table.orderBy, c.Name) {
						t.Errorf("aggregate column %s is in ORDER BY", c.Name)
					}
					continue
				}
				// A dimension outside the key would be merged away arbitrarily.
				if !slices.Contains(table.orderBy, c.Name) {
					t.Errorf("dimension %s is not in ORDER BY %v", c.Name, table.orderBy)
				}
			}
			if counts == 0 {
				t.Errorf("no count column (uniqExact of the id, or count)")
			}
			view, ok := views[r.View]
			if !ok {
				t.Fatalf("no migration creates view %s", r.View)
			}
			if view.target != r.Table || view.source != r.Source {
				t.Errorf("view %s feeds %s from %s, want %s from %s", r.View, view.target, view.source, r.Table, r.Source)
			}
		})
	}
	for name, v := range views {
		if !slices.ContainsFunc(Rollups(), func(r Rollup) bool { return r.View == name }) {
			t.Errorf("view %s (into %s) is not in Rollups", name, v.target)
		}
	}
}

// TestEveryEventTypeRegistered finds every struct in the package that embeds
// Header: each must be registered, or it has no subject, schema or table.
func TestEveryEventTypeRegistered(t *testing.T) {
	registered := map[string]bool{}
	for _, k := range Kinds() {
		registered[k.GoType().Name()] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, fl := range st.Fields.List {
				if id, ok := fl.Type.(*ast.Ident); ok && len(fl.Names) == 0 && id.Name == "Header" {
					found++
					if !registered[ts.Name.Name] {
						t.Errorf("%s embeds Header but is not registered in kinds.go", ts.Name.Name)
					}
				}
			}
			return true
		})
	}
	if found != len(Kinds()) {
		t.Errorf("found %d event structs, %d kinds", found, len(Kinds()))
	}
}

// TestPortableDDL keeps the migrations inside what ClickHouse 18.16 and
// current servers both accept (see shared/peers.md).
func TestPortableDDL(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)\b(DateTime64|Date32|IPv4|IPv6|Map|Bool|TTL|INDEX|JSON|Object|Int128|Int256|UInt128|UInt256)\b`)
	err := fs.WalkDir(Migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(Migrations, p)
		if err != nil {
			return err
		}
		stmt := stripComments(string(raw))
		if m := forbidden.FindString(stmt); m != "" {
			t.Errorf("%s uses %s, which ClickHouse 18.16 rejects", p, m)
		}
		if strings.Count(stmt, ";") > 1 || (strings.Contains(stmt, ";") && !strings.HasSuffix(strings.TrimSpace(stmt), ";")) {
			t.Errorf("%s holds more than one statement", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type ddlTable struct {
	columns   []Column
	engine    string
	partition string
	orderBy   []string
}

// ddlView is a materialised view that writes into target what it selects
// from source, keeping the rows where holds (its WHERE, whitespace
// collapsed; "" for none).
type ddlView struct {
	target string
	source string
	where  string
}

var (
	createPattern = regexp.MustCompile(`(?is)^\s*CREATE TABLE IF NOT EXISTS ([a-z_][a-z0-9_]*)\s*\((.*)\)\s*ENGINE\s*=\s*(\S+)\s+PARTITION BY\s+(\S+)\s+ORDER BY\s+\(([^)]*)\)\s*;?\s*$`)
	viewPattern   = regexp.MustCompile(`(?is)^\s*CREATE MATERIALIZED VIEW IF NOT EXISTS ([a-z_][a-z0-9_]*)\s+TO\s+([a-z_][a-z0-9_]*)\s+AS\s+SELECT\s+(.*?)\s+FROM\s+([a-z_][a-z0-9_]*)\s+(?:WHERE\s+(.*?)\s+)?GROUP BY\s+([^;]*?)\s*;?\s*$`)
	dropPattern   = regexp.MustCompile(`(?is)^\s*DROP TABLE IF EXISTS ([a-z_][a-z0-9_]*)\s*;?\s*$`)
	selectAlias   = regexp.MustCompile(`(?is)\sAS\s+([a-z_][a-z0-9_]*)$`)
	alterPattern  = regexp.MustCompile(`(?is)^\s*ALTER TABLE ([a-z_][a-z0-9_]*)\s+ADD COLUMN\s+([a-z_][a-z0-9_]*)\s+(.+?)(?:\s+AFTER\s+([a-z_][a-z0-9_]*))?\s*;?\s*$`)
)

// loadMigrations models the shipped migrations (see modelMigrations) and
// fails the test on every problem found.
func loadMigrations(t *testing.T) (map[string]ddlTable, map[string]ddlView) {
	t.Helper()
	tables, views, problems := modelMigrations(Migrations)
	for _, p := range problems {
		t.Error(p)
	}
	return tables, views
}

// modelMigrations applies the migrations in order to a model of the
// tables: CREATE TABLE IF NOT EXISTS makes a table, ALTER TABLE ... ADD
// COLUMN [AFTER c] adds a column, CREATE MATERIALIZED VIEW IF NOT EXISTS v
// TO t AS SELECT ... FROM s [WHERE ...] GROUP BY ... makes a view of a
// listed rollup (see Rollups), and DROP TABLE IF EXISTS v drops a view so
// that a later file can create it again with another query (ClickHouse
// 18.16 cannot alter a view's query). The views returned are the ones that
// exist after the last file, each with its last definition. Any other
// statement is a problem, so the model cannot silently diverge from what
// the server does. It returns the problems found instead of failing, so
// the checks themselves can be tested on sequences that must fail.
func modelMigrations(migrations fs.FS) (map[string]ddlTable, map[string]ddlView, []string) {
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	tables := map[string]ddlTable{}
	views := map[string]ddlView{}
	entries, err := fs.ReadDir(migrations, ".")
	if err != nil {
		return tables, views, []string{err.Error()}
	}
	for i, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			problem("migration %s is not named NNNN_<name>.sql", e.Name())
			return tables, views, problems
		}
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			problem("migration %s: number %d, want %04d (numbers run 0001, 0002, ... without gaps)", e.Name(), n, i+1)
			return tables, views, problems
		}
		raw, err := fs.ReadFile(migrations, e.Name())
		if err != nil {
			problem("%s: %v", e.Name(), err)
			return tables, views, problems
		}
		stmt := stripComments(string(raw))
		if c := createPattern.FindStringSubmatch(stmt); c != nil {
			name := c[1]
			if name != m[2] {
				problem("%s creates %s; name the file after the table", e.Name(), name)
			}
			if _, dup := tables[name]; dup {
				problem("%s creates %s a second time", e.Name(), name)
			}
			var cols []Column
			for _, item := range splitTopLevel(c[2]) {
				colName, colType, ok := strings.Cut(strings.TrimSpace(item), " ")
				if !ok {
					problem("%s: cannot read column %q", e.Name(), item)
					continue
				}
				cols = append(cols, Column{Name: colName, Type: strings.TrimSpace(colType)})
			}
			var key []string
			for _, k := range strings.Split(c[5], ",") {
				key = append(key, strings.TrimSpace(k))
			}
			tables[name] = ddlTable{columns: cols, engine: c[3], partition: c[4], orderBy: key}
			continue
		}
		if a := alterPattern.FindStringSubmatch(stmt); a != nil {
			table, ok := tables[a[1]]
			if !ok {
				problem("%s alters %s before any migration creates it", e.Name(), a[1])
				continue
			}
			col := Column{Name: a[2], Type: strings.TrimSpace(a[3])}
			at := len(table.columns)
			if a[4] != "" {
				at = slices.IndexFunc(table.columns, func(c Column) bool { return c.Name == a[4] }) + 1
				if at == 0 {
					problem("%s: no column %s to add after", e.Name(), a[4])
				}
			}
			table.columns = slices.Insert(table.columns, at, col)
			tables[a[1]] = table
			continue
		}
		if d := dropPattern.FindStringSubmatch(stmt); d != nil {
			name := d[1]
			// Only a view may go: it holds no rows, and the next file
			// creates it again. Dropping a table would lose events.
			if _, isView := views[name]; !isView {
				problem("%s drops %s, which is not a view at that point (only views are dropped; a table's rows would be lost)", e.Name(), name)
				continue
			}
			if m[2] != "drop_"+name {
				problem("%s drops view %s; name the file drop_%s", e.Name(), name, name)
			}
			delete(views, name)
			continue
		}
		if v := viewPattern.FindStringSubmatch(stmt); v != nil {
			name, target, source := v[1], v[2], v[4]
			if name != m[2] {
				problem("%s creates view %s; name the file after the view", e.Name(), name)
			}
			// IF NOT EXISTS would keep the existing view's query on a
			// server that has it, whatever this file says.
			if _, exists := views[name]; exists {
				problem("%s creates view %s a second time without dropping it first (the server would keep the old query)", e.Name(), name)
			}
			if !slices.Contains(Rollups(), Rollup{Table: target, View: name, Source: source}) {
				problem("%s: view %s into %s from %s is not listed in Rollups", e.Name(), name, target, source)
			}
			if _, ok := tables[source]; !ok {
				problem("%s reads %s before any migration creates it", e.Name(), source)
			}
			table, ok := tables[target]
			if !ok {
				problem("%s writes into %s before any migration creates it", e.Name(), target)
			}
			// A view with TO fills the target's columns by name: the
			// selected names must be exactly the target's columns, or
			// the server fills the rest with defaults.
			var selected []string
			for _, item := range splitTopLevel(v[3]) {
				item = strings.TrimSpace(item)
				if a := selectAlias.FindStringSubmatch(item); a != nil {
					item = a[1]
				}
				selected = append(selected, item)
			}
			var want []string
			for _, c := range table.columns {
				want = append(want, c.Name)
			}
			if ok && !slices.Equal(selected, want) {
				problem("%s selects %v, want the columns of %s in order: %v", e.Name(), selected, target, want)
			}
			views[name] = ddlView{target: target, source: source, where: strings.Join(strings.Fields(v[5]), " ")}
			continue
		}
		problem("%s is neither CREATE TABLE IF NOT EXISTS, ALTER TABLE ... ADD COLUMN, CREATE MATERIALIZED VIEW IF NOT EXISTS ... TO nor DROP TABLE IF EXISTS <view>; teach modelMigrations the new statement", e.Name())
	}
	return tables, views, problems
}

func stripComments(sql string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(sql, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// splitTopLevel splits a column list at commas outside parentheses and
// quotes, so DateTime('UTC') and Array(LowCardinality(String)) stay whole.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	quoted := false
	for i, r := range s {
		switch {
		case r == '\'':
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" {
		parts = append(parts, rest)
	}
	return parts
}

func decodeGeneric(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // compare numbers by their text: an example must be canonical
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return v
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMigrationsEmbedded(t *testing.T) {
	names, err := fs.Glob(Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	disk, err := filepath.Glob(filepath.Join(migrationDir, "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(disk) || len(names) == 0 {
		t.Fatalf("%d embedded migrations, %d on disk", len(names), len(disk))
	}
	for i := range names {
		if names[i] != path.Base(filepath.ToSlash(disk[i])) {
			t.Errorf("embedded %s, on disk %s", names[i], disk[i])
		}
	}
}

// TestComplaintRollupCountsOnlyActedOn: a rollup of complaints shows what
// mailmon acts on, so its view, as the last migration defines it, keeps
// only counted and trusted rows; forged reports must not reach the
// dashboards (see "Complaints: counted and trusted" in README.md).
func TestComplaintRollupCountsOnlyActedOn(t *testing.T) {
	complaints, ok := KindByType(TypeComplaintReceived)
	if !ok {
		t.Fatal("no complaint kind")
	}
	_, views := loadMigrations(t)
	checked := 0
	for _, r := range Rollups() {
		if r.Source != complaints.Table {
			continue
		}
		checked++
		view, ok := views[r.View]
		if !ok {
			t.Errorf("no migration leaves view %s in place", r.View)
			continue
		}
		if want := "counted = 1 AND trusted = 1"; view.where != want {
			t.Errorf("view %s keeps WHERE %q, want %q", r.View, view.where, want)
		}
	}
	if checked == 0 {
		t.Errorf("no rollup reads %s", complaints.Table)
	}
}

// TestMigrationModelReplacesViews runs the migration model on the shipped
// files up to 0024 (before the complaint view was replaced) followed by
// made-up files, so the checks on dropping and creating views again are
// shown to catch what they must.
func TestMigrationModelReplacesViews(t *testing.T) {
	const view = "complaint_received_5m_mv"
	base := fstest.MapFS{}
	entries, err := fs.ReadDir(Migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name()[:4] > "0024" {
			break
		}
		raw, err := fs.ReadFile(Migrations, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		base[e.Name()] = &fstest.MapFile{Data: raw}
	}
	if len(base) != 24 {
		t.Fatalf("%d shipped migrations up to 0024, want 24", len(base))
	}
	createView := func(where string) string {
		return "CREATE MATERIALIZED VIEW IF NOT EXISTS " + view + " TO complaint_received_5m AS SELECT " +
			"toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, feedback_type, uniqExactState(id) AS complaints " +
			"FROM complaint_received WHERE " + where + " GROUP BY bucket, provider, source_ip, customer, feedback_type"
	}
	with := func(files map[string]string) fs.FS {
		fsys := maps.Clone(base)
		for name, sql := range files {
			fsys[name] = &fstest.MapFile{Data: []byte(sql)}
		}
		return fsys
	}

	_, views, problems := modelMigrations(base)
	if len(problems) != 0 || views[view].where != "counted = 1" {
		t.Fatalf("up to 0024: view %+v, problems %v; want the old view (WHERE counted = 1) and no problem", views[view], problems)
	}

	_, views, problems = modelMigrations(with(map[string]string{
		"0025_drop_" + view + ".sql": "-- why\nDROP TABLE IF EXISTS " + view + "\n",
		"0026_" + view + ".sql":      createView("counted = 1\n  AND trusted = 1"),
	}))
	if len(problems) != 0 {
		t.Errorf("drop then create: problems %v, want none", problems)
	}
	if got := views[view].where; got != "counted = 1 AND trusted = 1" {
		t.Errorf("drop then create: the view keeps WHERE %q, want the last definition's", got)
	}

	_, views, problems = modelMigrations(with(map[string]string{
		"0025_drop_" + view + ".sql": "DROP TABLE IF EXISTS " + view,
	}))
	if _, ok := views[view]; ok || len(problems) != 0 {
		t.Errorf("drop alone: view %+v, problems %v; want the view gone (TestRollups then fails)", views[view], problems)
	}

	mustFail := []struct {
		name    string
		files   map[string]string
		problem string
	}{
		{"create again without a drop", map[string]string{"0025_" + view + ".sql": createView("counted = 1 AND trusted = 1")}, "a second time"},
		{"drop a table", map[string]string{"0025_drop_complaint_received.sql": "DROP TABLE IF EXISTS complaint_received"}, "not a view"},
		{"drop a rollup table", map[string]string{"0025_drop_complaint_received_5m.sql": "DROP TABLE IF EXISTS complaint_received_5m"}, "not a view"},
		{"drop a view twice", map[string]string{
			"0025_drop_" + view + ".sql": "DROP TABLE IF EXISTS " + view,
			"0026_drop_" + view + ".sql": "DROP TABLE IF EXISTS " + view,
		}, "not a view"},
		{"drop file named otherwise", map[string]string{"0025_" + view + ".sql": "DROP TABLE IF EXISTS " + view}, "name the file drop_"},
		{"drop without IF EXISTS", map[string]string{"0025_drop_" + view + ".sql": "DROP TABLE " + view}, "teach modelMigrations"},
		{"recreate under another file name", map[string]string{
			"0025_drop_" + view + ".sql":  "DROP TABLE IF EXISTS " + view,
			"0026_complaint_view_new.sql": createView("counted = 1 AND trusted = 1"),
		}, "name the file after the view"},
	}
	for _, c := range mustFail {
		_, _, problems := modelMigrations(with(c.files))
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.problem) }) {
			t.Errorf("%s: problems %v, want one saying %q", c.name, problems, c.problem)
		}
	}
}
