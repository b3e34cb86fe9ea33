package config

import (
	"reflect"
	"strings"
)

// Validator is a config section that checks itself, reporting problems
// with paths relative to the section.
type Validator interface {
	Validate() error
}

// ValidateSections calls Validate on every field of the struct root that
// has one, and files each section's problems under the field's YAML key:
// a problem at "addr" of the field tagged `yaml:"http"` becomes
// "http.addr". A root config's Validate uses it so that a new section is
// validated as soon as it is added to the struct, without a list to keep.
// Fields without a Validate method are skipped (they are plain values or
// sections that need no checks); a field tagged `yaml:"-"` is not part of
// the file and is skipped too, and an inline field's problems stay at the
// root's level, as its keys do.
//
// root is a struct or a pointer to one; anything else is a programming
// error reported as a problem at the root.
func ValidateSections(check *Check, root any) {
	v := reflect.ValueOf(root)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		check.Addf("", "config: ValidateSections needs a struct, got %T", root)
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, inline, ok := YAMLKey(f)
		if !ok {
			continue
		}
		section, ok := validatorOf(v.Field(i))
		if !ok {
			continue
		}
		if inline {
			key = ""
		}
		check.Nest(key, section.Validate())
	}
}

// YAMLKey is the key a struct field has in the file, named the way Load
// names it: the yaml tag's name, else the lower-cased field name. inline
// reports a ",inline" field, whose keys sit in its parent's mapping. ok is
// false for fields that are not part of the file (unexported, or tagged
// "-").
func YAMLKey(f reflect.StructField) (key string, inline, ok bool) {
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return "", false, false
	}
	name, flags, _ := strings.Cut(tag, ",")
	inline = strings.Contains(","+flags+",", ",inline,")
	if !f.IsExported() && !(f.Anonymous && inline) {
		return "", false, false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, inline, true
}

// validatorOf finds a Validate method on the field's value or, when it is
// declared on the pointer, on a copy's address; a nil pointer field has
// nothing to validate.
func validatorOf(field reflect.Value) (Validator, bool) {
	if field.Kind() == reflect.Pointer && field.IsNil() {
		return nil, false
	}
	if !field.CanInterface() {
		// An unexported embedded struct: its methods are out of reach.
		return nil, false
	}
	if s, ok := field.Interface().(Validator); ok {
		return s, true
	}
	addressable := reflect.New(field.Type())
	addressable.Elem().Set(field)
	if s, ok := addressable.Interface().(Validator); ok {
		return s, true
	}
	return nil, false
}
