package dsn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, every
// failed recipient must have a reason and category, and the views must
// encode as JSON.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("From: MAILER-DAEMON\nSubject: Undelivered\nX-Failed-Recipients: a@b.c\n\n<a@b.c>:\n"))
	f.Add([]byte("Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction:\nStatus: 5.\n"))
	f.Add([]byte("Subject: AWS Notification\n\n{\"notificationType\":\"Bounce\",\"bounce\":{}}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := Parse(raw)
		for _, r := range b.Failed() {
			if r.Reason == "" || r.Category == "" {
				t.Fatalf("failed recipient without reason: %+v", r)
			}
		}
		if _, err := json.Marshal(b.Views()); err != nil {
			t.Fatal(err)
		}
		_ = b.TrackingHeader()
	})
}
