package config

import (
	"errors"
	"slices"
	"testing"
)

type sectionsRoot struct {
	Name          string        `yaml:"name"`
	HTTP          testHTTP      `yaml:"http"` // no Validate: skipped
	NATS          testNATS      `yaml:"nats"`
	Pointer       *pointerCheck `yaml:"pointer"`
	ByPtr         pointerCheck  `yaml:"by_pointer"`
	Nil           *pointerCheck `yaml:"nil_section"`
	Hidden        testNATS      `yaml:"-"`
	Plain         plainError    `yaml:"plain"`
	Untagged      plainError
	InlineSection `yaml:",inline"`
}

// pointerCheck declares Validate on the pointer.
type pointerCheck struct{ Limit int }

func (p *pointerCheck) Validate() error {
	var check Check
	if p.Limit < 1 {
		check.Addf("limit", "must be at least 1")
	}
	check.Nest("items", Problems{{Path: "[2].name", Message: "is required"}})
	return check.Err()
}

// plainError returns an error that is not Problems.
type plainError struct{}

func (plainError) Validate() error { return errors.New("broken") }

type InlineSection struct {
	Extra int `yaml:"extra"`
}

func (s InlineSection) Validate() error {
	var check Check
	check.Addf("extra", "inline problem")
	return check.Err()
}

func TestValidateSectionsNestsEveryProblemUnderItsKey(t *testing.T) {
	root := sectionsRoot{Pointer: &pointerCheck{}}
	var check Check
	check.Require("name", root.Name)
	ValidateSections(&check, root)
	err := check.Err()
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("errors.As(%v, Problems) failed", err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Path+": "+p.Message)
	}
	want := []string{
		"name: is required",
		"nats.url: is required",
		"nats.ack_wait: must be positive, got 0s",
		"nats.replicas: must be 1, 3 or 5, got 0",
		"pointer.limit: must be at least 1",
		"pointer.items[2].name: is required",
		"by_pointer.limit: must be at least 1",
		"by_pointer.items[2].name: is required",
		"plain: broken",
		"untagged: broken",
		"extra: inline problem",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestValidateSectionsAcceptsAPointerAndCleanSections(t *testing.T) {
	type clean struct {
		HTTP testHTTP `yaml:"http"`
		NATS testNATS `yaml:"nats"`
	}
	var check Check
	ValidateSections(&check, &clean{NATS: testNATS{URL: "nats://x", AckWait: Duration(1), Replicas: 3}})
	if err := check.Err(); err != nil {
		t.Errorf("clean config: %v", err)
	}
}

func TestValidateSectionsRefusesANonStruct(t *testing.T) {
	var check Check
	ValidateSections(&check, 42)
	if check.Err() == nil {
		t.Error("an int was accepted as a config root")
	}
}

func TestValidateSectionsThroughLoadKeepsPathsAndLines(t *testing.T) {
	data := []byte("name: x\nnats:\n  url: nats://x\n  ack_wait: 1s\n  replicas: 2\npointer:\n  limit: 0\n")
	root := &loadRoot{}
	err := decode(data, root, func(string) (string, bool) { return "", false })
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("errors.As(%v, Problems) failed", err)
	}
	found := false
	for _, p := range problems {
		if p.Path == "nats.replicas" {
			found = true
			if p.Line != 5 {
				t.Errorf("nats.replicas at line %d, want 5", p.Line)
			}
		}
	}
	if !found {
		t.Errorf("no nats.replicas problem in %v", problems)
	}
}

type loadRoot struct {
	Name    string       `yaml:"name"`
	NATS    testNATS     `yaml:"nats"`
	Pointer pointerCheck `yaml:"pointer"`
}

func (r loadRoot) Validate() error {
	var check Check
	ValidateSections(&check, r)
	return check.Err()
}
