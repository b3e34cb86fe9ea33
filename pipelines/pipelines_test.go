package pipelines

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSubjectMatching(t *testing.T) {
	tests := []struct {
		pattern, sub       string
		contains, overlaps bool
	}{
		{"mailmon.probe.>", "mailmon.probe.sent", true, true},
		{"mailmon.probe.>", "mailmon.probe.sent.acme", true, true},
		{"mailmon.probe.>", "mailmon.probe", false, false},
		{"mailmon.probe.>", "mailmon.probe.>", true, true},
		{"mailmon.probe.>", "mailmon.*.sent", false, true},
		{"mailmon.probe.*", "mailmon.probe.sent", true, true},
		{"mailmon.probe.*", "mailmon.probe.sent.x", false, false},
		{"mailmon.probe.*", "mailmon.probe.>", false, true},
		{"mailmon.probe.sent", "mailmon.probe.sent", true, true},
		{"mailmon.probe.sent", "mailmon.probe.*", false, true},
		{"mailmon.dns.>", "mailmon.dnsbl.listed", false, false},
		{">", "anything.at.all", true, true},
	}
	for _, tt := range tests {
		if got := Contains(tt.pattern, tt.sub); got != tt.contains {
			t.Errorf("Contains(%q, %q) = %v, want %v", tt.pattern, tt.sub, got, tt.contains)
		}
		if got := Overlaps(tt.pattern, tt.sub); got != tt.overlaps {
			t.Errorf("Overlaps(%q, %q) = %v, want %v", tt.pattern, tt.sub, got, tt.overlaps)
		}
		if Overlaps(tt.pattern, tt.sub) != Overlaps(tt.sub, tt.pattern) {
			t.Errorf("Overlaps(%q, %q) is not symmetric", tt.pattern, tt.sub)
		}
	}
}

// Every event type must reach a stream and the ClickHouse sink; dead letters
// must have a stream too.
func TestEveryEventIsRoutedAndSunk(t *testing.T) {
	top, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	kinds := schemas.Kinds()
	if len(kinds) == 0 {
		t.Fatal("no event kinds registered")
	}
	for _, k := range kinds {
		if _, ok := top.StreamFor(k.Subject); !ok {
			t.Errorf("%s: subject %s is captured by no stream", k.Type, k.Subject)
			continue
		}
		sunk := false
		for _, c := range top.ConsumersOf(k.Subject) {
			sunk = sunk || c.Durable == "clickhouse-sink"
		}
		if !sunk {
			t.Errorf("%s: no clickhouse-sink consumer receives %s", k.Type, k.Subject)
		}
	}
	if _, ok := top.StreamFor(schemas.SubjectDeadLetterPrefix + "some-worker"); !ok {
		t.Error("dead letters are captured by no stream")
	}
}

func TestValidateRejectsBrokenTopologies(t *testing.T) {
	tests := map[string]struct{ doc, want string }{
		"filter outside stream": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}]
consumers: [{stream: A, durable: w, filter_subject: "b.x", ack_wait: 1s, max_deliver: 1, max_ack_pending: 1}]
`, `filter "b.x" is not inside`},
		"unknown stream": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}]
consumers: [{stream: B, durable: w, ack_wait: 1s, max_deliver: 1, max_ack_pending: 1}]
`, `unknown stream "B"`},
		"overlapping streams": {`
streams:
  - {name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}
  - {name: B, subjects: ["a.x"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}
`, `overlaps`},
		"no retention": {`
streams: [{name: A, subjects: ["a.>"], duplicate_window: 1m}]
`, `max_age and max_bytes must be set`},
		"unknown key": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m, retention: interest}]
`, `field retention not found`},
		"bad size": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1TB, duplicate_window: 1m}]
`, `bad size "1TB"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestApplyIsIdempotentAndUpdates(t *testing.T) {
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	top, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := top.Apply(ctx, js, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range top.Streams {
		st, err := js.Stream(ctx, s.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", s.Name, err)
		}
		cfg := st.CachedInfo().Config
		if cfg.MaxAge != time.Duration(s.MaxAge) || cfg.MaxBytes != int64(s.MaxBytes) || cfg.Duplicates != time.Duration(s.DuplicateWindow) {
			t.Errorf("stream %s: applied %v/%v/%v, declared %v/%v/%v", s.Name, cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates,
				time.Duration(s.MaxAge), int64(s.MaxBytes), time.Duration(s.DuplicateWindow))
		}
	}
	for _, c := range top.Consumers {
		cons, err := js.Consumer(ctx, c.Stream, c.Durable)
		if err != nil {
			t.Fatalf("consumer %s/%s: %v", c.Stream, c.Durable, err)
		}
		if got := cons.CachedInfo().Config.MaxDeliver; got != c.MaxDeliver {
			t.Errorf("consumer %s/%s: max_deliver %d, declared %d", c.Stream, c.Durable, got, c.MaxDeliver)
		}
	}
	for _, b := range top.Buckets {
		if _, err := js.KeyValue(ctx, b.Name); err != nil {
			t.Errorf("bucket %s: %v", b.Name, err)
		}
	}

	// A changed declaration is applied to the existing stream.
	top.Streams[0].MaxAge = Duration(time.Hour)
	if err := top.Apply(ctx, js, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, top.Streams[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Errorf("after update max_age = %v, want 1h", got)
	}
}

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
