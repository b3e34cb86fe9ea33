package bounceclass

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// splitSeed fixes the split of the corpus groups into two halves (see
// "Split-half agreement" in doc.go). Changing it changes the halves: keep it.
const splitSeed = 3463

// halfFloor is the agreement (from the text alone, as `mailmon inspect
// rejection -` reads it) the lower half of the rejection corpus may not drop
// below.
const halfFloor = 85.0

// splitGroups assigns each group to half 0 or 1: the group names sorted,
// shuffled with a PCG seeded with splitSeed, then each in turn given to the
// half with fewer rows so far (the first half on a tie). Whole groups stay
// together, so a rule that fits one MTA's wording only scores on one half.
func splitGroups(size map[string]int) map[string]int {
	names := make([]string, 0, len(size))
	for g := range size {
		names = append(names, g)
	}
	sort.Strings(names)
	r := rand.New(rand.NewPCG(splitSeed, splitSeed))
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	half := make(map[string]int, len(names))
	var rows [2]int
	for _, g := range names {
		h := 0
		if rows[1] < rows[0] {
			h = 1
		}
		half[g] = h
		rows[h] += size[g]
	}
	return half
}

type rejectionRow struct {
	Text          string          `json:"text"`
	Provider      string          `json:"provider"`
	ExpectedClass string          `json:"expected_class"`
	ReplyCode     json.RawMessage `json:"reply_code"`
	StatusCode    string          `json:"status_code"`
	Origin        struct {
		Kind     string `json:"kind"`
		File     string `json:"file"`
		MTAGroup string `json:"mta_group"`
	} `json:"origin"`
}

// group is the row's MTA group, else its provider.
func (r rejectionRow) group() string {
	if r.Origin.MTAGroup != "" {
		return r.Origin.MTAGroup
	}
	return "provider-" + r.Provider
}

// TestCorpusRejectionsSplitHalf scores the two halves of the rejection
// corpus apart, next to the whole, and fails when the lower half's
// agreement from the text alone drops below halfFloor.
func TestCorpusRejectionsSplitHalf(t *testing.T) {
	var rows []rejectionRow
	readJSONL(t, filepath.Join(corporaDir(t), "rejections", "rejections.jsonl"), func(line []byte) {
		var row rejectionRow
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	})
	size := map[string]int{}
	for _, r := range rows {
		size[r.group()]++
	}
	half := splitGroups(size)
	var groups [2]int
	for _, h := range half {
		groups[h]++
	}
	// Per rule: the files (origin.file, else the row) whose text it decided
	// rightly, per half.
	ruleFiles := map[string][2]map[string]bool{}
	var scores [3]score // half A, half B, whole
	scores[0].name, scores[1].name, scores[2].name = "half A", "half B", "whole"
	for _, r := range rows {
		withCodes := Classify(Input{Text: r.Text, ReplyCode: jsonCode(r.ReplyCode), Status: answerStatus(r.StatusCode)})
		textOnly := Classify(Input{Text: r.Text})
		h := half[r.group()]
		if textOnly.Matched && textOnly.Reason == r.ExpectedClass {
			f := ruleFiles[textOnly.Rule]
			if f[h] == nil {
				f[h] = map[string]bool{}
			}
			file := r.Origin.File
			if file == "" {
				file = r.Text
			}
			f[h][file] = true
			ruleFiles[textOnly.Rule] = f
		}
		scores[h].add(r.ExpectedClass, withCodes, textOnly, r.Text)
		scores[2].add(r.ExpectedClass, withCodes, textOnly, r.Text)
	}
	lower := 100.0
	for i := range scores {
		s := &scores[i]
		g := len(half)
		if i < 2 {
			g = groups[i]
		}
		t.Logf("%-6s %3d texts in %2d groups: text alone %.1f%% (%d), with codes %.1f%% (%d)",
			s.name, s.total, g, pct(s.agreeTextOnly, s.total), s.agreeTextOnly, pct(s.agree, s.total), s.agree)
		if i < 2 {
			lower = min(lower, pct(s.agreeTextOnly, s.total))
		}
	}
	t.Logf("lower half (text alone): %.1f%%, floor %.1f%%", lower, halfFloor)
	// Rules whose right answers here rest on one half only: their wording
	// is checked by one group of MTAs and not the other.
	var oneHalf []string
	for id, f := range ruleFiles {
		if len(f[0]) == 0 || len(f[1]) == 0 {
			oneHalf = append(oneHalf, fmt.Sprintf("%s (%d+%d files)", id, len(f[0]), len(f[1])))
		}
	}
	sort.Strings(oneHalf)
	t.Logf("%d of %d rules that decide rows rightly do so in one half only", len(oneHalf), len(ruleFiles))
	if os.Getenv("BOUNCECLASS_MISSES") != "" {
		for _, x := range oneHalf {
			t.Log("  " + x)
		}
	}
	if lower < halfFloor {
		t.Errorf("lower half agreement %.1f%% is below the floor %.1f%%", lower, halfFloor)
	}
}

// The split is a fixed function of the group names and sizes.
func TestSplitGroupsStable(t *testing.T) {
	size := map[string]int{"a": 5, "b": 3, "c": 2, "d": 7, "e": 1}
	first := splitGroups(size)
	for range 3 {
		again := splitGroups(size)
		for g, h := range first {
			if again[g] != h {
				t.Fatalf("group %s moved from half %d to %d", g, h, again[g])
			}
		}
	}
	var rows [2]int
	for g, h := range first {
		rows[h] += size[g]
	}
	if d := rows[0] - rows[1]; d > 7 || d < -7 {
		t.Errorf("halves of %d and %d rows differ by more than the largest group", rows[0], rows[1])
	}
}
