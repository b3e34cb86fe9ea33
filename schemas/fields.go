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
	Owner    reflect.Type // struct that declares it: the event, Header, Source or a field group
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
//
// Besides Header, an event may embed field groups: structs of this package
// that hold fields several kinds share with the same meaning. A group is
// flattened the way encoding/json flattens an embedded struct, so its
// fields are JSON properties and columns at the place of the embedding,
// exactly as if they were written inline. Where encoding/json would
// resolve two fields of one name by depth or drop both, the contract
// rejects the type instead: every name must be unique.
func eventFields(t reflect.Type) ([]field, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("schemas: %v is not a struct", t)
	}
	var out []field
	if err := walkFields(t, nil, "", &out); err != nil {
		return nil, err
	}
	jsonOwner := map[string]field{}
	columnOwner := map[string]field{}
	for _, f := range out {
		key := f.Parent + "." + f.JSONName
		if o, dup := jsonOwner[key]; dup {
			return nil, fmt.Errorf("schemas: %v: %s.%s and %s.%s share the json name %q", t, o.Owner, o.GoName, f.Owner, f.GoName, f.JSONName)
		}
		if o, dup := columnOwner[f.Column]; dup {
			return nil, fmt.Errorf("schemas: %v: %s.%s and %s.%s share the column %q", t, o.Owner, o.GoName, f.Owner, f.GoName, f.Column)
		}
		jsonOwner[key], columnOwner[f.Column] = f, f
	}
	return out, nil
}

// checkGroup reports why the embedded field sf of t cannot be flattened as
// a field group, or nil when it can.
func checkGroup(t reflect.Type, sf reflect.StructField) error {
	switch {
	case sf.Type.Kind() != reflect.Struct:
		return fmt.Errorf("schemas: %v.%s: only structs can be embedded, not %v", t, sf.Name, sf.Type.Kind())
	case sf.Type == sourceType:
		return fmt.Errorf("schemas: %v.%s: Source is a nested object, not a field group; Header carries it", t, sf.Name)
	case sf.Type.PkgPath() != headerType.PkgPath():
		return fmt.Errorf("schemas: %v.%s: a field group must be declared in package schemas, where its doc comments are read", t, sf.Name)
	case sf.Tag != "":
		// A json name would make encoding/json nest the group as an object.
		return fmt.Errorf("schemas: %v.%s: an embedded field group takes no tags", t, sf.Name)
	case reflect.PointerTo(sf.Type).NumMethod() > 0:
		// Embedding promotes methods: a group's MarshalJSON would become the
		// event's, and a group holding Header would supply EventHeader.
		return fmt.Errorf("schemas: %v.%s: a field group has no methods", t, sf.Name)
	}
	return nil
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
				if err := checkGroup(t, sf); err != nil {
					return err
				}
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
			Owner:    t,
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
