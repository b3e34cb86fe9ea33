package dsn

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mailmon/mailmon/services/internal/corpustest"
)

// corpusDir returns the bounce part of the shared third-party corpora
// (../shared/corpora/README.md from the repository root).
func corpusDir(t testing.TB) string { return filepath.Join(corpustest.Dir(t), "bounces") }

// reasonFloor is the share of upstream-expected reasons Parse must agree
// with on the whole corpus. It is set a little under the measured figure,
// so that a regression fails.
const reasonFloor = 0.89

// halfFloor is the share the lower of the two split halves (see splitHalves)
// must reach: the figure that estimates agreement on bounces from mail
// systems the rules were not written from.
const halfFloor = 0.85

// splitSeed seeds the split of the corpus's MTA groups into two halves.
// Changing it changes the halves, so it never changes.
const splitSeed = 3464

// splitHalves assigns each MTA group (answers.jsonl's mta_group) to half 0
// or half 1: the distinct groups, sorted by name, are shuffled with a PCG
// generator seeded (splitSeed, splitSeed) and the first half of the
// shuffled list (rounded up) is half 0. All the messages of a group are in
// the same half, so a rule written from one half meets the other's mail
// systems for the first time.
func splitHalves(rows []corpusRow) map[string]int {
	seen := map[string]bool{}
	var groups []string
	for _, r := range rows {
		if !seen[r.Group] {
			seen[r.Group] = true
			groups = append(groups, r.Group)
		}
	}
	sort.Strings(groups)
	rng := rand.New(rand.NewPCG(splitSeed, splitSeed))
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	half := make(map[string]int, len(groups))
	for i, g := range groups {
		half[g] = 0
		if i >= (len(groups)+1)/2 {
			half[g] = 1
		}
	}
	return half
}

type corpusRow struct {
	File     string `json:"file"`
	Group    string `json:"mta_group"`
	Upstream []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
		Status string `json:"deliverystatus"`
	} `json:"upstream_expected"`
	V5 []struct {
		Reason     string `json:"reason"`
		Recipient  string `json:"recipient"`
		Diagnostic string `json:"diagnosticcode"`
		Action     string `json:"action"`
	} `json:"sisimai_5_1_0p3"`
}

func readCorpus(t testing.TB) []corpusRow {
	f, err := os.Open(filepath.Join(corpusDir(t), "answers.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []corpusRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r corpusRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// verdicts are the reasons Parse gives a message, in the order of its
// recipients, in the vocabulary of the corpus keys: an auto-reply is
// "vacation" and a complaint notice "feedback".
func verdicts(b *Bounce) []string {
	switch b.Kind {
	case KindAutoReply:
		return []string{"vacation"}
	case KindFeedback:
		return []string{"feedback"}
	}
	var out []string
	for _, r := range b.Recipients {
		out = append(out, r.Reason)
	}
	return out
}

// TestCorpusReasons parses every bounce of the shared corpus and compares
// the reason of each recipient with the one Sisimai's own test suite
// expects (upstream_expected). It prints the agreement and fails below
// reasonFloor.
func TestCorpusReasons(t *testing.T) {
	rows := readCorpus(t)
	dir := corpusDir(t)
	agree, total := 0, 0
	v5agree, v5total := 0, 0
	miss := map[string]int{}
	halfOf := splitHalves(rows)
	var halfAgree, halfTotal, halfGroups [2]int
	for _, h := range halfOf {
		halfGroups[h]++
	}
	for _, row := range rows {
		h := halfOf[row.Group]
		raw, err := os.ReadFile(filepath.Join(dir, row.File))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", row.File, err)
		}
		got := verdicts(b)
		for _, u := range row.Upstream {
			total++
			halfTotal[h]++
			g := ""
			if u.Index-1 < len(got) {
				g = got[u.Index-1]
			}
			if g == u.Reason {
				agree++
				halfAgree[h]++
				continue
			}
			miss[u.Reason+" -> "+g]++
			diag := ""
			if u.Index-1 < len(b.Recipients) {
				r := b.Recipients[u.Index-1]
				diag = r.Recipient + " | " + r.Action + " | " + r.Status + " | " + r.Diagnostic
			}
			if len(diag) > 400 {
				diag = diag[:400]
			}
			t.Logf("half %d %s #%d: want %s, got %q (kind %s) %s", h, row.File, u.Index, u.Reason, g, b.Kind, diag)
		}
		for i, v := range row.V5 {
			v5total++
			if i < len(got) && got[i] == v.Reason {
				v5agree++
			}
		}
	}
	keys := make([]string, 0, len(miss))
	for k := range miss {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return miss[keys[i]] > miss[keys[j]] })
	for _, k := range keys {
		t.Logf("miss %-32s %d", k, miss[k])
	}
	share := float64(agree) / float64(total)
	t.Logf("bounce reason agreement with upstream: %d/%d = %.1f%%; with Sisimai 5.1.0p3 records: %d/%d = %.1f%%",
		agree, total, 100*share, v5agree, v5total, 100*float64(v5agree)/float64(v5total))
	lower := 1.0
	for h := range 2 {
		hs := float64(halfAgree[h]) / float64(halfTotal[h])
		lower = min(lower, hs)
		t.Logf("half %d (%d groups, seed %d): %d/%d = %.1f%%", h, halfGroups[h], splitSeed, halfAgree[h], halfTotal[h], 100*hs)
	}
	t.Logf("whole %.1f%%, lower half %.1f%%", 100*share, 100*lower)
	if share < reasonFloor {
		t.Errorf("bounce reason agreement %.1f%% is below the floor %.1f%%", 100*share, 100*reasonFloor)
	}
	if lower < halfFloor {
		t.Errorf("bounce reason agreement on the lower half %.1f%% is below the floor %.1f%%", 100*lower, 100*halfFloor)
	}
}
