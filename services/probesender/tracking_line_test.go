package probesender

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
)

// The tracking header travels on one line: Postfix's header_checks log,
// which the MTA log tailer verifies it from, shows a fold's line break as
// "?", and such a header no longer verifies.
func TestTrackingHeaderIsOneLine(t *testing.T) {
	ring := testRing()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	value, err := ring.Sign(tracking.Fields{Customer: "probe-customer-with-a-long-name", Source: "2001:db8:ffff:ffff:ffff:ffff:ffff:fff1",
		MessageID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@probes.sender.example", Time: now})
	if err != nil {
		t.Fatal(err)
	}
	raw := buildMessage(probeMessage{ProbeID: "p1", From: "probe@sender.test", To: "seed@inbox.test", Date: now,
		Tracking: value, Variant: VariantPlain, Route: "relay-1", MessageID: "p1@sender.test"})
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, tracking.HeaderName+":") {
			continue
		}
		if i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			t.Fatalf("tracking header folded onto the next line: %q / %q", line, lines[i+1])
		}
		logged := strings.TrimSpace(strings.TrimPrefix(line, tracking.HeaderName+":"))
		if _, err := ring.Verify(logged, now, 0); err != nil {
			t.Fatalf("the header as one line does not verify: %v", err)
		}
		return
	}
	t.Fatal("no tracking header in the message")
}
