package policyservice

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// suppressionConfig adds the suppression settings the tests use: a hash
// key (so keys are HMACs), Gmail's dot rule, a dry-run customer.
func suppressionConfig(c *Config) {
	c.Suppression.HashKey = "test-hash-key"
	c.Suppression.Normalize.IgnoreDots = []string{"gmail.com"}
	c.Suppression.DryRunCustomers = []string{"cust-dry"}
	c.Suppression.RejectText = "5.1.1 Recipient address rejected: gone"
	c.Customers.SenderDomains["d.example"] = "cust-dry"
}

// suppress stores an entry the way the suppressor does and returns it.
func suppress(t *testing.T, kv jetstream.KeyValue, cfg suppression.Config, scope, customer, recipient string, expires time.Time) suppression.Entry {
	t.Helper()
	tg, err := cfg.Normalize.TargetFor(scope, customer, recipient)
	if err != nil {
		t.Fatal(err)
	}
	e := suppression.NewEntry(cfg.Hasher(), tg, schemas.SuppressHardBounce, time.Now(), expires)
	e.AddedID = suppression.AddedID(e.Created, e.Key, "test")
	if _, err := suppression.Put(context.Background(), kv, e, 0); err != nil {
		t.Fatal(err)
	}
	return e
}

func suppressionKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), suppression.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// labelled reads one labelled counter of the server.
func labelled(t *testing.T, srv *Server, name, label, value string) float64 {
	t.Helper()
	families, err := srv.set.Metrics.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestSuppressionAnswers(t *testing.T) {
	clk := newClock()
	e := start(t, suppressionConfig, clk.now)
	<-e.srv.State().Synced()
	cfg := e.srv.cfg.Suppression
	kv := suppressionKV(t, e.js)
	never := time.Time{}
	later := clk.now().Add(time.Hour)
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "Gone.User@Example.ORG", never)
	suppress(t, kv, cfg, schemas.SuppressGlobalRecipient, "", "everyone-bounces@example.net", never)
	suppress(t, kv, cfg, schemas.SuppressCustomerDomain, "cust-a", "dead.example", never)
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "user@bücher.example", never)
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "jo.ann@gmail.com", never)
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "for-an-hour@example.org", later)
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "expired@example.org", clk.now().Add(-time.Second))
	suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-dry", "dry@example.org", never)
	deleted := suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-a", "deleted@example.org", never)
	// The expired one is not held.
	eventually(t, "entries loaded", func() bool { return e.srv.supp.set.Len() == 8 })

	c := dial(t, e.srv.Addr())
	reject := "550 5.1.1 Recipient address rejected: gone"
	ask := func(sender, rcpt string) string {
		return c.ask(t, map[string]string{"sender": sender, "recipient": rcpt, "client_address": "192.0.2.1"})
	}
	for _, tc := range []struct {
		name, sender, rcpt, want string
	}{
		{"the customer's suppressed recipient", "news@a.example", "Gone.User@Example.ORG", reject},
		{"domain case and a trailing dot do not matter", "news@a.example", "<Gone.User@example.org.>", reject},
		{"the local part is compared as sent", "news@a.example", "gone.user@example.org", "DUNNO"},
		{"another customer sends to it", "news@b.example", "Gone.User@example.org", "DUNNO"},
		{"no customer known", "news@unknown.example", "Gone.User@example.org", "DUNNO"},
		{"the global entry, one customer", "news@a.example", "everyone-bounces@example.net", reject},
		{"the global entry, another customer", "news@b.example", "everyone-bounces@EXAMPLE.net", reject},
		{"the global entry, no customer", "", "everyone-bounces@example.net", reject},
		{"a domain entry covers the whole domain", "news@a.example", "anyone@Dead.Example", reject},
		{"a domain entry, another customer", "news@b.example", "anyone@dead.example", "DUNNO"},
		{"IDNA: the U-label", "news@a.example", "user@BÜCHER.example", reject},
		{"IDNA: the A-label", "news@a.example", "user@xn--bcher-kva.example", reject},
		{"Gmail ignores dots and case", "news@a.example", "JoAnn@Gmail.com", reject},
		{"an unexpired entry", "news@a.example", "for-an-hour@example.org", reject},
		{"an expired entry", "news@a.example", "expired@example.org", "DUNNO"},
		{"dry run: counted, not rejected", "news@d.example", "dry@example.org", "DUNNO"},
		{"not an address", "news@a.example", "no-at-sign", "DUNNO"},
		{"no recipient", "news@a.example", "", "DUNNO"},
	} {
		if got := ask(tc.sender, tc.rcpt); got != tc.want {
			t.Errorf("%s: %s -> %s answered %q, want %q", tc.name, tc.sender, tc.rcpt, got, tc.want)
		}
	}
	if got := labelled(t, e.srv, "mailmon_policy_service_suppression_dry_run_total", "customer", "cust-dry"); got != 1 {
		t.Errorf("dry-run counter %v, want 1", got)
	}
	if got := metricValue(t, e.srv, "mailmon_policy_service_suppression_rejects_total"); got != 10 {
		t.Errorf("rejects counter %v, want 10", got)
	}

	// A deleted entry stops within the watch's latency.
	if got := ask("news@a.example", "deleted@example.org"); got != reject {
		t.Fatalf("before the delete: %q", got)
	}
	if err := kv.Delete(context.Background(), deleted.Key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted entry released", func() bool { return ask("news@a.example", "deleted@example.org") == "DUNNO" })

	// An entry stops counting at its expiry, before any sweep deletes it.
	clk.advance(time.Hour + time.Second)
	if got := ask("news@a.example", "for-an-hour@example.org"); got != "DUNNO" {
		t.Errorf("past its expiry: %q", got)
	}

	// Bad values are counted and left out; a bad value replacing a good
	// entry removes it.
	good := suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-b", "x@example.org", never)
	eventually(t, "x loaded", func() bool { return ask("news@b.example", "x@example.org") == reject })
	if _, err := kv.Put(context.Background(), good.Key, []byte(`{"not":"an entry"}`)); err != nil {
		t.Fatal(err)
	}
	other := suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, "cust-b", "y@example.org", never)
	if _, err := kv.Put(context.Background(), "r.all.0123456789abcdef0123456789abcdef", other.Marshal()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bad values counted", func() bool {
		return metricValue(t, e.srv, "mailmon_policy_service_suppression_invalid_total") == 2
	})
	if got := ask("news@b.example", "x@example.org"); got != "DUNNO" {
		t.Errorf("an entry replaced by a bad value: %q", got)
	}
}

