package browser

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
)

// differences compares what a page answered (got) with the seeded truth
// (want), field by field and by name: every exported field of want must
// exist in got with an equal value. Both may be structs, slices or maps of
// them and differ in type (the console's JSON types and consoletest's
// Truth types are declared apart). Floats are equal within a millionth
// (ClickHouse and Go round differently), times by instant, and a nil and
// an empty slice or map are equal. It returns one line per difference.
func differences(got, want any) []string {
	var out []string
	diff(&out, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return out
}

var timeType = reflect.TypeOf(time.Time{})

func diff(out *[]string, path string, g, w reflect.Value) {
	for g.Kind() == reflect.Pointer || g.Kind() == reflect.Interface {
		if g.IsNil() {
			break
		}
		g = g.Elem()
	}
	for w.Kind() == reflect.Pointer || w.Kind() == reflect.Interface {
		if w.IsNil() {
			break
		}
		w = w.Elem()
	}
	add := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "."
		}
		*out = append(*out, p+": "+fmt.Sprintf(format, args...))
	}
	if !g.IsValid() || !w.IsValid() {
		if g.IsValid() != w.IsValid() {
			add("got %v, want %v", g, w)
		}
		return
	}
	if w.Type() == timeType {
		if g.Type() != timeType {
			add("got a %s, want a time", g.Type())
			return
		}
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if !gt.Equal(wt) {
			add("got %s, want %s", gt.UTC().Format(time.RFC3339Nano), wt.UTC().Format(time.RFC3339Nano))
		}
		return
	}
	switch w.Kind() {
	case reflect.Struct:
		if g.Kind() != reflect.Struct {
			add("got a %s, want a struct", g.Kind())
			return
		}
		for i := 0; i < w.NumField(); i++ {
			f := w.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			gf := g.FieldByName(f.Name)
			if !gf.IsValid() {
				add("the page has no %s (want %v)", f.Name, w.Field(i))
				continue
			}
			diff(out, path+"."+f.Name, gf, w.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if g.Kind() != reflect.Slice && g.Kind() != reflect.Array {
			add("got a %s, want a list", g.Kind())
			return
		}
		if g.Len() != w.Len() {
			add("got %d items %s, want %d %s", g.Len(), show(g), w.Len(), show(w))
			return
		}
		for i := 0; i < w.Len(); i++ {
			diff(out, fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i))
		}
	case reflect.Map:
		if g.Kind() != reflect.Map {
			add("got a %s, want a map", g.Kind())
			return
		}
		keys := map[string]bool{}
		for _, k := range w.MapKeys() {
			keys[fmt.Sprint(k)] = true
		}
		for _, k := range g.MapKeys() {
			keys[fmt.Sprint(k)] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			gv := g.MapIndex(reflect.ValueOf(k).Convert(g.Type().Key()))
			wv := w.MapIndex(reflect.ValueOf(k).Convert(w.Type().Key()))
			diff(out, fmt.Sprintf("%s[%s]", path, k), gv, wv)
		}
	case reflect.Float32, reflect.Float64:
		if !g.CanFloat() {
			add("got a %s, want a number", g.Kind())
			return
		}
		gf, wf := g.Float(), w.Float()
		if math.Abs(gf-wf) > 1e-6*math.Max(1, math.Abs(wf)) {
			add("got %v, want %v", gf, wf)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		gs, ws := fmt.Sprint(g.Interface()), fmt.Sprint(w.Interface())
		if gs != ws {
			add("got %s, want %s", gs, ws)
		}
	default:
		if g.Kind() != w.Kind() || !reflect.DeepEqual(g.Interface(), w.Interface()) {
			add("got %#v, want %#v", g.Interface(), w.Interface())
		}
	}
}

func show(v reflect.Value) string {
	s := fmt.Sprintf("%+v", v.Interface())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.TrimSpace(s)
}
