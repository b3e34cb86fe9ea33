package complaintevaluator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/peers"
	"github.com/mailmon/mailmon/services/policyservice"
)

// The real-peer test: Debian's Postfix consults the policy service with
// check_policy_service and has two transports, the normal relay and ndr,
// each relaying to its own in-process SMTP sink. Customer A (sender domain
// a.example) is pushed over the complaint threshold; its next message is
// refused (cut-off) or leaves through ndr (reroute), as Postfix's own log
// shows; customer B is untouched; after the shortened TTL A's mail flows
// normally again; the notifier's endpoint got the alert and the resolved
// notice.
func TestPostfixCutoff(t *testing.T)  { testPostfix(t, schemas.ActionCutoff) }
func TestPostfixReroute(t *testing.T) { testPostfix(t, schemas.ActionReroute) }

func testPostfix(t *testing.T, action string) {
	if err := peers.CheckPostfix(); err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	const ttl = 4 * time.Second
	js, kv := newNATS(t)
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})
	l := &loop{js: js, kv: kv, pub: pub, hook: newWebhook(t)}

	policy := startPolicyAndNotifier(t, l)
	startEvaluator(t, js, evaluatorConfig(ttl, action))

	normal, ndr := startSink(t), startSink(t)
	pf := startPostfix(t, policy.Addr().(*net.TCPAddr).Port, normal.port, ndr.port)

	// Before: both customers' mail leaves through the normal transport.
	pf.send(t, "news@a.example", "one@remote.test", "a-before")
	pf.send(t, "news@b.example", "two@remote.test", "b-before")
	normal.waitFor(t, "a-before", "b-before")
	pf.waitLog(t, "a-before delivered normally", fmt.Sprintf(`to=<one@remote.test>, relay=127.0.0.1[127.0.0.1]:%d`, normal.port), "status=sent")

	// A over the threshold: 1 complaint in 200 deliveries (0.5 %).
	l.publish(t, traffic("cust-a", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, traffic("cust-b", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	testwait.Eventually(t, 30*time.Second, "decision", func() bool {
		_, _, found, _ := enforcement.Get(context.Background(), kv, enforcement.Customer("cust-a"), time.Now())
		return found
	})

	switch action {
	case schemas.ActionCutoff:
		err := pf.trySend("news@a.example", "three@remote.test", "a-during")
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "Sending suspended for customer:cust-a") {
			t.Fatalf("A's message during the cut-off: %v, want 554 ... Sending suspended", err)
		}
		pf.waitLog(t, "Postfix refused A", "NOQUEUE: reject: RCPT from", "554 5.7.1 <three@remote.test>", "Sending suspended for customer:cust-a", "from=<news@a.example>")
	case schemas.ActionReroute:
		pf.send(t, "news@a.example", "three@remote.test", "a-during")
		ndr.waitFor(t, "a-during")
		pf.waitLog(t, "Postfix filtered A to ndr", "Recipient address triggers FILTER ndr:", "from=<news@a.example>")
		pf.waitLog(t, "A left through ndr", "postfix-ndr/smtp[", fmt.Sprintf("to=<three@remote.test>, relay=127.0.0.1[127.0.0.1]:%d", ndr.port), "status=sent")
		if normal.has("a-during") {
			t.Error("A's rerouted message also reached the normal sink")
		}
	}
	// B is untouched.
	pf.send(t, "news@b.example", "four@remote.test", "b-during")
	normal.waitFor(t, "b-during")
	pf.waitLog(t, "B delivered normally", fmt.Sprintf("to=<four@remote.test>, relay=127.0.0.1[127.0.0.1]:%d", normal.port), "status=sent")
	if ndr.has("b-during") {
		t.Error("B's message went through ndr")
	}

	// After the TTL, A's mail flows normally again.
	testwait.Eventually(t, ttl+5*time.Second, "release", func() bool {
		return ask(t, policy.Addr(), map[string]string{"sender": "x@a.example"}) == "DUNNO"
	})
	pf.send(t, "news@a.example", "five@remote.test", "a-after")
	normal.waitFor(t, "a-after")
	pf.waitLog(t, "A delivered normally after the release", fmt.Sprintf("to=<five@remote.test>, relay=127.0.0.1[127.0.0.1]:%d", normal.port), "status=sent")

	testwait.Eventually(t, 30*time.Second, "alert and resolved notice at the notifier endpoint", func() bool {
		as := l.hook.alerts("customer:cust-a")
		return len(as) >= 2 && as[0].Status == schemas.AlertFiring && as[len(as)-1].Status == schemas.AlertResolved
	})
	t.Logf("postfix log:\n%s", pf.Log())
}

// sink is an SMTP server that stores what it receives.
type sink struct {
	port int
	mu   sync.Mutex
	msgs []string
}

func startSink(t *testing.T) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{port: ln.Addr().(*net.TCPAddr).Port}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct{ s *sink }

func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, string(b))
	ss.s.mu.Unlock()
	return nil
}

