package arf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and its
// view must always encode as JSON.
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
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := Parse(raw)
		if _, err := json.Marshal(r.View()); err != nil {
			t.Fatalf("view does not encode: %v", err)
		}
		_ = r.TrackingHeader()
		_ = r.EffectiveFeedbackType()
	})
}
