package configdoc

import (
	"reflect"
)

// Undocumented lists the key paths, below the struct type root, whose Go
// fields carry no documentation (see the package comment), in declaration
// order. Every struct reachable from root is visited once.
func Undocumented(src *Source, root reflect.Type) ([]string, error) {
	var missing []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, prefix string) error
	walk = func(t reflect.Type, prefix string) error {
		if seen[t] {
			return nil
		}
		seen[t] = true
		fields, err := src.Fields(t)
		if err != nil {
			return err
		}
		for _, f := range fields {
			path := prefix + f.Key
			if !f.Documented() && !f.Inline {
				missing = append(missing, path)
			}
			ft := t.Field(f.Index).Type
			for !isScalar(ft) && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map || ft.Kind() == reflect.Pointer) {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !isScalar(ft) {
				if err := walk(ft, path+"."); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return missing, walk(root, "")
}
