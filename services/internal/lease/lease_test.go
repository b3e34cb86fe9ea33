package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

const testTTL = 2 * time.Second

// startNATS runs an embedded NATS with the topology applied (the leases
// bucket as declared).
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	ns, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// copyOf is one copy of a worker: its own connection (closing it is the
// copy dying), its lease, and the record of its terms.
type copyOf struct {
	name   string
	nc     *nats.Conn
	lease  *Lease
	cancel context.CancelFunc
	done   chan error
}

// recorder checks that at most one copy leads at any time and records
// every term in order.
type recorder struct {
	mu      sync.Mutex
	leading map[string]bool
	terms   []event
	overlap []string
}

type event struct {
	name  string
	start bool
	at    time.Time
	term  Term
}

func (r *recorder) lead(c *copyOf) func(context.Context) error {
	return func(ctx context.Context) error {
		term, _ := c.lease.Held()
		r.mu.Lock()
		for other, on := range r.leading {
			if on && other != c.name {
				r.overlap = append(r.overlap, c.name+" started while "+other+" led")
			}
		}
		r.leading[c.name] = true
		r.terms = append(r.terms, event{name: c.name, start: true, at: time.Now(), term: term})
		r.mu.Unlock()
		<-ctx.Done()
		term, _ = c.lease.Held()
		r.mu.Lock()
		r.leading[c.name] = false
		r.terms = append(r.terms, event{name: c.name, at: time.Now(), term: term})
		r.mu.Unlock()
		return nil
	}
}

// leader is the copy leading now, "" when none.
func (r *recorder) leader() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, on := range r.leading {
		if on {
			return name
		}
	}
	return ""
}

// waitLeader waits up to d for a leader other than not, and returns it
// with the time it took.
func (r *recorder) waitLeader(t *testing.T, not string, d time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if l := r.leader(); l != "" && l != not {
			return l, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader other than %q within %s", not, d)
	return "", 0
}

func startCopy(t *testing.T, ns *server.Server, r *recorder, name, key string) *copyOf {
	return startCopyWith(t, ns, r, name, key, Options{TTL: testTTL, Holder: name})
}

func startCopyWith(t *testing.T, ns *server.Server, r *recorder, name, key string, o Options) *copyOf {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := New(ctx, js, key, o)
	if err != nil {
		t.Fatal(err)
	}
	c := &copyOf{name: name, nc: nc, lease: l, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- l.Run(ctx, r.lead(c)) }()
	return c
}

func (c *copyOf) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("%s: Run: %v", c.name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return", c.name)
	}
}

// kill is a SIGKILL as the others see it: the connection goes, nothing is
// released.
func (c *copyOf) kill(t *testing.T) {
	t.Helper()
	c.nc.Close()
	c.stop(t)
}

