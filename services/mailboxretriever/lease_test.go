package mailboxretriever

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
)

func TestAccountLeaseKey(t *testing.T) {
	for name, want := range map[string]string{
		"alice":          "mailbox-retriever.alice",
		"gmail-seed_1":   "mailbox-retriever.gmail-seed_1",
		"seed@gmail.com": "mailbox-retriever.seed=40gmail=2Ecom",
		"a b/c":          "mailbox-retriever.a=20b=2Fc",
	} {
		if got := AccountLeaseKey(name); got != want {
			t.Errorf("AccountLeaseKey(%q) = %q, want %q", name, got, want)
		}
	}
}

// retrieverCopy is one mailbox-retriever process with its own connection
// (closing it is the process dying).
type retrieverCopy struct {
	*running
	name string
	nc   *nats.Conn
}

// Two copies split the seed accounts, one each: each account is read by
// exactly one copy at any time, and every probe is reported once. Killed
// (its connection closed, its leases not released), a copy's account is
// taken over by the other within one lease TTL, and the probes that
// arrive there afterwards are reported. A copy that joins is handed an
// account.
func TestCopiesSplitAccountsAndTakeOver(t *testing.T) {
	const ttl = 2 * time.Second
	ns, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	servers := map[string]*memIMAP{"alice": startIMAP(t), "bob": startIMAP(t)}
	seeds := map[string]string{"alice": "alice@inbox.test", "bob": "bob@inbox.test"}
	cfg := testConfig(servers["alice"].addr)
	cfg.Accounts = append(cfg.Accounts, Account{Name: "bob", Protocol: ProtocolIMAP, Addr: servers["bob"].addr, TLS: TLSNone,
		Username: "alice@inbox.test", Password: "secret", Addresses: []string{seeds["bob"]}})
	cfg.PollInterval = config.Duration(100 * time.Millisecond)
	cfg.AccountLease.TTL = config.Duration(ttl)

	var logs syncBuffer
	start := func(name string) *retrieverCopy {
		nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		cjs, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		r, err := New(cfg, worker.Settings{JetStream: cjs, Metrics: reg, Source: schemas.Source{Worker: WorkerName, Host: name},
			Tracking: worker.Tracking{Keyring: &testRing}, Logger: slog.New(slog.NewTextHandler(&logs, nil)).With("copy", name)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		rn := &running{r: r, reg: reg, cancel: cancel, done: make(chan struct{})}
		go func() {
			rn.err = r.Run(ctx)
			close(rn.done)
		}()
		t.Cleanup(func() {
			cancel()
			<-rn.done
		})
		return &retrieverCopy{running: rn, name: name, nc: nc}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	copies := []*retrieverCopy{start("a"), start("b")}

	// holders maps each account to the copies reading it; two at once is
	// a failure whenever it is seen.
	holders := func() map[string][]string {
		out := map[string][]string{}
		for _, c := range copies {
			for name, ac := range c.r.accounts {
				if ac.isHeld() {
					out[name] = append(out[name], c.name)
				}
			}
		}
		for name, hs := range out {
			if len(hs) > 1 {
				t.Errorf("account %s read by %v at once", name, hs)
			}
		}
		return out
	}
	// balanced: every account read, each copy reading one.
	balanced := func() bool {
		hs := holders()
		per := map[string]int{}
		for _, h := range hs {
			per[h[0]]++
		}
		return len(hs) == 2 && len(per) == len(copies)
	}
	began := time.Now()
	testwait.Eventually(t, 6*ttl, "one account per copy", balanced)
	t.Logf("accounts split: %v (balanced %s after start)", holders(), time.Since(began).Round(time.Millisecond))
	// readsIdle waits until every account has been read once by its
	// holder and is in IDLE (as TestIdleDetectsProbesInInboxAndJunk).
	readsIdle := func() {
		t.Helper()
		testwait.Eventually(t, 10*time.Second, "every account read", func() bool {
			for _, c := range copies {
				for _, ac := range c.r.accounts {
					if ac.isHeld() && ac.syncedAt().IsZero() {
						return false
					}
				}
			}
			return true
		})
		time.Sleep(200 * time.Millisecond)
	}
	readsIdle()

	var ids []string
	deliver := func(account string) {
		id := schemas.NewID()
		ids = append(ids, id)
		publishSent(t, js, id, seeds[account], time.Now())
		testwait.Eventually(t, 10*time.Second, "the expectation", func() bool {
			r := copies[0].r
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.index[id].State == statePending
		})
		servers[account].deliver(t, "INBOX", probeMessage(t, id, ""))
	}
	deliver("alice")
	deliver("bob")
	received.wait(t, 2, 10*time.Second)

	// Kill the copy reading alice.
	victim := holders()["alice"][0]
	var survivor *retrieverCopy
	for _, c := range copies {
		if c.name == victim {
			c.nc.Close()
			c.cancel()
		} else {
			survivor = c
		}
	}
	killed := time.Now()
	for _, name := range []string{"alice", "bob"} {
		testwait.Eventually(t, 3*ttl, "the survivor holds "+name, func() bool { return survivor.r.accounts[name].isHeld() })
		took := time.Since(killed)
		t.Logf("mailbox-retriever: %s read by %s %s after the kill (lease TTL %s)", name, survivor.name, took.Round(time.Millisecond), ttl)
		if took > ttl+time.Second {
			t.Errorf("takeover of %s took %s, more than one TTL (%s)", name, took, ttl)
		}
	}
	copies = []*retrieverCopy{survivor}
	readsIdle()
	deliver("alice")
	deliver("bob")
	received.wait(t, 4, 15*time.Second)

	// A new copy joins: the survivor hands it one account.
	copies = append(copies, start("c"))
	joined := time.Now()
	testwait.Eventually(t, 6*ttl, "one account per copy after a join", balanced)
	t.Logf("after a join: %v (balanced %s later)", holders(), time.Since(joined).Round(time.Millisecond))
	readsIdle()
	deliver("alice")
	deliver("bob")
	evs := received.wait(t, 6, 15*time.Second)
	time.Sleep(500 * time.Millisecond)
	evs = received.all()
	got := map[string]int{}
	for _, ev := range evs {
		got[ev.(*schemas.ProbeReceived).ProbeID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("probe %s reported %d times, want once", id, got[id])
		}
	}
	if len(evs) != len(ids) {
		t.Errorf("%d received events for %d probes", len(evs), len(ids))
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
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
