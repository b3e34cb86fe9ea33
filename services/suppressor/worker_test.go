package suppressor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
)

const wait = 20 * time.Second

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// syncBuffer collects the worker's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a real embedded NATS with the topology applied and a running
// suppressor.
type env struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	w     *Worker
	clock *fakeClock
	log   *syncBuffer
	pub   *bus.Publisher
}

func start(t *testing.T, cfg suppression.Config) *env {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, kv: kv, clock: newFakeClock(t0), log: &syncBuffer{},
		pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "mta-log-tailer"})}
	w, err := New(cfg, worker.Settings{
		JetStream: js, Now: e.clock.Now, Source: schemas.Source{Worker: WorkerName, Host: "test"},
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return e
}

// publish stores ev (its header already set) as the pipeline would.
func (e *env) publish(t *testing.T, ev schemas.Event) {
	t.Helper()
	h := ev.EventHeader()
	h.ID = schemas.NewID()
	h.Source = schemas.Source{Worker: "test", Host: "test"}
	if err := schemas.Validate(ev); err != nil {
		t.Fatalf("test event breaks the contract: %v", err)
	}
	if err := e.pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// redeliver stores the same event again under another message id, as a
// redelivery past the duplicate window would bring it.
func (e *env) redeliver(t *testing.T, ev schemas.Event) {
	t.Helper()
	k, err := schemas.KindOf(ev)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(context.Background(), k.Subject, data, jetstream.WithMsgID(ev.EventHeader().ID+"-again")); err != nil {
		t.Fatal(err)
	}
}

// drained waits until the suppressor has handled and acked everything
// published so far on its three streams.
func (e *env) drained(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	testwait.Eventually(t, wait, "the suppressor's consumers to be drained", func() bool {
		for _, stream := range Streams {
			c, err := e.js.Consumer(ctx, stream, Durable)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

// entries returns the bucket's entries by key.
func (e *env) entries(t *testing.T) map[string]suppression.Entry {
	t.Helper()
	ctx := context.Background()
	lister, err := e.kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]suppression.Entry{}
	for key := range lister.Keys() {
		en, _, found, err := suppression.Get(ctx, e.kv, key)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			out[key] = en
		}
	}
	return out
}

// events returns the raw messages and decoded events of the SUPPRESSION
// stream, in order.
func (e *env) events(t *testing.T) ([]schemas.Event, [][]byte) {
	t.Helper()
	_, raw := streamMessages(t, e.js, "SUPPRESSION")
	var out []schemas.Event
	for i, data := range raw {
		ev, err := schemas.Decode(data)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := schemas.Validate(ev); err != nil {
			t.Fatalf("event breaks the contract: %v\n%s", err, data)
		}
		out = append(out, ev)
	}
	return out, raw
}

// streamMessages reads every stored message of a stream: subjects and
// data.
func streamMessages(t *testing.T, js jetstream.JetStream, name string) ([]string, [][]byte) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	var data [][]byte
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, m.Subject)
		data = append(data, m.Data)
	}
	return subjects, data
}

func added(evs []schemas.Event) []*schemas.SuppressionAdded {
	var out []*schemas.SuppressionAdded
	for _, ev := range evs {
		if a, ok := ev.(*schemas.SuppressionAdded); ok {
			out = append(out, a)
		}
	}
	return out
}

func removed(evs []schemas.Event) []*schemas.SuppressionRemoved {
	var out []*schemas.SuppressionRemoved
	for _, ev := range evs {
		if r, ok := ev.(*schemas.SuppressionRemoved); ok {
			out = append(out, r)
		}
	}
	return out
}

func distinctIDs(evs []schemas.Event) int {
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.EventHeader().ID] = true
	}
	return len(ids)
}

