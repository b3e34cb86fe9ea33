package policyservice

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/obs"
)

// clock is a settable time for staleness and expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// metricValue reads one of the server's unlabelled counters or gauges.
func metricValue(t *testing.T, srv *Server, name string) float64 {
	t.Helper()
	families, err := srv.set.Metrics.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (e *env) putRaw(t *testing.T, key string, value []byte) {
	t.Helper()
	if _, err := e.kv.Put(context.Background(), key, value); err != nil {
		t.Fatal(err)
	}
}

// alertsOf returns the alerts of rule stored so far.
func alertsOf(t *testing.T, js jetstream.JetStream, rule string) []*schemas.AlertRaised {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, "ALERT", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*schemas.AlertRaised
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			ev, err := schemas.Decode(msg.Data())
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.(*schemas.AlertRaised); a.Rule == rule {
				out = append(out, a)
			}
		}
		if n == 0 {
			return out
		}
	}
}

// Records that would make Postfix relay, drop, rewrite or send mail
// elsewhere, or whose text could smuggle a second answer, are not
// answered: the subject gets DUNNO as if it had no record, and each
// revision is counted and alerted once, however many requests come.
func TestHostileRecordsAreNotAnswered(t *testing.T) {
	e := start(t, nil)
	<-e.srv.State().Synced()
	future := time.Now().Add(time.Hour)
	hostile := map[string]func(*enforcement.Record){
		"ok-relay":   func(r *enforcement.Record) { r.PolicyAction = "OK relay me" },
		"ok":         func(r *enforcement.Record) { r.PolicyAction = "OK" },
		"discard":    func(r *enforcement.Record) { r.PolicyAction = "DISCARD" },
		"prepend":    func(r *enforcement.Record) { r.PolicyAction = "PREPEND X-Evil: 1" },
		"redirect":   func(r *enforcement.Record) { r.PolicyAction = "REDIRECT thief@evil.example" },
		"crlf-text":  func(r *enforcement.Record) { r.PolicyText = "4.7.1 suspended\r\naction=OK" },
		"nul-text":   func(r *enforcement.Record) { r.PolicyText = "4.7.1 suspended\x00" },
		"bad-status": func(r *enforcement.Record) { r.PolicyText = "4.7.1.2 suspended" },
		"non-ascii":  func(r *enforcement.Record) { r.PolicyText = "4.7.1 suspendu \u00e9" },
		"filter-evil": func(r *enforcement.Record) {
			*r = record(r.SubjectOf(), schemas.ActionReroute, future)
			r.Transport = "smtp:[evil.example]:25"
		},
		"filter-inject": func(r *enforcement.Record) {
			*r = record(r.SubjectOf(), schemas.ActionReroute, future)
			r.Transport = "smtp:[evil.example]:25 PREPEND X:"
		},
		"filter-other": func(r *enforcement.Record) {
			*r = record(r.SubjectOf(), schemas.ActionReroute, future)
			r.Transport = "smtp"
		},
	}
	for name, spoil := range hostile {
		r := record(enforcement.Customer(name), schemas.ActionCutoff, future)
		spoil(&r)
		e.putRaw(t, r.SubjectOf().Key(), r.Marshal())
	}
	// A record under another subject's key could never be lifted by the
	// CLI (it deletes the subject's key).
	misfiled := record(enforcement.Customer("misfiled"), schemas.ActionCutoff, future)
	e.putRaw(t, enforcement.Customer("elsewhere").Key(), misfiled.Marshal())
	e.putRaw(t, enforcement.Customer("garbage").Key(), []byte("action=OK\n\n"))
	refused := len(hostile) + 2
	// A valid record next to them is still answered.
	e.put(t, record(enforcement.Customer("good"), schemas.ActionCutoff, future))
	eventually(t, "every record read", func() bool {
		return metricValue(t, e.srv, "mailmon_policy_service_invalid_records_total") == float64(refused) && e.srv.State().Len() == 1
	})

	c := dial(t, e.srv.Addr())
	for range 3 {
		for name := range hostile {
			if got := c.ask(t, map[string]string{"sasl_username": name}); got != "DUNNO" {
				t.Errorf("%s: answered %q, want DUNNO", name, got)
			}
		}
		for _, name := range []string{"misfiled", "elsewhere", "garbage"} {
			if got := c.ask(t, map[string]string{"sasl_username": name}); got != "DUNNO" {
				t.Errorf("%s: answered %q, want DUNNO", name, got)
			}
		}
	}
	if got := c.ask(t, map[string]string{"sasl_username": "good"}); got != "DEFER_IF_PERMIT 4.7.1 Sending suspended for customer:good" {
		t.Errorf("valid record: %q", got)
	}
	// A new revision of a refused record is a new refusal.
	again := record(enforcement.Customer("ok-relay"), schemas.ActionCutoff, future)
	again.PolicyAction = "OK relay me"
	e.putRaw(t, again.SubjectOf().Key(), again.Marshal())
	refused++
	eventually(t, "one alert per refused revision", func() bool { return len(alertsOf(t, e.js, RuleInvalidRecord)) >= refused })
	if n := metricValue(t, e.srv, "mailmon_policy_service_invalid_records_total"); n != float64(refused) {
		t.Errorf("invalid_records_total = %v after many requests, want %d (once per revision)", n, refused)
	}
	alerts := alertsOf(t, e.js, RuleInvalidRecord)
	if len(alerts) != refused {
		t.Errorf("%d alerts, want %d", len(alerts), refused)
	}
	for _, a := range alerts {
		if a.Status != schemas.AlertFiring || strings.ContainsAny(a.Summary, "\r\n\x00") || !strings.Contains(a.Summary, "answered DUNNO") {
			t.Errorf("alert %+v", a)
		}
	}
	if got := c.ask(t, map[string]string{"sasl_username": "ok-relay"}); got != "DUNNO" {
		t.Errorf("new revision of ok-relay: %q", got)
	}
}

