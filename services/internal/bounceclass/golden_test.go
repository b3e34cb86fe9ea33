package bounceclass

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/rules.golden from testdata/rules.input")

// goldenLine is how one example is shown in rules.golden.
func goldenLine(line string) string {
	code, status, text := ParseReply(line)
	r := Classify(Input{Text: text, ReplyCode: code, Status: status})
	rule := r.Rule
	if rule == "" {
		rule = "-"
	}
	sig := r.Signature
	if sig == "" {
		sig = "-"
	}
	perm := "temp"
	if r.Permanent {
		perm = "perm"
	}
	return fmt.Sprintf("%-28s %-15s %-26s %-16s %s | %s", rule, r.Reason, r.Category, sig, perm, line)
}

func readInput(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "rules.input"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// TestGolden classifies every example of testdata/rules.input and compares
// with testdata/rules.golden (rule, reason, category, signature,
// permanence). Run with -update after changing the rules and review the diff.
func TestGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# rule                       reason          category                   signature        perm | input (testdata/rules.input)\n")
	for _, l := range readInput(t) {
		b.WriteString(goldenLine(l))
		b.WriteByte('\n')
	}
	golden.Check(t, filepath.Join("testdata", "rules.golden"), []byte(b.String()), *update)
}

// TestEveryRuleHasExample: each rule of the table decides at least one
// example of rules.input, so each is tested on its own.
func TestEveryRuleHasExample(t *testing.T) {
	used := map[string]bool{}
	for _, l := range readInput(t) {
		code, status, text := ParseReply(l)
		used[Classify(Input{Text: text, ReplyCode: code, Status: status}).Rule] = true
	}
	for _, r := range Rules {
		if !used[r.ID] {
			t.Errorf("rule %s decides no example in testdata/rules.input", r.ID)
		}
	}
}
