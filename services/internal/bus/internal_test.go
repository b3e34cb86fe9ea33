package bus

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

func TestHeaderSafe(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "554 5.7.1 rejected", 100, "554 5.7.1 rejected"},
		{"line breaks become spaces", "line one\r\nline two\tend", 100, "line one  line two end"},
		{"invalid utf-8 replaced", "bad \xff byte", 100, "bad \uFFFD byte"},
		{"cut with ellipsis", "abcdefghij", 8, "abcde…"},
		{"cut on a rune boundary", "ééééé", 8, "éé…"},
		{"exact fit", "abcdefgh", 8, "abcdefgh"},
		{"surrounding space trimmed", "\n reason \n", 100, "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headerSafe(tt.in, tt.max)
			if got != tt.want {
				t.Fatalf("headerSafe(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if len(got) > tt.max || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n") {
				t.Fatalf("headerSafe(%q) = %q is not a safe header value of at most %d bytes", tt.in, got, tt.max)
			}
		})
	}
}

func FuzzHeaderSafe(f *testing.F) {
	f.Add("554 poor reputation\r\nX-Injected: yes", 64)
	f.Add("ééé\xff", 5)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < len("…")+4 || max > 4096 {
			return
		}
		got := headerSafe(s, max)
		if len(got) > max || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\x00") {
			t.Fatalf("headerSafe(%q, %d) = %q", s, max, got)
		}
	})
}

func TestDeadLetterHeader(t *testing.T) {
	m := &Msg{
		Subject: "mailmon.alert.raised", Stream: "ALERTS", StreamSeq: 42, Deliveries: 3,
		Header: nats.Header{
			"Nats-Msg-Id":          []string{"0190-event-id"},
			"Nats-Expected-Stream": []string{"ALERTS"},
			"Nats-Rollup":          []string{"all"},
			"Traceparent":          []string{"00-abc-def-01"},
		},
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hdr := deadLetterHeader("notifier", m, "webhook answered 400", now)
	want := map[string]string{
		HeaderDeadLetterReason:     "webhook answered 400",
		HeaderDeadLetterSubject:    "mailmon.alert.raised",
		HeaderDeadLetterStream:     "ALERTS",
		HeaderDeadLetterSequence:   "42",
		HeaderDeadLetterDeliveries: "3",
		HeaderDeadLetterWorker:     "notifier",
		HeaderDeadLetterTime:       "2026-03-01T12:00:00Z",
		HeaderDeadLetterMsgID:      "0190-event-id",
		"Traceparent":              "00-abc-def-01",
	}
	for k, v := range want {
		if got := hdr.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	for k := range hdr {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			t.Errorf("dead letter keeps server header %s", k)
		}
	}
	if m.Header.Get("Nats-Msg-Id") == "" {
		t.Error("deadLetterHeader modified the original header")
	}
	if got, want := deadLetterMsgID("notifier", "ALERTS", 42), "dlq.notifier.ALERTS.42"; got != want {
		t.Errorf("dead letter id %q, want %q", got, want)
	}
}

func TestRetryDelay(t *testing.T) {
	c := &consumer{backoff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}}
	for n, want := range map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 5 * time.Second, 3: 30 * time.Second, 9: 30 * time.Second} {
		if got := c.retryDelay(n); got != want {
			t.Errorf("retryDelay(%d) = %s, want %s", n, got, want)
		}
	}
}