// keyFor is the key an entry for customer's recipient has under cfg.
func keyFor(t *testing.T, cfg suppression.Config, scope, customer, rcpt string) string {
	t.Helper()
	tg, err := cfg.Normalize.TargetFor(scope, customer, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Hasher().Key(tg)
}

func (e *env) ignored(why string) float64 {
	return testutil.ToFloat64(e.w.metrics.ignored.WithLabelValues(why))
}

// TestTracedPermanentBounceAddsOneEntry: a permanent bounce traced to our
// message adds an entry under the customer's key with one
// suppression.added event, and the same event delivered twice changes
// nothing more.
func TestTracedPermanentBounceAddsOneEntry(t *testing.T) {
	cfg := suppression.DefaultConfig()
	e := start(t, cfg)
	ev := bounce("b1", nil)
	e.publish(t, ev)
	e.drained(t)
	e.redeliver(t, ev)
	e.drained(t)

	key := keyFor(t, cfg, schemas.SuppressCustomerRecipient, "acme", "gone.user@example.org")
	all := e.entries(t)
	en, ok := all[key]
	if len(all) != 1 || !ok {
		t.Fatalf("bucket holds %v, want one entry under %s", slices.Collect(mapsKeys(all)), key)
	}
	if en.Reason != schemas.SuppressHardBounce || en.BounceCategory != "user_unknown" || en.Status != "5.1.1" ||
		en.Customer != "acme" || !en.Created.Equal(t0) || !en.Expires.Equal(t0.Add(90*24*time.Hour)) ||
		len(en.SourceEventIDs) != 1 || en.SourceEventIDs[0] != ev.ID || !strings.Contains(en.Reply, "User unknown") {
		t.Fatalf("entry %+v", en)
	}
	evs, _ := e.events(t)
	if n := distinctIDs(evs); n != 1 {
		t.Fatalf("%d distinct events, want one", n)
	}
	a := added(evs)
	if len(a) != 1 || a[0].ID != en.AddedID || a[0].Key != key || a[0].Reason != schemas.SuppressHardBounce ||
		a[0].Source.Worker != WorkerName || !a[0].Time.Equal(t0) {
		t.Fatalf("added event %+v", a)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestIgnoredEventsAddNothing: untraced and transient bounces, blocks and
// policy rejections, our own MTA's rejections, our probes and untrusted
// or uncounted complaints leave the list alone, each counted by why.
func TestIgnoredEventsAddNothing(t *testing.T) {
	e := start(t, suppression.DefaultConfig())
	e.publish(t, bounce("untraced", func(b *schemas.BounceReceived) { b.TraceMethod = schemas.TraceDKIM }))
	e.publish(t, bounce("4xx", func(b *schemas.BounceReceived) { b.Status, b.ReplyCode = "4.2.2", 452 }))
	e.publish(t, bounce("blocked", func(b *schemas.BounceReceived) {
		b.Status, b.Reason, b.Category = "5.7.1", "blocked", "blocked_ip_or_blocklist"
	}))
	e.publish(t, delivery("policy", func(d *schemas.DeliveryAttempted) { d.DSN, d.Category = "5.7.1", "policy" }))
	e.publish(t, delivery("rejected", func(d *schemas.DeliveryAttempted) {
		d.Status, d.Agent, d.QueueID, d.Reply = schemas.StatusRejected, "smtpd", "", "554 5.1.1 <gone.user@example.org>: Recipient address rejected"
	}))
	e.publish(t, delivery("probe", func(d *schemas.DeliveryAttempted) { d.ProbeID = "probe-1" }))
	e.publish(t, complaint("untrusted", func(c *schemas.ComplaintReceived) { c.Trusted, c.Trust = false, schemas.TrustUnverified }))
	e.publish(t, complaint("notcounted", func(c *schemas.ComplaintReceived) { c.Counted, c.FeedbackType = false, "not-spam" }))
	e.publish(t, bounce("garbage", func(b *schemas.BounceReceived) { b.Recipient = "<@@>" }))
	e.drained(t)

	if all := e.entries(t); len(all) != 0 {
		t.Fatalf("bucket holds %d entries, want none", len(all))
	}
	if evs, _ := e.events(t); len(evs) != 0 {
		t.Fatalf("%d suppression events, want none", len(evs))
	}
	for why, want := range map[string]float64{WhyUntraced: 1, WhyTransient: 1, WhyCategory: 2, WhyOwnReject: 1,
		WhyProbe: 1, WhyUntrusted: 1, WhyNotCounted: 1, WhyBadAddress: 1} {
		if got := e.ignored(why); got != want {
			t.Errorf("ignored_total{why=%q} = %v, want %v", why, got, want)
		}
	}
}

// TestTrustedComplaintNeverExpires: a counted, trusted complaint adds a
// complaint entry without an expiry, which the sweep keeps however late.
func TestTrustedComplaintNeverExpires(t *testing.T) {
	cfg := suppression.DefaultConfig()
	cfg.SweepInterval = config.Duration(20 * time.Millisecond)
	e := start(t, cfg)
	e.publish(t, complaint("c1", nil))
	e.drained(t)
	key := keyFor(t, cfg, schemas.SuppressCustomerRecipient, "acme", "Complainer@example.org")
	en, ok := e.entries(t)[key]
	if !ok || en.Reason != schemas.SuppressComplaint || !en.Expires.IsZero() {
		t.Fatalf("complaint entry %v %+v", ok, en)
	}
	e.clock.Advance(10 * 365 * 24 * time.Hour)
	sweeps := testutil.ToFloat64(e.w.metrics.sweeps.WithLabelValues("ok"))
	testwait.Eventually(t, wait, "two more sweeps", func() bool {
		return testutil.ToFloat64(e.w.metrics.sweeps.WithLabelValues("ok")) >= sweeps+2
	})
	if _, ok := e.entries(t)[key]; !ok {
		t.Fatal("the sweep removed a complaint entry that never expires")
	}
	if a := added(mustEvents(t, e)); len(a) != 1 || !a[0].Expires.IsZero() {
		t.Fatalf("added events %+v", a)
	}
}

func mustEvents(t *testing.T, e *env) []schemas.Event {
	t.Helper()
	evs, _ := e.events(t)
	return evs
}

// TestDeliveryClearsBounceEntries: a later successful delivery removes the
// address's bounce entries created before it, for its customer and the
// global list and any other customer, and keeps complaint entries and
// bounce entries created after it.
func TestDeliveryClearsBounceEntries(t *testing.T) {
	cfg := suppression.DefaultConfig()
	e := start(t, cfg)
	const rcpt = "gone.user@example.org"
	e.publish(t, bounce("acme", nil))
	e.publish(t, delivery("global", func(d *schemas.DeliveryAttempted) { d.Customer = "" }))
	e.publish(t, bounce("other", func(b *schemas.BounceReceived) { b.Customer = "other" }))
	e.publish(t, complaint("beta", func(c *schemas.ComplaintReceived) { c.Customer, c.OriginalRcptTo = "beta", []string{rcpt} }))
	e.publish(t, bounce("later", func(b *schemas.BounceReceived) { b.Customer, b.Time = "gamma", t0.Add(2*time.Hour) }))
	e.drained(t)
	key := func(scope, customer string) string { return keyFor(t, cfg, scope, customer, rcpt) }
	acme, global, other := key(schemas.SuppressCustomerRecipient, "acme"), key(schemas.SuppressGlobalRecipient, ""), key(schemas.SuppressCustomerRecipient, "other")
	beta, gamma := key(schemas.SuppressCustomerRecipient, "beta"), key(schemas.SuppressCustomerRecipient, "gamma")
	if all := e.entries(t); len(all) != 5 {
		t.Fatalf("before the delivery: %d entries, want 5", len(all))
	}

	sent := delivery("sent", func(d *schemas.DeliveryAttempted) {
		d.Time, d.Status, d.DSN, d.ReplyCode, d.Reason, d.Category = t0.Add(time.Hour), schemas.StatusSent, "2.0.0", 250, "delivered", ""
		d.Reply = "250 2.0.0 Ok: queued as 9A8B7C"
		d.Recipient = "<gone.user@EXAMPLE.ORG>"
	})
	e.publish(t, sent)
	e.drained(t)
	all := e.entries(t)
	for _, k := range []string{acme, global, other} {
		if _, ok := all[k]; ok {
			t.Errorf("bounce entry %s created before the delivery was kept", k)
		}
	}
	for _, k := range []string{beta, gamma} {
		if _, ok := all[k]; !ok {
			t.Errorf("entry %s was cleared (a complaint, or a bounce after the delivery)", k)
		}
	}
	rm := removed(mustEvents(t, e))
	if len(rm) != 3 {
		t.Fatalf("%d removed events, want 3", len(rm))
	}
	for _, r := range rm {
		if r.Cause != schemas.UnsuppressDelivered || r.Reason != schemas.SuppressHardBounce || !r.Time.Equal(sent.Time) ||
			len(r.SourceEventIDs) != 1 || r.SourceEventIDs[0] != sent.ID || r.HeldMs != time.Hour.Milliseconds() {
			t.Errorf("removed event %+v", r)
		}
	}
	if got := testutil.ToFloat64(e.w.metrics.removed.WithLabelValues(schemas.UnsuppressDelivered)); got != 3 {
		t.Errorf("removed_total{cause=delivered} = %v, want 3", got)
	}
	// The same delivery again changes nothing.
	e.redeliver(t, sent)
	e.drained(t)
	if rm := removed(mustEvents(t, e)); len(rm) != 3 {
		t.Fatalf("after the redelivery: %d removed events, want 3", len(rm))
	}
}

// TestSweepRemovesExpired: past its expiry an entry is removed with cause
// expired, dated at its expiry.
func TestSweepRemovesExpired(t *testing.T) {
	cfg := suppression.DefaultConfig()
	cfg.SweepInterval = config.Duration(20 * time.Millisecond)
	e := start(t, cfg)
	e.publish(t, bounce("b1", func(b *schemas.BounceReceived) {
		b.Recipient, b.Status, b.Category = "nobody@nowhere.example", "5.1.2", "domain_unknown" // 30 days
	}))
	e.publish(t, bounce("b2", nil)) // 90 days
	e.drained(t)
	if n := len(e.entries(t)); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	gone := keyFor(t, cfg, schemas.SuppressCustomerRecipient, "acme", "nobody@nowhere.example")
	e.clock.Advance(31 * 24 * time.Hour)
	testwait.Eventually(t, wait, "the expired entry to be swept", func() bool {
		_, ok := e.entries(t)[gone]
		return !ok
	})
	if n := len(e.entries(t)); n != 1 {
		t.Fatalf("%d entries after the sweep, want the 90-day one", n)
	}
	rm := removed(mustEvents(t, e))
	if len(rm) != 1 || rm[0].Key != gone || rm[0].Cause != schemas.UnsuppressExpired ||
		!rm[0].Time.Equal(t0.Add(30*24*time.Hour)) || rm[0].HeldMs != (30*24*time.Hour).Milliseconds() {
		t.Fatalf("removed events %+v", rm)
	}
	if got := testutil.ToFloat64(e.w.metrics.removed.WithLabelValues(schemas.UnsuppressExpired)); got != 1 {
		t.Errorf("removed_total{cause=expired} = %v", got)
	}
	testwait.Eventually(t, wait, "the entries gauge", func() bool {
		return testutil.ToFloat64(e.w.metrics.entries.WithLabelValues(schemas.SuppressHardBounce)) == 1
	})
}

// TestSoftBouncesSuppressAtCount: with soft_bounces.count 3, the third
// distinct mailbox-full deferral within the window adds a soft_bounces
// entry; a redelivered one counts once.
func TestSoftBouncesSuppressAtCount(t *testing.T) {
	cfg := softConfig()
	e := start(t, cfg)
	first := deferral("s1", t0)
	e.publish(t, first)
	e.drained(t)
	e.redeliver(t, first)
	e.publish(t, deferral("s2", t0.Add(time.Hour)))
	e.drained(t)
	if n := len(e.entries(t)); n != 0 {
		t.Fatalf("%d entries after two distinct soft failures, want none", n)
	}
	if got := e.ignored(WhySoftDuplicate); got != 1 {
		t.Errorf("ignored_total{why=soft_duplicate} = %v, want 1", got)
	}
	third := deferral("s3", t0.Add(2*time.Hour))
	e.publish(t, third)
	e.drained(t)
	key := keyFor(t, cfg, schemas.SuppressCustomerRecipient, "acme", "gone.user@example.org")
	en, ok := e.entries(t)[key]
	if !ok || en.Reason != schemas.SuppressSoftBounces || len(en.SourceEventIDs) != 3 ||
		!en.Expires.Equal(third.Time.Add(30*24*time.Hour)) || en.BounceCategory != "mailbox_full" {
		t.Fatalf("soft_bounces entry %v %+v", ok, en)
	}
	if a := added(mustEvents(t, e)); len(a) != 1 || a[0].Reason != schemas.SuppressSoftBounces {
		t.Fatalf("added events %+v", a)
	}
}

// TestHashKeyKeepsAddressesOut: with a hash key, no address appears in
// the bucket's values, the events or the log, and nor does the key.
func TestHashKeyKeepsAddressesOut(t *testing.T) {
	const secret = "s3cret-hash-key-value"
	cfg := suppression.DefaultConfig()
	cfg.HashKey = config.Secret(secret)
	cfg.SweepInterval = config.Duration(20 * time.Millisecond)
	e := start(t, cfg)
	e.publish(t, bounce("b1", nil))
	e.publish(t, complaint("c1", nil))
	e.publish(t, bounce("b2", func(b *schemas.BounceReceived) { b.Recipient, b.Customer = "Soon.Gone@example.net", "beta" }))
	e.drained(t)
	e.publish(t, delivery("sent", func(d *schemas.DeliveryAttempted) {
		d.Time, d.Status, d.DSN, d.ReplyCode, d.Category = t0.Add(time.Hour), schemas.StatusSent, "2.0.0", 250, ""
		d.Reply = "250 2.0.0 Ok"
	}))
	e.drained(t)
	e.clock.Advance(91 * 24 * time.Hour)
	testwait.Eventually(t, wait, "the beta bounce to expire", func() bool { return len(e.entries(t)) == 1 })

	evs, rawEvents := e.events(t)
	if len(added(evs)) != 3 || len(removed(evs)) != 2 {
		t.Fatalf("%d added and %d removed events, want 3 and 2", len(added(evs)), len(removed(evs)))
	}
	_, rawKV := streamMessages(t, e.js, "KV_"+suppression.Bucket)
	if len(rawKV) == 0 {
		t.Fatal("no bucket values read")
	}
	blobs := append(append(rawEvents, rawKV...), []byte(e.log.String()))
	for _, b := range blobs {
		lower := bytes.ToLower(b)
		for _, s := range []string{"gone.user", "complainer", "soon.gone", secret} {
			if bytes.Contains(lower, []byte(strings.ToLower(s))) {
				t.Fatalf("%q appears in clear:\n%s", s, b)
			}
		}
	}
	for _, a := range added(evs) {
		if a.Recipient != "" || a.RecipientHash == "" || a.Reply != "" && strings.Contains(a.Reply, "@") {
			t.Errorf("added event keeps the address: %+v", a)
		}
	}
}

// TestNewRejectsABadConfig: every problem of the section at once, named
// under suppression.
func TestNewRejectsABadConfig(t *testing.T) {
	_, _, js := natstest.Start(t)
	cfg := suppression.DefaultConfig()
	cfg.Scope = "everyone"
	cfg.SweepInterval = 0
	_, err := New(cfg, worker.Settings{JetStream: js})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"suppression.scope", "suppression.sweep_interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
