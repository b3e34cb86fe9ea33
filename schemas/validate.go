package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
)

// Decode parses one event document: it reads the type string, picks the
// registered Go type and decodes strictly, so an unknown field, a wrong
// type or trailing data is an error rather than silently dropped data.
// Check the values with Validate.
func Decode(data []byte) (Event, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := gojson.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("schemas: decode event: %w", err)
	}
	if head.Type == "" {
		return nil, errors.New("schemas: decode event: no type field")
	}
	k, ok := KindByType(head.Type)
	if !ok {
		return nil, fmt.Errorf("schemas: decode event: unknown type %q", head.Type)
	}
	return DecodeAs(k, data)
}

// DecodeAs decodes data strictly as an event of kind k, as Decode does,
// for a caller that already knows the kind (from the subject the event came
// on), which saves Decode's first pass; the document's type must be k's.
func DecodeAs(k Kind, data []byte) (Event, error) {
	if k.goType == nil {
		return nil, errors.New("schemas: decode: no kind given")
	}
	ev := k.New()
	dec := gojson.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		return nil, fmt.Errorf("schemas: decode %s: %w", k.Type, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("schemas: decode %s: data after the event document", k.Type)
	}
	if h := ev.EventHeader(); h.Type != k.Type {
		return nil, fmt.Errorf("schemas: decode %s: the document's type is %q", k.Type, h.Type)
	}
	return ev, nil
}

// Validate checks the rules of the contract that a Go value can break: a
// registered type; a UUID id; the type string of its kind; a time and
// source; every required string set; enum fields holding listed values;
// times a DateTime column can hold; and parallel arrays of equal length. It
// reports every problem at once.
func Validate(ev Event) error {
	v := reflect.ValueOf(ev)
	if ev == nil || v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("schemas: validate: nil event")
	}
	k, err := KindOf(ev)
	if err != nil {
		return err
	}
	v = v.Elem()
	h := ev.EventHeader()
	var problems []error
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf(format, args...))
	}
	if _, err := uuid.Parse(h.ID); h.ID != "" && err != nil {
		add("id %q is not a UUID", h.ID)
	}
	if h.Type != k.Type {
		add("type %q does not match the Go type's %q", h.Type, k.Type)
	}
	groupLen := map[string]int{}
	groupFirst := map[string]string{}
	for _, f := range plans[k.goType].fields {
		fv := v.FieldByIndex(f.Index)
		switch {
		case f.Type == timeType:
			t := fv.Interface().(time.Time)
			if t.IsZero() {
				if !f.Optional {
					add("%s: required time is zero", f.Column)
				}
			} else if t.Before(minDateTime) || t.After(maxDateTime) {
				add("%s: %s is outside 1970..2106, which ClickHouse cannot store", f.Column, t.Format(time.RFC3339))
			}
		case f.Type.Kind() == reflect.String:
			s := fv.String()
			if s == "" {
				if !f.Optional {
					add("%s: required field is empty", f.Column)
				}
			} else if f.Enum != nil && !slices.Contains(f.Enum, s) {
				add("%s: %q is not one of %v", f.Column, s, f.Enum)
			}
		case f.Type.Kind() == reflect.Slice:
			if f.Enum != nil {
				for i, s := range fv.Interface().([]string) {
					if !slices.Contains(f.Enum, s) {
						add("%s[%d]: %q is not one of %v", f.Column, i, s, f.Enum)
					}
				}
			}
			if f.Parallel != "" {
				n, seen := groupLen[f.Parallel]
				if !seen {
					groupLen[f.Parallel], groupFirst[f.Parallel] = fv.Len(), f.Column
				} else if n != fv.Len() {
					add("%s has %d entries but %s has %d; they are parallel", f.Column, fv.Len(), groupFirst[f.Parallel], n)
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("schemas: invalid %s event: %w", k.Type, errors.Join(problems...))
	}
	return nil
}
