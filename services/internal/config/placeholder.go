package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// PlaceholderPrefix starts every made-up secret in mailmon's example and
// lab configs (deploy/config/), e.g. the ${env:NAME:-example-only-…}
// fallbacks that let the example file load as it is. A secret with it is
// public knowledge: anyone who read the repository can sign a tracking
// header or log in with it.
const PlaceholderPrefix = "example-only-"

// placeholderPrefixes are PlaceholderPrefix and the demo key earlier lab
// configs shipped, which copies of them may still hold.
var placeholderPrefixes = []string{PlaceholderPrefix, "demo-key-for-local-runs-only"}

// IsPlaceholder reports whether s is one of the made-up secrets of the
// example and lab configs, never a real credential.
func (s Secret) IsPlaceholder() bool {
	for _, p := range placeholderPrefixes {
		if strings.HasPrefix(string(s), p) {
			return true
		}
	}
	return false
}

// PlaceholderSecrets returns the key path ("nats.password",
// "notifier.routes[1].password") of every Secret in cfg, a struct or a
// pointer to one walked by its yaml keys, that holds a placeholder. A
// config that is not a lab's refuses them (see app.Config.Validate).
func PlaceholderSecrets(cfg any) []string {
	var paths []string
	walkSecrets(reflect.ValueOf(cfg), "", func(path string, s Secret) {
		if s.IsPlaceholder() {
			paths = append(paths, path)
		}
	})
	return paths
}

var secretType = reflect.TypeFor[Secret]()

// walkSecrets calls fn for every Secret reachable from v through struct
// fields with a yaml key, slices, arrays, string-keyed maps and pointers.
func walkSecrets(v reflect.Value, path string, fn func(string, Secret)) {
	if !v.IsValid() {
		return
	}
	if v.Type() == secretType {
		fn(path, Secret(v.String()))
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkSecrets(v.Elem(), path, fn)
		}
	case reflect.Struct:
		fields, err := fieldsOf(v.Type())
		if err != nil {
			return // Load reports a malformed struct already
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			walkSecrets(v.FieldByIndex(fields[k]), joinPath(path, k), fn)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		for _, k := range keys {
			walkSecrets(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), joinPath(path, k), fn)
		}
	}
}
