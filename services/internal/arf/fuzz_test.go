package arf

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// tightLimits are small enough that fuzzed inputs run into them.
var tightLimits = rawmail.Limits{ScanBytes: 16 << 10, Lines: 300, Parts: 16, Depth: 4}

// FuzzParse feeds arbitrary bytes to Parse. Whatever the input: no panic;
// the only error is a budget error, and it comes without a report; a
// report's view encodes as JSON; the work counted is linear in the input
// (a few passes per nesting level); and with tight limits, parsing stops
// soon after a limit runs out.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--x"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n"))
	f.Add([]byte("Content-Type: multipart/report; report-type=feedback-report; boundary=x\n\n--x\nContent-Type: text/plain\n\nFrom: a\nx\nFrom: a\nx\n--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nnot a field\n  folded\nVersion: 1\n--x--\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		bud := rawmail.NewBudget(rawmail.DefaultLimits())
		r, err := parseBudget(raw, bud)
		checkResult(t, r, err)
		used := bud.Used()
		if max := int64(maxPassesPerByte*(rawmail.MaxDepth+1)) * int64(len(raw)+1); used.ScanBytes > max {
			t.Fatalf("%d bytes scanned for a %d-byte message (more than %d)", used.ScanBytes, len(raw), max)
		}
		if lines := bytes.Count(raw, []byte("\n")) + 1; used.Lines > 4*(rawmail.MaxDepth+1)*lines {
			t.Fatalf("%d field lines read in a %d-line message", used.Lines, lines)
		}

		tight := rawmail.NewBudget(tightLimits)
		r, err = parseBudget(raw, tight)
		checkResult(t, r, err)
		used = tight.Used()
		if used.ScanBytes > tightLimits.ScanBytes+int64(maxPassesPerByte*len(raw)) {
			t.Fatalf("kept scanning after the budget ran out: %d bytes (limit %d, message %d)", used.ScanBytes, tightLimits.ScanBytes, len(raw))
		}
	})
}

// maxPassesPerByte bounds how many times one nesting level reads a byte.
const maxPassesPerByte = 8

func checkResult(t *testing.T, r *Report, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrBudgetExceeded) {
			t.Fatalf("error that is not a budget error: %v", err)
		}
		if r != nil {
			t.Fatal("a report came with the budget error")
		}
		return
	}
	if r == nil {
		t.Fatal("no report and no error")
	}
	if _, err := json.Marshal(r.View()); err != nil {
		t.Fatalf("view does not encode: %v", err)
	}
	_ = r.TrackingHeader()
	_ = r.EffectiveFeedbackType()
}
