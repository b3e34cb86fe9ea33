package policyservice

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

type env struct {
	ns  *server.Server
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	srv *Server
}

func testSettings(js jetstream.JetStream) worker.Settings {
	return worker.Settings{
		Logger:    slog.New(slog.DiscardHandler),
		Metrics:   prometheus.NewRegistry(),
		JetStream: js,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: WorkerName}),
		Source:    schemas.Source{Worker: WorkerName, Host: "test"},
	}
}

// start runs a policy service on a fresh embedded NATS with the topology
// applied; edit adjusts the config first, and a clock, when given, replaces
// time.Now.
func start(t *testing.T, edit func(*Config), clock ...func() time.Time) *env {
	t.Helper()
	ns, _, js := natstest.Start(t)
	ctx := context.Background()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Customers.SenderDomains = map[string]string{"a.example": "cust-a", "b.example": "cust-b"}
	cfg.Customers.ClientAddresses = map[string]string{"198.51.100.0/24": "cust-net"}
	if edit != nil {
		edit(&cfg)
	}
	set := testSettings(js)
	if len(clock) > 0 {
		set.Now = clock[0]
	}
	srv, err := New(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ns: ns, js: js, kv: kv, srv: srv}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return e
}

func (e *env) put(t *testing.T, r enforcement.Record) {
	t.Helper()
	if _, err := e.kv.Put(context.Background(), r.SubjectOf().Key(), r.Marshal()); err != nil {
		t.Fatal(err)
	}
}

func record(s enforcement.Subject, action string, until time.Time) enforcement.Record {
	r := enforcement.Record{
		DecisionID: schemas.NewID(), Action: action, DecisionTarget: s.Target(),
		DecisionTerm: schemas.DecisionTerm{Rule: "complaint_rate", Offence: 1, Until: until},
		DecidedAt:    time.Now().Add(-time.Minute),
	}
	if action == schemas.ActionReroute {
		r.Transport = "ndr"
	} else {
		r.PolicyAction, r.PolicyText = "DEFER_IF_PERMIT", "4.7.1 Sending suspended for "+s.String()
	}
	return r
}

// client speaks the policy protocol like Postfix.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr net.Addr) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

func (c *client) ask(t *testing.T, attrs map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n")
	for k, v := range attrs {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	b.WriteString("\n")
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		t.Fatal(err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if blank, err := c.r.ReadString('\n'); err != nil || blank != "\n" {
		t.Fatalf("answer not ended by an empty line: %q %v", blank, err)
	}
	action, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "action=")
	if !ok {
		t.Fatalf("answer %q has no action=", line)
	}
	return action
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAnswersFromDecisions(t *testing.T) {
	e := start(t, nil)
	<-e.srv.State().Synced()
	future := time.Now().Add(time.Hour)
	e.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, future))
	e.put(t, record(enforcement.Customer("acme"), schemas.ActionCutoff, time.Time{})) // until lifted
	e.put(t, record(enforcement.CustomerProvider("cust-b", "gmail"), schemas.ActionReroute, future))
	e.put(t, record(enforcement.SourceIP("203.0.113.9"), schemas.ActionReroute, future))
	e.put(t, record(enforcement.Customer("cust-net"), schemas.ActionReroute, future))
	e.put(t, record(enforcement.Customer("expired"), schemas.ActionCutoff, time.Now().Add(-time.Second)))
	eventually(t, "decisions loaded", func() bool { return e.srv.State().Len() == 6 })

	c := dial(t, e.srv.Addr())
	tests := []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"sender domain mapped to a cut-off customer", map[string]string{"sender": "news@a.example", "recipient": "x@yahoo.com", "client_address": "192.0.2.1"}, "DEFER_IF_PERMIT 4.7.1 Sending suspended for customer:cust-a"},
		{"another customer is untouched", map[string]string{"sender": "news@other.example", "recipient": "x@yahoo.com", "client_address": "192.0.2.1"}, "DUNNO"},
		{"sasl_username is the customer", map[string]string{"sasl_username": "acme", "sender": "", "client_address": "192.0.2.1"}, "DEFER_IF_PERMIT 4.7.1 Sending suspended for customer:acme"},
		{"customer x provider reroute, to that provider", map[string]string{"sender": "a@b.example", "recipient": "x@gmail.com"}, "FILTER ndr:"},
		{"customer x provider, subdomain of the provider", map[string]string{"sender": "a@b.example", "recipient": "x@mail.googlemail.com"}, "FILTER ndr:"},
		{"customer x provider, another provider", map[string]string{"sender": "a@b.example", "recipient": "x@yahoo.com"}, "DUNNO"},
		{"ip decision on client_address", map[string]string{"sender": "a@c.example", "client_address": "203.0.113.9"}, "FILTER ndr:"},
		{"client address in a mapped CIDR", map[string]string{"client_address": "198.51.100.77"}, "FILTER ndr:"},
		{"an expired record is not enforced", map[string]string{"sasl_username": "expired"}, "DUNNO"},
		{"a cut-off beats a reroute", map[string]string{"sender": "a@a.example", "client_address": "203.0.113.9"}, "DEFER_IF_PERMIT 4.7.1 Sending suspended for customer:cust-a"},
	}
	for _, tc := range tests {
		if got := c.ask(t, tc.attrs); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// Not an access policy request.
	if _, err := io.WriteString(c.c, "request=other\n\n"); err != nil {
		t.Fatal(err)
	}
	if line, _ := c.r.ReadString('\n'); line != "action=DUNNO\n" {
		t.Errorf("other request: %q", line)
	}
	c.r.ReadString('\n')
}

