package pipelines

import (
	"context"
	"strconv"
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
		"max_attempts with a server delivery limit": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}]
consumers: [{stream: A, durable: w, ack_wait: 1s, max_deliver: 10, max_attempts: 10, max_ack_pending: 1}]
`, `max_attempts needs max_deliver -1`},
		"negative max_attempts": {`
streams: [{name: A, subjects: ["a.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}]
consumers: [{stream: A, durable: w, ack_wait: 1s, max_deliver: -1, max_attempts: -1, max_ack_pending: 1}]
`, `max_attempts must not be negative`},
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

// A server delivery limit drops a message that shutdown naks and AckWait
// expiries brought to it, with no dead letter: every declared consumer has
// unlimited deliveries, and the workers limit failed attempts themselves
// (the clickhouse-sink by its reject_after, the others by max_attempts).
func TestNoDeclaredConsumerLetsTheServerDropMessages(t *testing.T) {
	top, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range top.Consumers {
		if c.MaxDeliver != -1 {
			t.Errorf("consumer %s/%s: max_deliver %d, want -1", c.Stream, c.Durable, c.MaxDeliver)
		}
		if c.Durable != "clickhouse-sink" && c.MaxAttempts <= 0 {
			t.Errorf("consumer %s/%s: no max_attempts: a message that always fails would be retried forever", c.Stream, c.Durable)
		}
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
		got, stored := cons.CachedInfo().Config.Metadata[MetadataMaxAttempts]
		if want := strconv.Itoa(c.MaxAttempts); stored != (c.MaxAttempts > 0) || stored && got != want {
			t.Errorf("consumer %s/%s: metadata %s %q (stored %v), declared max_attempts %d", c.Stream, c.Durable, MetadataMaxAttempts, got, stored, c.MaxAttempts)
		}
	}
	for _, b := range top.Buckets {
		if _, err := js.KeyValue(ctx, b.Name); err != nil {
			t.Errorf("bucket %s: %v", b.Name, err)
		}
	}

	// A consumer left by an older declaration, with a server delivery limit
	// and no attempt limit, is brought to the current one.
	var notifier Consumer
	for _, c := range top.Consumers {
		if c.Durable == "notifier" {
			notifier = c
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, notifier.Stream, jetstream.ConsumerConfig{
		Durable: notifier.Durable, FilterSubject: notifier.FilterSubject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Duration(notifier.AckWait), MaxDeliver: 50, MaxAckPending: notifier.MaxAckPending,
	}); err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, notifier.Stream, notifier.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := cons.CachedInfo().Config; cfg.MaxDeliver != -1 || cfg.Metadata[MetadataMaxAttempts] != strconv.Itoa(notifier.MaxAttempts) {
		t.Errorf("old notifier consumer after apply: max_deliver %d, metadata %v; want -1 and %s %d", cfg.MaxDeliver, cfg.Metadata, MetadataMaxAttempts, notifier.MaxAttempts)
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
