package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Check reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheckWritesComparesAndReportsLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	Check(t, path, []byte("a\nb\nc\n"), true)
	if data, err := os.ReadFile(path); err != nil || string(data) != "a\nb\nc\n" {
		t.Fatalf("update wrote %q (%v)", data, err)
	}
	Check(t, path, []byte("a\nb\nc\n"), false)

	r := &recorder{TB: t}
	Check(r, path, []byte("a\nB\nc\nd\n"), false)
	if len(r.errors) != 1 {
		t.Fatalf("reported %d errors, want 1: %q", len(r.errors), r.errors)
	}
	for _, want := range []string{"2 lines differ", "line 2\n got: B\nwant: b", "line 4\n got: d\nwant: "} {
		if !strings.Contains(r.errors[0], want) {
			t.Errorf("report %q lacks %q", r.errors[0], want)
		}
	}
}

func TestJSONKeepsHTMLAndIndents(t *testing.T) {
	got := string(JSON(t, map[string]string{"a": "<x@example.org>"}))
	if want := "{\n  \"a\": \"<x@example.org>\"\n}\n"; got != want {
		t.Errorf("JSON = %q, want %q", got, want)
	}
}
