package schemas

import (
	"reflect"
	"strings"
	"time"
)

// Column is one ClickHouse column of an event table.
type Column struct {
	Name string // e.g. "source_ip"
	Type string // e.g. "LowCardinality(String)"
}

// rowPlan is everything Columns and Row need for one event type, worked out
// once at registration so the sink's hot path does no tag parsing.
type rowPlan struct {
	fields  []field
	columns []Column
	convert []func(reflect.Value) any
	insert  string // column list for INSERT, "(id, type, ...)"
}

// plans is filled by register during init and only read afterwards.
var plans = map[reflect.Type]*rowPlan{}

func buildPlan(t reflect.Type) (*rowPlan, error) {
	fields, err := eventFields(t)
	if err != nil {
		return nil, err
	}
	p := &rowPlan{fields: fields}
	names := make([]string, len(fields))
	for i, f := range fields {
		typ, err := columnType(f)
		if err != nil {
			return nil, err
		}
		p.columns = append(p.columns, Column{Name: f.Column, Type: typ})
		p.convert = append(p.convert, converter(f.Type))
		names[i] = f.Column
	}
	p.insert = "(" + strings.Join(names, ", ") + ")"
	return p, nil
}

func planFor(t reflect.Type) *rowPlan {
	if p, ok := plans[t]; ok {
		return p
	}
	p, err := buildPlan(t)
	if err != nil {
		return nil
	}
	return p
}

// Columns lists the ClickHouse columns of k's table, in Go field order with
// Source flattened: id, type, time, source_worker, source_host, then the
// kind's own fields. The DDL in clickhouse/ declares exactly these.
func Columns(k Kind) []Column {
	if k.goType == nil {
		return nil
	}
	p := planFor(k.goType)
	if p == nil {
		return nil
	}
	return append([]Column(nil), p.columns...)
}

// InsertQuery is the batch INSERT statement for k's table with its column
// list, e.g. "INSERT INTO probe_sent (id, type, ...)". ClickHouse 18.16
// needs the list: a batch without one fails on Append.
func InsertQuery(k Kind) string {
	if k.goType == nil {
		return ""
	}
	p := planFor(k.goType)
	if p == nil {
		return ""
	}
	return "INSERT INTO " + k.Table + " " + p.insert
}

// Row gives ev's values in Columns order, as Go types clickhouse-go v2
// appends to those columns: bool as uint8, a zero time as 1970-01-01 (the
// smallest DateTime; read it as "unknown"), nil slices as empty ones. Use it
// as batch.Append(Row(ev)...). Row of a nil event is nil.
func Row(ev Event) []any { return AppendRow(nil, ev) }

// AppendRow is Row into dst's storage: it returns dst[:0] with ev's values
// appended. A caller appending many rows to a batch reuses one slice, since
// batch.Append copies the values out before it returns.
func AppendRow(dst []any, ev Event) []any {
	v := reflect.ValueOf(ev)
	if ev == nil || v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	v = v.Elem()
	p := planFor(v.Type())
	if p == nil {
		return nil
	}
	row := dst[:0]
	if cap(row) < len(p.fields) {
		row = make([]any, 0, len(p.fields))
	}
	for i, f := range p.fields {
		row = append(row, p.convert[i](v.FieldByIndex(f.Index)))
	}
	return row
}

// DateTime holds seconds since 1970 in a UInt32; clickhouse-go does not
// range-check, so a time outside would wrap around into a wrong date.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Unix(1<<32-1, 0).UTC()
)

// columnTime is the value stored for t in a DateTime('UTC') column. Times
// the column cannot hold (the zero time among them) become 1970-01-01;
// Validate reports them before it comes to that.
func columnTime(t time.Time) time.Time {
	if t.Before(minDateTime) || t.After(maxDateTime) {
		return minDateTime
	}
	return t.UTC()
}

// converter returns the function that turns one field into its column
// value. Typed getters (v.Int, v.String) box small numbers and empty strings
// without allocating, which v.Interface cannot do; the sink calls this for
// every column of every event.
func converter(t reflect.Type) func(reflect.Value) any {
	if t == timeType {
		return func(v reflect.Value) any { return columnTime(*v.Addr().Interface().(*time.Time)) }
	}
	switch t.Kind() {
	case reflect.String:
		return func(v reflect.Value) any { return v.String() }
	case reflect.Bool:
		return func(v reflect.Value) any {
			if v.Bool() {
				return uint8(1)
			}
			return uint8(0)
		}
	case reflect.Int8:
		return func(v reflect.Value) any { return int8(v.Int()) }
	case reflect.Int16:
		return func(v reflect.Value) any { return int16(v.Int()) }
	case reflect.Int32:
		return func(v reflect.Value) any { return int32(v.Int()) }
	case reflect.Int64:
		return func(v reflect.Value) any { return v.Int() }
	case reflect.Uint8:
		return func(v reflect.Value) any { return uint8(v.Uint()) }
	case reflect.Uint16:
		return func(v reflect.Value) any { return uint16(v.Uint()) }
	case reflect.Uint32:
		return func(v reflect.Value) any { return uint32(v.Uint()) }
	case reflect.Uint64:
		return func(v reflect.Value) any { return v.Uint() }
	case reflect.Float32:
		return func(v reflect.Value) any { return float32(v.Float()) }
	case reflect.Float64:
		return func(v reflect.Value) any { return v.Float() }
	case reflect.Slice:
		empty := reflect.MakeSlice(t, 0, 0).Interface()
		return func(v reflect.Value) any {
			if v.Len() == 0 {
				return empty
			}
			return v.Interface()
		}
	}
	// buildPlan has already rejected every other type through columnType.
	return func(reflect.Value) any { return nil }
}