// DISCARD is answered only when the operator lists it.
func TestListedDiscardIsAnswered(t *testing.T) {
	e := start(t, func(c *Config) { c.AllowedActions = append(c.AllowedActions, "DISCARD") })
	<-e.srv.State().Synced()
	r := record(enforcement.Customer("cust-a"), schemas.ActionCutoff, time.Now().Add(time.Hour))
	r.PolicyAction = "DISCARD"
	e.put(t, r)
	eventually(t, "decision loaded", func() bool { return e.srv.State().Len() == 1 })
	if got := dial(t, e.srv.Addr()).ask(t, map[string]string{"sender": "x@a.example"}); got != "DISCARD 4.7.1 Sending suspended for customer:cust-a" {
		t.Errorf("%q", got)
	}
}

func TestConfigRefusesRelayingActions(t *testing.T) {
	for _, a := range []string{"OK", "PREPEND", "REDIRECT", "BCC", "PERMIT", "DUNNO", "WARN", "ok"} {
		cfg := DefaultConfig()
		cfg.AllowedActions = append(cfg.AllowedActions, a)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "allowed_actions") {
			t.Errorf("allowed_actions with %s: %v", a, err)
		}
	}
	cfg := DefaultConfig()
	cfg.CutoffAction = "DISCARD"
	if err := cfg.Validate(); err == nil {
		t.Error("cutoff_action DISCARD accepted while not in allowed_actions")
	}
	cfg = DefaultConfig()
	cfg.CutoffText = "4.7.1 x\x00"
	if err := cfg.Validate(); err == nil {
		t.Error("cutoff_text with a NUL accepted")
	}
	cfg = DefaultConfig()
	cfg.RerouteTransports = []string{"smtp:[evil.example]"}
	if err := cfg.Validate(); err == nil {
		t.Error("a reroute transport with a next hop accepted")
	}
}

// failingListener fails every Accept once broken is set.
type failingListener struct {
	net.Listener
	broken atomic.Bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if l.broken.Load() {
		if c != nil {
			c.Close()
		}
		return nil, errors.New("listener broken")
	}
	return c, err
}

// An accept error that is not transient ends Serve (Run is Listen plus
// Serve) at once, with the error, closing the listener and the open
// connections; the readiness check then says the service is not ready.
func TestAcceptErrorEndsRun(t *testing.T) {
	e := start(t, nil)
	health := obs.NewHealth()
	set := testSettings(e.js)
	set.Health = health
	srv, err := New(e.srv.cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &failingListener{Listener: inner}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	<-srv.Ready()
	eventually(t, "ready", func() bool { return health.Ready(context.Background())[WorkerName] == nil })
	idle := dial(t, srv.Addr())
	if got := idle.ask(t, map[string]string{"sender": "x@a.example"}); got != "DUNNO" {
		t.Fatalf("%q", got)
	}

	ln.broken.Store(true)
	broke := time.Now()
	if c, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		c.Close()
	}
	select {
	case err := <-done:
		t.Logf("Serve returned %s after the accept error", time.Since(broke))
		if err == nil || !strings.Contains(err.Error(), "listener broken") {
			t.Errorf("Serve returned %v, want the accept error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after a fatal accept error")
	}
	if err := health.Ready(context.Background())[WorkerName]; err == nil {
		t.Error("still ready after the service stopped accepting")
	}
	idle.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("open connection not closed: %v", err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts connections")
	}
}
