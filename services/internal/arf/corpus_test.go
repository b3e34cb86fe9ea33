package arf

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/mailmon/mailmon/services/internal/corpustest"
)

// corpusDir returns the ARF part of the shared third-party corpora
// (../shared/corpora/README.md from the repository root).
func corpusDir(t testing.TB) string { return filepath.Join(corpustest.Dir(t), "arf") }

// arfFloor is the share of expected fields the parser must agree on. It is
// set a little under the measured figure, so that a regression fails.
const arfFloor = 0.96

// TestCorpusAgreement parses every report of the shared corpus and compares
// each field of expected.jsonl with View. It prints the agreement per field
// and fails below arfFloor.
func TestCorpusAgreement(t *testing.T) {
	dir := corpusDir(t)
	f, err := os.Open(filepath.Join(dir, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct {
		File     string         `json:"file"`
		Expected map[string]any `json:"expected"`
	}
	agree, total := map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	files := 0
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, r.File))
		if err != nil {
			t.Fatal(err)
		}
		files++
		rep, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", r.File, err)
		}
		got := viewMap(t, rep.View())
		for k, want := range r.Expected {
			g := got[k]
			if k == "arrival_date" {
				// The key has the verbatim text; we print RFC 3339 and
				// keep the text in arrival_date_raw.
				g = got["arrival_date_raw"]
				if want != nil && got["arrival_date"] == nil {
					g = "unparsed: " + toString(g)
				}
			}
			total[k]++
			if sameValue(want, g) {
				agree[k]++
			} else {
				t.Logf("%s: %s: want %s, got %s", r.File, k, js(want), js(g))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(total))
	a, n := 0, 0
	for k := range total {
		keys = append(keys, k)
		a += agree[k]
		n += total[k]
	}
	sort.Strings(keys)
	for _, k := range keys {
		if agree[k] != total[k] {
			t.Logf("field %-24s %3d/%3d", k, agree[k], total[k])
		}
	}
	share := float64(a) / float64(n)
	t.Logf("ARF field agreement: %d/%d = %.1f%% over %d reports", a, n, 100*share, files)
	if share < arfFloor {
		t.Errorf("ARF field agreement %.1f%% is below the floor %.1f%%", 100*share, 100*arfFloor)
	}
}

func viewMap(t *testing.T, v View) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameValue compares an expected JSON value with ours: null, false, an
// empty list and an empty object all mean absent.
func sameValue(want, got any) bool {
	if isAbsent(want) && isAbsent(got) {
		return true
	}
	return reflect.DeepEqual(want, got)
}

func isAbsent(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func js(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}