// A cut-off is answered before a suppressed recipient; a suppressed
// recipient before a reroute. The list is enforced while the decisions
// fail open.
func TestSuppressionOrder(t *testing.T) {
	e := start(t, suppressionConfig)
	<-e.srv.State().Synced()
	cfg := e.srv.cfg.Suppression
	kv := suppressionKV(t, e.js)
	for _, c := range []string{"cust-a", "cust-b"} {
		suppress(t, kv, cfg, schemas.SuppressCustomerRecipient, c, "gone@example.org", time.Time{})
	}
	e.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, time.Now().Add(time.Hour)))
	e.put(t, record(enforcement.Customer("cust-b"), schemas.ActionReroute, time.Now().Add(time.Hour)))
	eventually(t, "loaded", func() bool { return e.srv.supp.set.Len() == 2 && e.srv.State().Len() == 2 })
	c := dial(t, e.srv.Addr())
	if got := c.ask(t, map[string]string{"sender": "x@a.example", "recipient": "gone@example.org"}); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("cut-off and suppressed: %q, want the cut-off", got)
	}
	if got := c.ask(t, map[string]string{"sender": "x@b.example", "recipient": "gone@example.org"}); !strings.HasPrefix(got, "550 5.1.1") {
		t.Errorf("reroute and suppressed: %q, want the suppression", got)
	}
	if got := c.ask(t, map[string]string{"sender": "x@b.example", "recipient": "other@example.org"}); got != "FILTER ndr:" {
		t.Errorf("reroute alone: %q", got)
	}
}

// runServer runs a policy service on js until the returned stop is called.
func runServer(t *testing.T, cfg Config, js jetstream.JetStream) (*Server, func()) {
	t.Helper()
	srv, err := New(cfg, testSettings(js))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return srv, stop
}

