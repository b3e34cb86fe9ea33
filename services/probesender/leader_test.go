package probesender

import (
	"bytes"
	"context"
	"net/mail"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

type senderCopy struct {
	helo   string
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

func startSenderCopy(t *testing.T, ns *server.Server, cfg Config, helo string) *senderCopy {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name(helo))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sources = append([]Source(nil), cfg.Sources...)
	cfg.Sources[0].HeloName = helo
	set := testSettings(js)
	set.Source = schemas.Source{Worker: WorkerName, Host: helo}
	s, err := New(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &senderCopy{helo: helo, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- s.Run(ctx) }()
	return c
}

func (c *senderCopy) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("%s: Run: %v", c.helo, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: Run did not return", c.helo)
	}
}

// Two probe-senders: one leads and sends every round; the other sends
// nothing. Killed (its connection closed, its lease not released), the
// leader is replaced within one lease TTL plus one interval; stopped
// cleanly, within one interval (the slot it had claimed is not sent
// again); and no round slot ever gets two probes for one target.
func TestLeaderTakeover(t *testing.T) {
	const ttl, interval = 2 * time.Second, time.Second
	ns, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	mx := startMX(t, nil, nil)
	src := Source{Name: "r", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone}
	cfg := testConfig([]Source{src}, []Target{seed, {Name: "outlook-1", Provider: "outlook", Address: "seed@outlook.test"}})
	cfg.Interval = config.Duration(interval)
	cfg.Jitter = config.Duration(100 * time.Millisecond)
	cfg.DefaultRatePerMinute = 0
	cfg.LeaderLease.TTL = config.Duration(ttl)
	copies := map[string]*senderCopy{
		"a.test": startSenderCopy(t, ns, cfg, "a.test"),
		"b.test": startSenderCopy(t, ns, cfg, "b.test"),
	}

	// Three rounds, all from one copy.
	waitFor := func(what string, ok func([]received) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(mx.got()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("3 rounds", func(got []received) bool { return len(got) >= 6 })
	leader := mx.got()[0].Helo
	standby := "a.test"
	if leader == "a.test" {
		standby = "b.test"
	}
	for _, m := range mx.got() {
		if m.Helo != leader {
			t.Fatalf("probes from %s and %s before any failure", leader, m.Helo)
		}
	}

	killed := time.Now()
	copies[leader].nc.Close()
	copies[leader].cancel()
	copies[leader].wait(t)
	var took time.Duration
	waitFor("a probe from the standby", func(got []received) bool {
		for _, m := range got {
			if m.Helo == standby {
				took = m.At.Sub(killed)
				return true
			}
		}
		return false
	})
	t.Logf("probe-sender takeover: first probe from the standby %s after the leader was killed (lease TTL %s, interval %s)", took.Round(time.Millisecond), ttl, interval)
	if took > ttl+interval+time.Second {
		t.Errorf("takeover took %s, more than one TTL and one interval", took)
	}
	n := len(mx.got())
	waitFor("2 rounds from the standby", func(got []received) bool { return len(got) >= n+4 })

	// A third copy joins; the leader stops cleanly and releases the
	// lease: the third leads at once, finds the current slot claimed, and
	// sends from the next slot on.
	third := startSenderCopy(t, ns, cfg, "c.test")
	time.Sleep(300 * time.Millisecond)
	released := time.Now()
	copies[standby].cancel()
	copies[standby].wait(t)
	waitFor("a probe from the third copy", func(got []received) bool {
		for _, m := range got {
			if m.Helo == "c.test" {
				took = m.At.Sub(released)
				return true
			}
		}
		return false
	})
	t.Logf("probe-sender takeover after a clean stop: first probe from the next leader %s later (the rest of the claimed slot, then the next one)", took.Round(time.Millisecond))
	if took > interval+time.Second {
		t.Errorf("takeover after a clean stop took %s, more than one interval", took)
	}
	third.cancel()
	third.wait(t)

	// Each (slot, target) once: the slot is the probe's Date (taken before
	// the submission, at most the jitter after the slot's start).
	seen := map[string]string{}
	for _, m := range mx.got() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		date, err := msg.Header.Date()
		if err != nil {
			t.Fatal(err)
		}
		unit := date.Truncate(interval).Format(time.TimeOnly) + " " + m.To
		if prev, dup := seen[unit]; dup {
			t.Errorf("slot and target %s probed twice: by %s and %s", unit, prev, m.Helo)
		}
		seen[unit] = m.Helo
	}
	t.Logf("%d probes, %d distinct (slot, target)", len(mx.got()), len(seen))
}