func byName(cs []*copyOf, name string) *copyOf {
	for _, c := range cs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// checkTerms: terms follow each other (one ends before the next starts)
// and each starts at a revision above every revision of the one before.
func (r *recorder) checkTerms(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.overlap {
		t.Error("two leaders at once: " + o)
	}
	var last *event
	for i := range r.terms {
		e := &r.terms[i]
		if !e.start {
			continue
		}
		if last != nil && e.term.Acquired <= last.term.Last {
			t.Errorf("%s acquired at revision %d, not above %s's last revision %d", e.name, e.term.Acquired, last.name, last.term.Last)
		}
		// The matching end of this term carries its last renewal.
		for j := i + 1; j < len(r.terms); j++ {
			if r.terms[j].name == e.name && !r.terms[j].start {
				end := r.terms[j]
				last = &end
				break
			}
		}
	}
}

// Two copies: one leads and keeps leading by renewing past several TTLs;
// killed without releasing, the other leads within one TTL; stopped
// cleanly, the next one leads within one retry interval.
func TestLeaseTakeover(t *testing.T) {
	ns := startNATS(t)
	r := &recorder{leading: map[string]bool{}}
	copies := []*copyOf{
		startCopy(t, ns, r, "a", "test-worker"),
		startCopy(t, ns, r, "b", "test-worker"),
	}
	first, _ := r.waitLeader(t, "", 5*time.Second)
	// Renewals keep it: after 2.5 TTLs the same copy leads, with renewals
	// on record.
	time.Sleep(testTTL * 5 / 2)
	if l := r.leader(); l != first {
		t.Fatalf("leader changed from %s to %q without a failure", first, l)
	}
	term, held := byName(copies, first).lease.Held()
	if !held || term.Last <= term.Acquired {
		t.Fatalf("%s: held %v, term %+v: no renewal stored", first, held, term)
	}

	// SIGKILL the leader: the other leads within one TTL.
	killed := time.Now()
	byName(copies, first).kill(t)
	second, _ := r.waitLeader(t, first, testTTL+2*time.Second)
	took := time.Since(killed)
	t.Logf("takeover after the leader was killed: %s (TTL %s)", took.Round(time.Millisecond), testTTL)
	if took > testTTL+time.Second {
		t.Errorf("takeover after a kill took %s, more than one TTL (%s)", took, testTTL)
	}

	// A third copy joins; the leader stops cleanly and releases: the
	// third leads within one retry interval.
	third := startCopy(t, ns, r, "c", "test-worker")
	copies = append(copies, third)
	time.Sleep(300 * time.Millisecond)
	if l := r.leader(); l != second {
		t.Fatalf("leader is %q after a copy joined, want %s", l, second)
	}
	released := time.Now()
	byName(copies, second).stop(t)
	if l, _ := r.waitLeader(t, second, 5*time.Second); l != "c" {
		t.Fatalf("leader %q, want c", l)
	}
	took = time.Since(released)
	t.Logf("takeover after a clean release: %s (retry interval %s)", took.Round(time.Millisecond), testTTL/3)
	if took > testTTL/3+500*time.Millisecond {
		t.Errorf("takeover after a release took %s, more than one retry interval (%s)", took, testTTL/3)
	}
	third.stop(t)
	r.checkTerms(t)
}

// Many copies started together: exactly one leads, and its lease survives
// a competitor's Create.
func TestLeaseOneWinner(t *testing.T) {
	ns := startNATS(t)
	r := &recorder{leading: map[string]bool{}}
	var copies []*copyOf
	for _, name := range []string{"a", "b", "c", "d"} {
		copies = append(copies, startCopy(t, ns, r, name, "race"))
	}
	leader, _ := r.waitLeader(t, "", 5*time.Second)
	time.Sleep(testTTL)
	held := 0
	for _, c := range copies {
		if _, ok := c.lease.Held(); ok {
			held++
		}
	}
	if held != 1 || r.leader() != leader {
		t.Errorf("%d copies hold the lease; leader %q then %q", held, leader, r.leader())
	}
	for _, c := range copies {
		c.stop(t)
	}
	r.checkTerms(t)
}

// A lost renewal (the key taken away) stops the holder at once.
func TestLeaseLostOnForeignWrite(t *testing.T) {
	ns := startNATS(t)
	r := &recorder{leading: map[string]bool{}}
	a := startCopy(t, ns, r, "a", "stolen")
	r.waitLeader(t, "", 5*time.Second)
	thief, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	js, _ := jetstream.New(thief)
	kv, err := js.KeyValue(context.Background(), Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "stolen", []byte("thief")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for r.leader() != "" {
		if time.Since(start) > testTTL {
			t.Fatal("the holder still leads a TTL after its key was overwritten")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("stopped leading %s after the key was overwritten (renewal every %s)", time.Since(start).Round(time.Millisecond), testTTL/3)
	a.stop(t)
}

func TestClaim(t *testing.T) {
	ns := startNATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	ok, err := Claim(ctx, js, "round.1", "a", time.Second)
	if err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, err := Claim(ctx, js, "round.1", "b", time.Second); err != nil || ok {
		t.Fatalf("second claim: %v %v", ok, err)
	}
	// Expired, it can be claimed again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := Claim(ctx, js, "round.1", "b", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("claim did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNewRejects(t *testing.T) {
	ns := startNATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	for _, key := range []string{"", "a b", ".a", "a.", "a..b", "a*"} {
		if _, err := New(ctx, js, key, Options{}); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	if _, err := New(ctx, js, "ok", Options{TTL: 100 * time.Millisecond}); err == nil {
		t.Error("a TTL below a second accepted")
	}
	l, err := New(ctx, js, "mailbox-retriever.seed_1", Options{TTL: 1500 * time.Millisecond})
	if err != nil || l.TTL() != 2*time.Second {
		t.Errorf("New: %v, TTL %v (want rounded up to 2s)", err, l.TTL())
	}
}

// A copy stopped while its Create (or a renewal) was in flight deletes
// the key if the write was stored after all, and leaves another holder's
// key alone.
func TestAbandon(t *testing.T) {
	ns := startNATS(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(ctx, js, "abandoned", Options{TTL: testTTL, Holder: "me"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "abandoned", []byte("someone-else"), jetstream.KeyTTL(testTTL)); err != nil {
		t.Fatal(err)
	}
	l.abandon()
	if e, err := kv.Get(ctx, "abandoned"); err != nil || string(e.Value()) != "someone-else" {
		t.Fatalf("another holder's key: %v %v", e, err)
	}
	if err := kv.Purge(ctx, "abandoned"); err != nil {
		t.Fatal(err)
	}
	// The write this copy never heard back about.
	if _, err := kv.Create(ctx, "abandoned", []byte("me"), jetstream.KeyTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	l.abandon()
	if _, err := kv.Get(ctx, "abandoned"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("own key not deleted: %v", err)
	}
}

// A copy that defers lets one that does not take a freed lease.
func TestLeaseDefer(t *testing.T) {
	ns := startNATS(t)
	r := &recorder{leading: map[string]bool{}}
	first := startCopy(t, ns, r, "first", "shared")
	r.waitLeader(t, "", 5*time.Second)
	deferring := startCopyWith(t, ns, r, "deferring", "shared", Options{TTL: testTTL, Holder: "deferring", Defer: func() bool { return true }})
	eager := startCopy(t, ns, r, "eager", "shared")
	time.Sleep(testTTL / 2) // both stand by
	first.stop(t)
	if l, _ := r.waitLeader(t, "first", 5*time.Second); l != "eager" {
		t.Errorf("%s took the freed lease, want eager", l)
	}
	// The deferring copy still takes it when nobody else does.
	eager.stop(t)
	if l, took := r.waitLeader(t, "eager", 5*time.Second); l != "deferring" || took > testTTL {
		t.Errorf("%s took it after %s, want deferring within a TTL", l, took)
	}
	deferring.stop(t)
	r.checkTerms(t)
}