func (s *sink) has(tag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.Contains(m, "Subject: "+tag+"\r\n") {
			return true
		}
	}
	return false
}

func (s *sink) waitFor(t *testing.T, tags ...string) {
	t.Helper()
	for _, tag := range tags {
		testwait.Eventually(t, 20*time.Second, "message "+tag+" at the sink", func() bool { return s.has(tag) })
	}
}

// postfix is a private Postfix instance (services/peers) with the test's
// ways to send through it and to read its log.
type postfix struct{ *peers.Postfix }

// startPostfix runs Postfix asking the policy service at policyPort about
// every recipient, relaying to the sink at normalPort, and with the ndr
// transport (its own syslog_name, so its lines are told apart) relaying a
// FILTER ndr: message to the sink at ndrPort.
func startPostfix(t *testing.T, policyPort, normalPort, ndrPort int) *postfix {
	t.Helper()
	pp, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{
		Main: map[string]string{
			"smtpd_recipient_restrictions": fmt.Sprintf("check_policy_service inet:127.0.0.1:%d, permit_mynetworks, reject_unauth_destination", policyPort),
			"relayhost":                    fmt.Sprintf("[127.0.0.1]:%d", normalPort),
			"default_filter_nexthop":       fmt.Sprintf("[127.0.0.1]:%d", ndrPort),
		},
		Master: []string{"ndr        unix  - - n - - smtp -o syslog_name=postfix-ndr"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pp.Close(); err != nil {
			t.Log(err)
		}
	})
	return &postfix{pp}
}

// waitLog waits for one log line holding every part.
func (p *postfix) waitLog(t *testing.T, what string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(p.Log(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				t.Logf("%s: %s", what, line)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line with %q; log:\n%s", what, parts, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *postfix) trySend(from, to, tag string) error {
	c, err := smtp.Dial(p.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\nbody of %s\r\n", from, to, tag, tag, tag)
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (p *postfix) send(t *testing.T, from, to, tag string) {
	t.Helper()
	if err := p.trySend(from, to, tag); err != nil {
		t.Fatalf("send %s from %s: %v\n%s", tag, from, err, p.Log())
	}
}

// startPolicyAndNotifier runs the policy service (cut-offs answered REJECT;
// senders at a.example are cust-a, at b.example cust-b) and a notifier
// posting every alert to l's webhook.
func startPolicyAndNotifier(t *testing.T, l *loop) *policyservice.Server {
	t.Helper()
	pcfg := policyservice.DefaultConfig()
	pcfg.Listen = "127.0.0.1:0"
	pcfg.CutoffAction = "REJECT"
	pcfg.Customers.SenderDomains = map[string]string{"a.example": "cust-a", "b.example": "cust-b"}
	policy, err := policyservice.New(pcfg, settings(t, l.js, policyservice.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, policy)
	<-policy.Ready()
	ncfg := notifier.DefaultConfig()
	ncfg.GroupWait = config.Duration(100 * time.Millisecond)
	ncfg.Routes = []notifier.Route{{Name: "test", Kind: notifier.KindWebhook, URL: config.Secret(l.hook.srv.URL)}}
	n, err := notifier.New(ncfg, settings(t, l.js, notifier.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, n)
	return policy
}
