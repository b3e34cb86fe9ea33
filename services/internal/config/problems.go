package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is and what is
// wrong. Path is the dotted key path ("nats.ack_wait", "probe.targets[2].address");
// it is empty for problems with the file as a whole. Line is the line in the
// YAML file, or 0 when the key is absent from the file (a required key that
// was never set) or the problem has no place in it.
//
// Messages never contain secret values: decode problems of values that came
// from the environment do not quote them, and Validate methods must not
// quote Secret fields either.
type Problem struct {
	Path    string
	Line    int
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// Problems is every problem found in one configuration. It is the only error
// type Load returns for what is inside a file, so a caller can show all of
// them at once and an operator fixes the file in one pass.
type Problems []Problem

// Error lists one "path: message" per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Check collects problems while a Validate method walks its section, so that
// the method can look at every field and report everything at once:
//
//	func (c NATS) Validate() error {
//		var check config.Check
//		check.Require("url", c.URL)
//		if c.AckWait.Std() <= 0 {
//			check.Addf("ack_wait", "must be positive, got %s", c.AckWait)
//		}
//		return check.Err()
//	}
//
// The zero value is ready to use.
type Check struct {
	problems Problems
}

// Require reports path as missing when value is its type's zero value
// ("" for strings and Secrets, 0 for numbers and Durations, nil or empty for
// slices and maps).
func (c *Check) Require(path string, value any) {
	if isEmpty(value) {
		c.problems = append(c.problems, Problem{Path: path, Message: "is required"})
	}
}

// Addf reports a problem at path.
func (c *Check) Addf(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Nest takes the result of a sub-section's Validate and files its problems
// under prefix: prefix "http" and a problem at "addr" become "http.addr". An
// error that is not Problems becomes one problem at prefix. A nil err adds
// nothing, so `check.Nest("http", c.HTTP.Validate())` is the whole call.
func (c *Check) Nest(prefix string, err error) {
	if err == nil {
		return
	}
	var nested Problems
	if !errors.As(err, &nested) {
		c.problems = append(c.problems, Problem{Path: prefix, Message: err.Error()})
		return
	}
	for _, p := range nested {
		p.Path = joinPath(prefix, p.Path)
		c.problems = append(c.problems, p)
	}
}

// Err returns the collected Problems, or nil when there are none.
func (c *Check) Err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return append(Problems(nil), c.problems...)
}

func isEmpty(value any) bool {
	if value == nil {
		return true
	}
	v := reflect.ValueOf(value)
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	default:
		return v.IsZero()
	}
}

// joinPath appends a key to a dotted path. A nested path that starts with an
// index ("[2].address") attaches without a dot.
func joinPath(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	default:
		return prefix + "." + key
	}
}
