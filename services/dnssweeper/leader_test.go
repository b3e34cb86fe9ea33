package dnssweeper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// sweeperCopy is one dns-sweeper process: its own connection (closing it
// is the process dying) and its Run.
type sweeperCopy struct {
	host   string
	nc     *nats.Conn
	s      *Sweeper
	cancel context.CancelFunc
	done   chan error
}

func startSweeperCopy(t *testing.T, ns *server.Server, cfg Config, host string) *sweeperCopy {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, worker.Settings{JetStream: js, Source: schemas.Source{Worker: WorkerName, Host: host}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &sweeperCopy{host: host, nc: nc, s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- s.Run(ctx) }()
	return c
}

func (c *sweeperCopy) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("%s: Run: %v", c.host, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: Run did not return", c.host)
	}
}

// dnsEvents reads the whole DNS stream: every stored event, in order.
func dnsEvents(t *testing.T, js jetstream.JetStream) []schemas.Event {
	t.Helper()
	ctx := testCtx(t)
	st, err := js.Stream(ctx, "DNS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		ev, err := schemas.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream seq %d: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

// Two dns-sweepers: one leads and sweeps; killed mid-sweep (its
// connection closed, its lease not released), the other takes over within
// one lease TTL, finishes the sweep under the same sweep id, and the DNS
// stream holds every listing once: as many listed events as distinct ids
// as listed targets, and one summary.
func TestLeaderTakeoverMidSweep(t *testing.T) {
	const ttl = 2 * time.Second
	f := startDNS(t)
	f.healthy("bl.test")
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	const block = "198.51.100.0/26"
	targets := 64
	for i := range targets {
		f.list(fmt.Sprintf("198.51.100.%d", i), "bl.test", "127.0.0.4")
	}
	ns, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(testCtx(t), js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(f.addr)
	cfg.CIDRs = []string{block}
	cfg.Zones = []string{"bl.test"}
	cfg.ZoneRate = 20 // about 6 s per sweep (A and TXT queries), long enough to die in
	cfg.Interval = config.Duration(time.Hour)
	cfg.LeaderLease.TTL = config.Duration(ttl)
	copies := map[string]*sweeperCopy{
		"a": startSweeperCopy(t, ns, cfg, "a"),
		"b": startSweeperCopy(t, ns, cfg, "b"),
	}

	// The leader is whoever publishes; kill it once it has published a
	// few listings.
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for leader == "" {
		n := map[string]int{}
		for _, ev := range dnsEvents(t, js) {
			if _, ok := ev.(*schemas.DNSBLListed); ok {
				n[ev.EventHeader().Source.Host]++
			}
		}
		if len(n) > 1 {
			t.Fatalf("both copies published listings before a failure: %v", n)
		}
		for host, c := range n {
			if c >= 10 {
				leader = host
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no copy published 10 listings within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	standby := "a"
	if leader == "a" {
		standby = "b"
	}
	kv, err := js.KeyValue(testCtx(t), lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	before, err := kv.Get(testCtx(t), LeaseKey)
	if err != nil {
		t.Fatalf("the leader holds no lease: %v", err)
	}
	killed := time.Now()
	copies[leader].nc.Close()
	copies[leader].cancel()

	// The standby acquires the lease within one TTL.
	var took time.Duration
	for {
		e, err := kv.Get(testCtx(t), LeaseKey)
		if err == nil && string(e.Value()) != string(before.Value()) {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > 3*ttl {
			t.Fatalf("no new leader %s after the kill", 3*ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dns-sweeper takeover after the leader was killed mid-sweep: %s (lease TTL %s)", took.Round(time.Millisecond), ttl)
	if took > ttl+time.Second {
		t.Errorf("takeover took %s, more than one TTL (%s)", took, ttl)
	}

	// The standby finishes the sweep: one summary, under the sweep id the
	// leader started.
	var evs []schemas.Event
	var sums []*schemas.DNSBLChecked
	deadline = time.Now().Add(45 * time.Second)
	for len(sums) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no sweep summary after the takeover")
		}
		time.Sleep(200 * time.Millisecond)
		evs = dnsEvents(t, js)
		sums = nil
		for _, ev := range evs {
			if c, ok := ev.(*schemas.DNSBLChecked); ok {
				sums = append(sums, c)
			}
		}
	}
	copies[leader].wait(t)
	copies[standby].cancel()
	copies[standby].wait(t)
	evs = dnsEvents(t, js)

	ids := map[string]bool{}
	byHost := map[string]int{}
	sweepIDs := map[string]bool{}
	listed := 0
	for _, ev := range evs {
		h := ev.EventHeader()
		ids[h.ID] = true
		switch e := ev.(type) {
		case *schemas.DNSBLListed:
			listed++
			byHost[h.Source.Host]++
			sweepIDs[e.SweepID] = true
		case *schemas.DNSBLChecked:
			sweepIDs[e.SweepID] = true
		}
	}
	dups := copies[standby].s.pub.Stats().Duplicates
	t.Logf("DNS stream: %d events, %d distinct ids; listed events stored by copy %v; republished by the standby and dropped as duplicates: %d", len(evs), len(ids), byHost, dups)
	if len(ids) != len(evs) {
		t.Errorf("%d events but %d distinct ids: an event was stored twice", len(evs), len(ids))
	}
	if listed != targets {
		t.Errorf("%d listed events, want %d (one per listed target)", listed, targets)
	}
	if len(sums) != 1 || sums[0].Source.Host != standby || sums[0].Listed != uint32(targets) || sums[0].Targets != uint32(targets) {
		t.Errorf("summaries %+v, want one from %s listing all %d targets", sums, standby, targets)
	}
	if len(sweepIDs) != 1 {
		t.Errorf("events of %d sweeps, want the one sweep finished by the standby: %v", len(sweepIDs), sweepIDs)
	}
	if byHost[leader] == 0 || byHost[standby] == 0 {
		t.Errorf("listings by copy %v: the kill did not land mid-sweep", byHost)
	}
}

// What a new leader does first.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hour := time.Hour
	done := &lastSweep{SweepID: "s1", Started: now.Add(-20 * time.Minute)}
	tests := []struct {
		name          string
		last, current *lastSweep
		resume        string
		next          time.Time
	}{
		{"first ever", nil, nil, "", now},
		{"unfinished first sweep", nil, &lastSweep{SweepID: "s0", Started: now.Add(-time.Minute)}, "s0", now},
		{"last one complete, not due", done, done, "", now.Add(40 * time.Minute)},
		{"last one complete, overdue", &lastSweep{SweepID: "s1", Started: now.Add(-2 * hour)}, nil, "", now.Add(-hour)},
		{"unfinished after a complete one", done, &lastSweep{SweepID: "s2", Started: now.Add(-time.Minute)}, "s2", now},
		{"unfinished but stale: a new sweep", done, &lastSweep{SweepID: "s2", Started: now.Add(-2 * hour)}, "", now.Add(40 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resume, next := plan(tt.last, tt.current, hour, now)
			got := ""
			if resume != nil {
				got = resume.SweepID
			}
			if got != tt.resume || !next.Equal(tt.next) {
				t.Errorf("plan = (%q, %s), want (%q, %s)", got, next, tt.resume, tt.next)
			}
		})
	}
}