// A restart loads the snapshot, then reads only the changes made while
// the service was down (a watch resumed from the snapshot's revision):
// puts and deletes both apply. Without NATS the snapshot is enforced.
func TestSuppressionSnapshotResume(t *testing.T) {
	ns, _, js := natstest.Start(t)
	ctx := context.Background()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv := suppressionKV(t, js)
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Customers.SenderDomains = map[string]string{"a.example": "cust-a", "b.example": "cust-b"}
	suppressionConfig(&cfg)
	cfg.AnswerTimeout = 1 // no wait for the decisions without NATS
	cfg.SuppressionSnapshotFile = filepath.Join(t.TempDir(), "policy-service", "suppression.bin")
	sc := cfg.Suppression
	gone := suppress(t, kv, sc, schemas.SuppressCustomerRecipient, "cust-a", "gone@example.org", time.Time{})
	suppress(t, kv, sc, schemas.SuppressGlobalRecipient, "", "global@example.org", time.Time{})

	first, stop := runServer(t, cfg, js)
	eventually(t, "first snapshot written", func() bool {
		return metricValue(t, first, "mailmon_policy_service_suppression_snapshot_writes_total") == 1
	})
	if got := labelled(t, first, "mailmon_policy_service_suppression_loads_total", "source", "bucket"); got != 1 {
		t.Errorf("first start: %v whole-bucket loads, want 1", got)
	}
	stop()
	st, err := os.Stat(cfg.SuppressionSnapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", st.Mode().Perm())
	}
	held, rev, err := readSuppressionSnapshot(cfg.SuppressionSnapshotFile, time.Now())
	if err != nil || len(held) != 2 || rev != 2 {
		t.Fatalf("snapshot: %d entries at revision %d, %v; want 2 at 2", len(held), rev, err)
	}

	// While the service is down: one entry deleted, one added.
	if err := kv.Delete(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}
	suppress(t, kv, sc, schemas.SuppressCustomerRecipient, "cust-b", "new@example.org", time.Time{})

	second, stop := runServer(t, cfg, js)
	if got := labelled(t, second, "mailmon_policy_service_suppression_loads_total", "source", "snapshot"); got != 1 {
		t.Errorf("restart: %v snapshot loads, want 1", got)
	}
	eventually(t, "resumed watch caught up", func() bool {
		return metricValue(t, second, "mailmon_policy_service_suppression_watch_up") == 1
	})
	if got := labelled(t, second, "mailmon_policy_service_suppression_loads_total", "source", "resume"); got != 1 {
		t.Errorf("restart: %v resumed watches, want 1", got)
	}
	if got := labelled(t, second, "mailmon_policy_service_suppression_loads_total", "source", "bucket"); got != 0 {
		t.Errorf("restart: %v whole-bucket loads, want 0", got)
	}
	c := dial(t, second.Addr())
	reject := "550 5.1.1 Recipient address rejected: gone"
	checks := func(when string, c *client) {
		t.Helper()
		for _, tc := range []struct{ sender, rcpt, want string }{
			{"x@a.example", "gone@example.org", "DUNNO"},
			{"x@b.example", "new@example.org", reject},
			{"x@a.example", "global@example.org", reject},
		} {
			if got := c.ask(t, map[string]string{"sender": tc.sender, "recipient": tc.rcpt}); got != tc.want {
				t.Errorf("%s: %s -> %s answered %q, want %q", when, tc.sender, tc.rcpt, got, tc.want)
			}
		}
	}
	checks("after the resumed watch", c)
	eventually(t, "snapshot rewritten", func() bool {
		return metricValue(t, second, "mailmon_policy_service_suppression_snapshot_writes_total") == 1
	})
	stop()

	// NATS gone: the snapshot is enforced.
	ns.Shutdown()
	ns.WaitForShutdown()
	third, _ := runServer(t, cfg, js)
	checks("without NATS", dial(t, third.Addr()))

	// A damaged snapshot is refused whole, counted.
	data, err := os.ReadFile(cfg.SuppressionSnapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-6] ^= 1
	if err := os.WriteFile(cfg.SuppressionSnapshotFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fourth, _ := runServer(t, cfg, js)
	if got := metricValue(t, fourth, "mailmon_policy_service_suppression_snapshot_errors_total"); got != 1 {
		t.Errorf("damaged snapshot: %v errors, want 1", got)
	}
	if got := dial(t, fourth.Addr()).ask(t, map[string]string{"sender": "x@b.example", "recipient": "new@example.org"}); got != "DUNNO" {
		t.Errorf("damaged snapshot enforced: %q", got)
	}
}

func TestSuppressionSnapshotFile(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	pairs := []suppressPair{{9, 0}, {3, uint32(now.Unix() + 60)}, {7, uint32(now.Unix() - 1)}, {1 << 63, 0}}
	var buf bytes.Buffer
	sortPairs(pairs)
	if err := encodeSuppressionSnapshot(&buf, pairs, 42); err != nil {
		t.Fatal(err)
	}
	if want := suppressHeader + 4*suppressPairBytes + 4; buf.Len() != want {
		t.Fatalf("%d bytes, want %d", buf.Len(), want)
	}
	data := buf.Bytes()
	got, rev, err := decodeSuppressionSnapshot(bytes.NewReader(data), int64(len(data)), now)
	if err != nil || rev != 42 {
		t.Fatalf("decode: revision %d, %v", rev, err)
	}
	want := map[uint64]uint32{9: 0, 3: uint32(now.Unix() + 60), 1 << 63: 0} // 7 expired
	if len(got) != len(want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %d: expiry %d, want %d", k, got[k], v)
		}
	}

	spoil := func(f func([]byte) []byte) []byte { return f(bytes.Clone(data)) }
	unsorted := []suppressPair{{9, 0}, {3, 0}}
	var ub bytes.Buffer
	encodeSuppressionSnapshot(&ub, unsorted, 1)
	for name, bad := range map[string][]byte{
		"truncated":     data[:len(data)-1],
		"longer":        append(bytes.Clone(data), 0),
		"flipped bit":   spoil(func(b []byte) []byte { b[suppressHeader+3] ^= 0x10; return b }),
		"bad magic":     spoil(func(b []byte) []byte { b[0] = 'X'; return b }),
		"other format":  spoil(func(b []byte) []byte { b[8] = 2; return b }),
		"count too big": spoil(func(b []byte) []byte { b[27] = 0x7f; return b }),
		"unsorted":      ub.Bytes(),
		"empty":         nil,
	} {
		if _, _, err := decodeSuppressionSnapshot(bytes.NewReader(bad), int64(len(bad)), now); !errors.Is(err, errSuppressionSnapshot) {
			t.Errorf("%s: %v, want it refused", name, err)
		}
	}

	// Through the file: written 0600, read back; group-writable refused;
	// a missing file is no snapshot.
	path := filepath.Join(t.TempDir(), "s", "suppression.bin")
	if m, _, err := readSuppressionSnapshot(path, now); m != nil || err != nil {
		t.Fatalf("missing file: %v %v", m, err)
	}
	if err := writeSuppressionSnapshot(path, []suppressPair{{5, 0}, {2, 0}}, 7); err != nil {
		t.Fatal(err)
	}
	if m, rev, err := readSuppressionSnapshot(path, now); len(m) != 2 || rev != 7 || err != nil {
		t.Fatalf("read back: %v %d %v", m, rev, err)
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSuppressionSnapshot(path, now); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("group-writable snapshot: %v", err)
	}
}

