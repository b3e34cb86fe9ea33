package app

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Every section's own problems reach the root's Validate under the
// section's yaml key: a section left out of the walk, or nested under the
// wrong key, fails here. Each section is emptied in turn (its zero value
// breaks most sections' checks) and what its own Validate reports must come
// back from Config.Validate with the key in front.
func TestConfigValidateNestsEverySectionUnderItsKey(t *testing.T) {
	root := reflect.TypeFor[Config]()
	checked := 0
	for i := range root.NumField() {
		field := root.Field(i)
		key, _, ok := config.YAMLKey(field)
		if !ok {
			continue
		}
		cfg := DefaultConfig()
		section := reflect.ValueOf(&cfg).Elem().Field(i)
		section.Set(reflect.Zero(field.Type))
		validator, ok := section.Interface().(config.Validator)
		if !ok {
			continue
		}
		var own config.Problems
		if err := validator.Validate(); !errors.As(err, &own) {
			continue // its zero value is valid (or fails without paths)
		}
		checked++
		var got config.Problems
		if err := cfg.Validate(); !errors.As(err, &got) {
			t.Errorf("%s: root Validate returned %v, want config.Problems", key, err)
			continue
		}
		var gotPaths []string
		for _, p := range got {
			gotPaths = append(gotPaths, p.Path+": "+p.Message)
		}
		for _, p := range own {
			want := key + "." + p.Path + ": " + p.Message
			if p.Path == "" {
				want = key + ": " + p.Message
			}
			if !slices.Contains(gotPaths, want) {
				t.Errorf("%s: %q missing from the root's problems %q", key, want, gotPaths)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d sections had problems when emptied; the test no longer checks the walk", checked)
	}
}

// A config where nothing is wrong stays clean through the walk, and the
// root's own checks (data_dir) still run.
func TestConfigValidateKeepsTheRootsOwnChecks(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.DataDir = ""
	var got config.Problems
	if err := cfg.Validate(); !errors.As(err, &got) || len(got) != 1 || got[0].Path != "data_dir" {
		t.Errorf("empty data_dir: got %v, want one problem at data_dir", got)
	}
}
