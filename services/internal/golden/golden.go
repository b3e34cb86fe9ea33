// Package golden compares test output with golden files in testdata: a
// test renders what it checks, and Check either compares it with the file
// or, when the test runs with -update, rewrites the file. Tests only.
package golden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// maxReported is how many differing lines a failed Check names.
const maxReported = 5

// Check compares got with the golden file at path. With update it writes
// got to path instead. A difference fails t with the first differing
// lines, numbered from 1.
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gotLines := strings.Split(string(got), "\n")
	wantLines := strings.Split(string(want), "\n")
	var report strings.Builder
	differ := 0
	for i := 0; i < len(gotLines) || i < len(wantLines); i++ {
		g, w := line(gotLines, i), line(wantLines, i)
		if g == w {
			continue
		}
		differ++
		if differ <= maxReported {
			fmt.Fprintf(&report, "\nline %d\n got: %s\nwant: %s", i+1, g, w)
		}
	}
	t.Errorf("%s: %d lines differ (go test -update rewrites it):%s", path, differ, report.String())
}

// JSON renders v as indented JSON without HTML escaping, the form of the
// golden JSON files.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}