func TestExpirySeconds(t *testing.T) {
	now := time.Unix(1_800_000_000, 500_000_000)
	for _, tc := range []struct {
		expires time.Time
		want    uint32
		ok      bool
	}{
		{time.Time{}, 0, true},
		{now.Add(-time.Nanosecond), 0, false},
		{now.Add(400 * time.Millisecond), 0, false}, // ends within this second
		{now.Add(600 * time.Millisecond), 1_800_000_001, true},
		{now.Add(90 * time.Second), 1_800_000_090, true}, // rounded down
		{time.Unix(1<<33, 0), 1<<32 - 1, true},
	} {
		got, ok := expirySeconds(tc.expires, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v: %d %v, want %d %v", tc.expires, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRejectTextChecked(t *testing.T) {
	for _, text := range []string{"4.1.1 later", "5.1.1 line\r\nbreak", "gone", ""} {
		cfg := DefaultConfig()
		cfg.Suppression.RejectText = text
		if _, err := New(cfg, testSettings(nil)); err == nil || !strings.Contains(err.Error(), "reject_text") {
			t.Errorf("reject_text %q: %v", text, err)
		}
	}
}

func TestRejectCode(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{550, "550 5.1.1 Recipient address rejected"},
		{553, "553 5.1.1 Recipient address rejected"},
		{0, "REJECT 5.1.1 Recipient address rejected"}, // Postfix's access_map_reject_code
		{450, ""},
		{554 + 10, ""},
	} {
		got, err := suppressAnswer(tc.code, "5.1.1 Recipient address rejected")
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("code %d: %q %v, want %q", tc.code, got, err, tc.want)
		}
	}
}

// FuzzSuppressionSnapshot feeds arbitrary files to the snapshot reader:
// it never panics, and what it accepts is exactly what the writer writes
// for the entries it read.
func FuzzSuppressionSnapshot(f *testing.F) {
	var good bytes.Buffer
	encodeSuppressionSnapshot(&good, []suppressPair{{1, 0}, {2, 1_900_000_000}, {1 << 60, 5}}, 9)
	f.Add(good.Bytes())
	var empty bytes.Buffer
	encodeSuppressionSnapshot(&empty, nil, 0)
	f.Add(empty.Bytes())
	f.Add([]byte(suppressMagic))
	epoch := time.Unix(0, 0) // every expiry is after it: nothing is left out
	f.Fuzz(func(t *testing.T, data []byte) {
		m, rev, err := decodeSuppressionSnapshot(bytes.NewReader(data), int64(len(data)), epoch)
		if err != nil {
			return
		}
		pairs := make([]suppressPair, 0, len(m))
		for k, e := range m {
			pairs = append(pairs, suppressPair{k, e})
		}
		sortPairs(pairs)
		var again bytes.Buffer
		if err := encodeSuppressionSnapshot(&again, pairs, rev); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("accepted %x, which encodes back as %x", data, again.Bytes())
		}
	})
}
