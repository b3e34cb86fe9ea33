package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// field describes one leaf of an event struct as every representation sees
// it: a JSON property (nested under "source" for Source fields) and a
// ClickHouse column (flattened to source_worker, source_host).
type field struct {
	GoName   string       // Go field name, e.g. "SourceIP"
	JSONName string       // key inside its JSON object, e.g. "source_ip"
	Column   string       // ClickHouse column name, e.g. "source_ip"
	Parent   string       // JSON object holding it: "" (top level) or "source"
	Index    []int        // reflect path from the event struct
	Type     reflect.Type // Go type of the field
	Optional bool         // omitempty or omitzero: may be absent from JSON
	LowCard  bool         // ch:"lc": stored as LowCardinality
	Enum     []string     // enum:"a,b": the only values allowed (per item for slices)
	Parallel string       // parallel:"group": arrays of a group have equal length
}

var (
	timeType   = reflect.TypeFor[time.Time]()
	headerType = reflect.TypeFor[Header]()
	sourceType = reflect.TypeFor[Source]()
)

// eventFields lists the leaves of event struct t in Go field order.
func eventFields(t reflect.Type) ([]field, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("schemas: %v is not a struct", t)
	}
	var out []field
	err := walkFields(t, nil, "", &out)
	return out, err
}

func walkFields(t reflect.Type, index []int, parent string, out *[]field) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		if !sf.IsExported() {
			return fmt.Errorf("schemas: %v.%s: unexported fields have no place in the contract", t, sf.Name)
		}
		if sf.Anonymous {
			if sf.Type != headerType {
				return fmt.Errorf("schemas: %v.%s: only Header may be embedded", t, sf.Name)
			}
			if err := walkFields(sf.Type, idx, parent, out); err != nil {
				return err
			}
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return fmt.Errorf("schemas: %v.%s: needs a json name", t, sf.Name)
		}
		if sf.Type == sourceType {
			if parent != "" {
				return fmt.Errorf("schemas: %v.%s: Source cannot nest", t, sf.Name)
			}
			if err := walkFields(sf.Type, idx, name, out); err != nil {
				return err
			}
			continue
		}
		f := field{
			GoName:   sf.Name,
			JSONName: name,
			Column:   name,
			Parent:   parent,
			Index:    idx,
			Type:     sf.Type,
			LowCard:  sf.Tag.Get("ch") == "lc",
			Parallel: sf.Tag.Get("parallel"),
		}
		if parent != "" {
			f.Column = parent + "_" + name
		}
		for _, o := range strings.Split(opts, ",") {
			if o == "omitempty" || o == "omitzero" {
				f.Optional = true
			}
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, ",")
		}
		if ch := sf.Tag.Get("ch"); ch != "" && ch != "lc" {
			return fmt.Errorf("schemas: %v.%s: unknown ch tag %q", t, sf.Name, ch)
		}
		if _, err := columnType(f); err != nil {
			return fmt.Errorf("schemas: %v.%s: %w", t, sf.Name, err)
		}
		// A nil slice encodes as JSON null, which the schema's "array"
		// would reject, so slices must be omitted when empty.
		if f.Type.Kind() == reflect.Slice && !f.Optional {
			return fmt.Errorf("schemas: %v.%s: slices need omitempty", t, sf.Name)
		}
		if f.Type == timeType && f.Optional && !strings.Contains(opts, "omitzero") {
			return fmt.Errorf("schemas: %v.%s: an optional time needs omitzero (omitempty never omits a struct)", t, sf.Name)
		}
		if f.Parallel != "" && f.Type.Kind() != reflect.Slice {
			return fmt.Errorf("schemas: %v.%s: only slices can be parallel", t, sf.Name)
		}
		if f.Enum != nil && elemKind(f.Type) != reflect.String {
			return fmt.Errorf("schemas: %v.%s: only strings can be enums", t, sf.Name)
		}
		*out = append(*out, f)
	}
	return nil
}

// elemKind is the kind of t, or of its elements when t is a slice.
func elemKind(t reflect.Type) reflect.Kind {
	if t.Kind() == reflect.Slice {
		return t.Elem().Kind()
	}
	return t.Kind()
}

// columnType maps a field's Go type to its ClickHouse column type. Only
// types that both ClickHouse 18.16 and current servers accept are allowed.
func columnType(f field) (string, error) {
	t := f.Type
	if t.Kind() == reflect.Slice {
		if t.Elem().Kind() == reflect.Slice || t.Elem() == timeType {
			return "", fmt.Errorf("unsupported slice type %v", t)
		}
		inner, err := scalarColumnType(t.Elem(), f.LowCard)
		if err != nil {
			return "", err
		}
		return "Array(" + inner + ")", nil
	}
	return scalarColumnType(t, f.LowCard)
}

func scalarColumnType(t reflect.Type, lowCard bool) (string, error) {
	if t == timeType {
		return "DateTime('UTC')", nil
	}
	if t.PkgPath() != "" {
		// A named type (type Status string) would hide its kind from
		// readers of the contract; keep fields to plain types.
		return "", fmt.Errorf("named type %v: use the plain %v", t, t.Kind())
	}
	if lowCard && t.Kind() != reflect.String {
		return "", fmt.Errorf(`ch:"lc" applies to strings only, not %v`, t)
	}
	switch t.Kind() {
	case reflect.String:
		if lowCard {
			return "LowCardinality(String)", nil
		}
		return "String", nil
	case reflect.Bool:
		return "UInt8", nil
	case reflect.Int8:
		return "Int8", nil
	case reflect.Int16:
		return "Int16", nil
	case reflect.Int32:
		return "Int32", nil
	case reflect.Int64:
		return "Int64", nil
	case reflect.Uint8:
		return "UInt8", nil
	case reflect.Uint16:
		return "UInt16", nil
	case reflect.Uint32:
		return "UInt32", nil
	case reflect.Uint64:
		return "UInt64", nil
	case reflect.Float32:
		return "Float32", nil
	case reflect.Float64:
		return "Float64", nil
	}
	return "", fmt.Errorf("unsupported type %v", t)
}
