package postfixlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/bounceclass"
	"github.com/mailmon/mailmon/services/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenRecord is how a record is written to a golden file. The
// classification is left out: it belongs to bounceclass, whose rules change
// on their own schedule (its verdicts on these logs are checked by
// TestGoldenClassified).
type goldenRecord struct {
	Type     string    `json:"type"`
	Delivery *Delivery `json:"delivery,omitempty"`
	Reject   *Reject   `json:"reject,omitempty"`
}

func joinFile(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &Parser{Ref: time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC)}
	j := NewJoiner(JoinerConfig{})
	sc := bufio.NewScanner(f)
	var recs []Record
	var n int64
	var l Line
	for sc.Scan() {
		n++
		if !p.Parse(sc.Text(), n, &l) {
			t.Errorf("%s:%d: not parsed: %q", filepath.Base(path), n, sc.Text())
			continue
		}
		if r := j.Add(&l); r != nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// TestGolden parses and joins the hand-written logs in testdata and compares
// every record with testdata/NAME.golden.jsonl (go test -update rewrites).
func TestGolden(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no testdata logs")
	}
	for _, path := range logs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			for _, r := range joinFile(t, path) {
				var g goldenRecord
				switch x := r.(type) {
				case *Delivery:
					c := *x
					c.Classification = bounceclass.Result{}
					g = goldenRecord{Type: "delivery", Delivery: &c}
				case *Reject:
					c := *x
					c.Classification = bounceclass.Result{}
					g = goldenRecord{Type: "reject", Reject: &c}
				}
				if err := enc.Encode(g); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, strings.TrimSuffix(path, ".log")+".golden.jsonl", buf.Bytes(), *update)
		})
	}
}

// TestGoldenClassified checks the classifier's category on the golden logs'
// failures: the joiner hands it the remote reply, not Postfix's wording.
func TestGoldenClassified(t *testing.T) {
	want := map[string]string{
		"outbound-syslog.log:sam@outlook.example:bounced":        "blocked_ip_or_blocklist",
		"outbound-syslog.log:lee@no-such-domain.example:bounced": "domain_unknown",
		"outbound-syslog.log:kim@example.org:bounced":            "blocked_ip_or_blocklist",
		"content-filter-iso.log:omar@mailbox.example:deferred":   "mailbox_full",
		"content-filter-iso.log:omar@mailbox.example:expired":    "expired",
		"exim-main.log:bob@corp.example:bounced":                 "blocked_ip_or_blocklist",
		"exim-main.log:ann@gmail.example:sent":                   bounceclass.CategoryOf(bounceclass.ReasonDelivered),
	}
	got := map[string]string{}
	for _, name := range []string{"outbound-syslog.log", "content-filter-iso.log", "exim-main.log"} {
		for _, r := range joinFile(t, filepath.Join("testdata", name)) {
			if d, ok := r.(*Delivery); ok {
				got[name+":"+d.Recipient+":"+d.Status] = d.Classification.Category
			}
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: category %q, want %q", k, g, w)
		}
	}
}
