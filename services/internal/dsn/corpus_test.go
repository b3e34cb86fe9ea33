package dsn

import (
	"bufio"
	"encoding/json"
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
// with. It is set a little under the measured figure, so that a
// regression fails.
const reasonFloor = 0.87

type corpusRow struct {
	File     string `json:"file"`
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
	for _, row := range rows {
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
			g := ""
			if u.Index-1 < len(got) {
				g = got[u.Index-1]
			}
			if g == u.Reason {
				agree++
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
			t.Logf("%s #%d: want %s, got %q (kind %s) %s", row.File, u.Index, u.Reason, g, b.Kind, diag)
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
	if share < reasonFloor {
		t.Errorf("bounce reason agreement %.1f%% is below the floor %.1f%%", 100*share, 100*reasonFloor)
	}
}