func TestConfiguredAnswers(t *testing.T) {
	for _, tc := range []struct {
		action, nexthop string
		rec             string
		want            string
	}{
		{action: "REJECT", rec: schemas.ActionCutoff, want: "REJECT 5.7.1 Sending suspended for customer:cust-a"},
		{action: "HOLD", rec: schemas.ActionCutoff, want: "HOLD 4.7.1 Sending suspended for customer:cust-a"},
		{nexthop: "[127.0.0.1]:2527", rec: schemas.ActionReroute, want: "FILTER ndr:[127.0.0.1]:2527"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			e := start(t, func(c *Config) { c.CutoffAction, c.RerouteNexthop = tc.action, tc.nexthop })
			<-e.srv.State().Synced()
			e.put(t, record(enforcement.Customer("cust-a"), tc.rec, time.Now().Add(time.Hour)))
			eventually(t, "decision loaded", func() bool { return e.srv.State().Len() == 1 })
			if got := dial(t, e.srv.Addr()).ask(t, map[string]string{"sender": "x@a.example"}); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

// A decision written to the bucket is answered as soon as the watch
// delivers it, and a deleted one stops at once.
func TestWatchTakesEffectImmediately(t *testing.T) {
	e := start(t, nil)
	<-e.srv.State().Synced()
	c := dial(t, e.srv.Addr())
	req := map[string]string{"sender": "x@a.example"}
	if got := c.ask(t, req); got != "DUNNO" {
		t.Fatalf("before: %q", got)
	}
	r := record(enforcement.Customer("cust-a"), schemas.ActionCutoff, time.Now().Add(time.Hour))
	written := time.Now()
	e.put(t, r)
	for c.ask(t, req) == "DUNNO" {
		if time.Since(written) > 2*time.Second {
			t.Fatal("decision not enforced within 2s")
		}
	}
	t.Logf("enforced %s after the KV write", time.Since(written))
	if err := e.kv.Delete(context.Background(), r.SubjectOf().Key()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lifted decision stops", func() bool { return c.ask(t, req) == "DUNNO" })
}

// The service answers from Until, not from the server's key expiry.
func TestExpiryByUntil(t *testing.T) {
	e := start(t, nil)
	<-e.srv.State().Synced()
	e.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, time.Now().Add(300*time.Millisecond)))
	eventually(t, "decision loaded", func() bool { return e.srv.State().Len() == 1 })
	c := dial(t, e.srv.Addr())
	req := map[string]string{"sender": "x@a.example"}
	if got := c.ask(t, req); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Fatalf("before until: %q", got)
	}
	time.Sleep(350 * time.Millisecond)
	if got := c.ask(t, req); got != "DUNNO" {
		t.Fatalf("after until: %q", got)
	}
}

// Without its state the service fails open within answer_timeout and
// raises an alert.
func TestFailsOpenWithAlert(t *testing.T) {
	e := start(t, func(c *Config) { c.AnswerTimeout = config.Duration(50 * time.Millisecond) })
	// No bucket: the state can never load.
	if err := e.js.DeleteKeyValue(context.Background(), enforcement.Bucket); err != nil {
		t.Fatal(err)
	}
	// (The service may have loaded it before the delete; start a second
	// one that never can.)
	srv2, err := New(e.srv.cfg, testSettings(e.js))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-srv2.Ready()
	c := dial(t, srv2.Addr())
	begin := time.Now()
	if got := c.ask(t, map[string]string{"sender": "x@a.example"}); got != "DUNNO" {
		t.Fatalf("without state: %q", got)
	}
	if took := time.Since(begin); took > 500*time.Millisecond {
		t.Errorf("fail-open answer took %s, bound 50ms", took)
	}
	alerts, err := e.js.OrderedConsumer(context.Background(), "ALERT", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := alerts.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no alert: %v", err)
	}
	ev, err := schemas.Decode(msg.Data())
	if err != nil {
		t.Fatal(err)
	}
	a := ev.(*schemas.AlertRaised)
	if a.Rule != RuleStateUnavailable || a.Status != schemas.AlertFiring || a.Severity != schemas.AlertCritical {
		t.Errorf("alert %+v", a)
	}
}

// After NATS goes away the last known decisions hold for stale_after, then
// the service fails open when on_stale says so.
func TestStaleStateFailsOpen(t *testing.T) {
	e := start(t, func(c *Config) {
		c.OnStale = OnStaleFailOpen
		c.StaleAfter = config.Duration(300 * time.Millisecond)
		c.AnswerTimeout = config.Duration(20 * time.Millisecond)
	})
	<-e.srv.State().Synced()
	e.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, time.Now().Add(time.Hour)))
	eventually(t, "decision loaded", func() bool { return e.srv.State().Len() == 1 })
	c := dial(t, e.srv.Addr())
	req := map[string]string{"sender": "x@a.example"}
	e.ns.Shutdown()
	if got := c.ask(t, req); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Fatalf("just after NATS went: %q", got)
	}
	eventually(t, "fail open", func() bool { return c.ask(t, req) == "DUNNO" })
}

func TestProtocolLimitsOverTCP(t *testing.T) {
	e := start(t, func(c *Config) {
		c.MaxAttributes = 10
		c.IdleTimeout = config.Duration(200 * time.Millisecond)
	})
	closed := func(c *client) bool {
		c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.r.ReadByte()
		return err != nil
	}
	c := dial(t, e.srv.Addr())
	io.WriteString(c.c, strings.Repeat("a=b\n", 11)+"\n")
	if !closed(c) {
		t.Error("too many attributes: connection not closed")
	}
	c = dial(t, e.srv.Addr())
	io.WriteString(c.c, "sender="+strings.Repeat("x", 5000)+"\n\n")
	if !closed(c) {
		t.Error("oversized line: connection not closed")
	}
	c = dial(t, e.srv.Addr())
	if !closed(c) {
		t.Error("idle connection not closed")
	}
	// A well-behaved client still gets answers.
	if got := dial(t, e.srv.Addr()).ask(t, map[string]string{"sender": "x@z.example"}); got != "DUNNO" {
		t.Errorf("%q", got)
	}
}
