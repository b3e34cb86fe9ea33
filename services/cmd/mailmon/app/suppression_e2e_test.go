package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dkimtest"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/peers"
	"github.com/mailmon/mailmon/services/policyservice"
)

// TestSuppressionEndToEnd runs the suppression loop against Debian's
// Postfix: our Postfix asks the policy service about every recipient and
// relays to a remote MX that refuses some addresses (550 5.1.1 at RCPT, or
// after DATA); the mta-log-tailer follows Postfix's log, the fbl-ingester
// receives feedback reports, the suppressor keeps the list. What the
// customers see is what Postfix answers them:
//
//   - an address that hard-bounced at RCPT, and one after DATA, is refused
//     at RCPT on the customer's next message, and still accepted for
//     another customer;
//   - a trusted complaint (signed by the feedback-loop operator) does the
//     same; an unsigned one changes nothing;
//   - a later successful delivery to a bounced address clears its entry;
//   - an entry that expires, or is removed by hand, stops being enforced;
//   - a dry-run customer's entry is counted, not enforced.
func TestSuppressionEndToEnd(t *testing.T) {
	if err := peers.CheckPostfix(); err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	ctx := t.Context()
	mx := startRemoteMX(t)
	zone := dkimtest.Start(t)
	operator := zone.NewSigner(t, "fbl.provider.test")

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = ""
	cfg.NATS.Embedded.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.ClickHouse.Local.Enabled = false
	cfg.Tracking.Key = TrackingKey{ID: "e2e", Secret: config.Secret("e2e-tracking-secret-0123456789-0123456789")}
	ring, err := cfg.Tracking.Keyring()
	if err != nil {
		t.Fatal(err)
	}

	policyAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ps := &cfg.PolicyService
	ps.Listen = policyAddr
	ps.Customers = policyIdentity()

	pf, err := peers.StartPostfix(ctx, peers.PostfixConfig{Main: map[string]string{
		"smtpd_recipient_restrictions": fmt.Sprintf("check_policy_service inet:%s, permit_mynetworks, reject_unauth_destination", policyAddr),
		"relayhost":                    fmt.Sprintf("[127.0.0.1]:%d", mx.port),
		"header_checks":                "regexp:$config_directory/header_checks",
	}, Files: map[string]string{"header_checks": "/^" + tracking.HeaderName + ":/ WARN\n"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPeer(t, "maillog", pf) })

	tl := &cfg.MTALogTailer
	tl.Files = []mtalogtailer.FileConfig{{Path: pf.Maillog, Format: "postfix"}}
	tl.PollInterval = config.Duration(20 * time.Millisecond)
	tl.CommitInterval = config.Duration(100 * time.Millisecond)
	tl.TimeZone = "Local" // postlogd writes local time
	tl.TrackingHeader = tracking.HeaderName
	tl.PublishRejects = true // our own refusals must never add entries

	fb := &cfg.FBLIngester
	fb.SMTP.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fb.SMTP.Addresses = []string{"fbl@reports.example"}
	fb.Trust.Operators = []fblingester.Operator{{DKIMDomain: "fbl.provider.test"}}
	fb.Trust.Resolver = zone.Addr

	sp := &cfg.Suppression
	sp.DryRunCustomers = []string{"cust-c"}
	sp.SweepInterval = config.Duration(500 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	workers, err := SelectWorkers("mta-log-tailer,fbl-ingester,suppressor,policy-service")
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("warnings and errors logged:\n%s\npostfix log:\n%s", log.String(), pf.Log())
		}
	}()
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, stopMailmon := runMailmon(t, ctx, cfg, logger, workers)
	defer stopMailmon()
	kv, err := rt.JetStream.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	w := suppression.Writer{KV: kv, Pub: bus.NewPublisher(rt.JetStream, bus.PublisherOptions{Worker: "mailmon-cli"}),
		Source: schemas.Source{Worker: "mailmon-cli", Host: "test"}}
	keyOf := func(customer, rcpt string) string {
		tg, err := sp.Normalize.TargetFor(schemas.SuppressCustomerRecipient, customer, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		return sp.Hasher().Key(tg)
	}
	entry := func(customer, rcpt string) (suppression.Entry, bool) {
		e, _, found, err := suppression.Get(ctx, kv, keyOf(customer, rcpt))
		if err != nil {
			t.Fatal(err)
		}
		return e, found
	}
	waitEntry := func(customer, rcpt, reason string) suppression.Entry {
		t.Helper()
		testwait.Eventually(t, 30*time.Second, "a suppression entry for "+customer+" → "+rcpt, func() bool {
			_, found := entry(customer, rcpt)
			return found
		})
		e, _ := entry(customer, rcpt)
		if e.Reason != reason {
			t.Errorf("%s → %s: entry reason %s, want %s (%+v)", customer, rcpt, e.Reason, reason, e)
		}
		return e
	}
	send := func(customer, rcpt string) error {
		return sendTracked(pf.Addr(), ring, customer, rcpt)
	}
	refused := func(customer, rcpt string) {
		t.Helper()
		err := send(customer, rcpt)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
			t.Fatalf("%s → %s: %v; want refused at RCPT with 550 5.1.1", customer, rcpt, err)
		}
		if strings.Contains(strings.ToLower(se.Message), "bounce") || strings.Contains(strings.ToLower(se.Message), "complain") {
			t.Errorf("the refusal tells the sender why: %q", se.Message)
		}
	}
	accepted := func(customer, rcpt string) {
		t.Helper()
		if err := send(customer, rcpt); err != nil {
			t.Fatalf("%s → %s: %v; want accepted", customer, rcpt, err)
		}
	}
	policyAnswer := func(customer, rcpt string) string {
		return askPolicyAbout(t, policyAddr, "news@"+customerDomain(customer), rcpt)
	}

	// Hard bounces at RCPT and after DATA.
	accepted("cust-a", "rcpt-unknown-1@remote.test")
	accepted("cust-a", "data-unknown-1@remote.test")
	bounced := waitEntry("cust-a", "rcpt-unknown-1@remote.test", schemas.SuppressHardBounce)
	if bounced.BounceCategory != "user_unknown" || bounced.Status != "5.1.1" || bounced.Expires.IsZero() {
		t.Errorf("bounce entry: category %s status %s expires %v", bounced.BounceCategory, bounced.Status, bounced.Expires)
	}
	waitEntry("cust-a", "data-unknown-1@remote.test", schemas.SuppressHardBounce)
	refused("cust-a", "rcpt-unknown-1@remote.test")
	refused("cust-a", "data-unknown-1@REMOTE.test.") // the domain's case and root dot do not matter
	accepted("cust-b", "data-unknown-1@remote.test") // another customer still sends

	// Complaints: a trusted report suppresses, an unsigned one does not.
	submitFBL(t, fb.SMTP.Listen, operator.Sign(t, complaintReport(t, ring, "cust-a", "reader-1@remote.test", "t1")))
	submitFBL(t, fb.SMTP.Listen, complaintReport(t, ring, "cust-a", "reader-2@remote.test", "u1"))
	complained := waitEntry("cust-a", "reader-1@remote.test", schemas.SuppressComplaint)
	if !complained.Expires.IsZero() {
		t.Errorf("a complaint entry expires at %v; want never", complained.Expires)
	}
	refused("cust-a", "reader-1@remote.test")
	waitConsumed(t, rt.JetStream, "COMPLAINT", "suppressor", 2)
	if _, found := entry("cust-a", "reader-2@remote.test"); found {
		t.Error("an unsigned (untrusted) complaint suppressed its recipient")
	}
	accepted("cust-a", "reader-2@remote.test")

	// A delivery that succeeds clears a bounce entry: the address came back.
	mx.setGone("back-1@remote.test", true)
	accepted("cust-a", "back-1@remote.test")
	waitEntry("cust-a", "back-1@remote.test", schemas.SuppressHardBounce)
	refused("cust-a", "back-1@remote.test")
	mx.setGone("back-1@remote.test", false)
	accepted("cust-b", "back-1@remote.test")
	mx.waitDelivered(t, "back-1@remote.test")
	testwait.Eventually(t, 30*time.Second, "the delivery to clear the bounce entry", func() bool {
		_, found := entry("cust-a", "back-1@remote.test")
		return !found
	})
	testwait.Eventually(t, 10*time.Second, "the policy service to forget the cleared entry", func() bool {
		return policyAnswer("cust-a", "back-1@remote.test") == "DUNNO"
	})
	accepted("cust-a", "back-1@remote.test")

	// Manual removal releases.
	if _, ok, err := w.Remove(ctx, keyOf("cust-a", "rcpt-unknown-1@remote.test"), schemas.UnsuppressManual, "op-1", time.Now(), nil, "ops", "customer fixed the address", nil); err != nil || !ok {
		t.Fatalf("remove: %v %v", ok, err)
	}
	testwait.Eventually(t, 10*time.Second, "the policy service to forget the removed entry", func() bool {
		return policyAnswer("cust-a", "rcpt-unknown-1@remote.test") == "DUNNO"
	})

	// Expiry releases: a manual entry for a few seconds.
	tg, _ := sp.Normalize.TargetFor(schemas.SuppressCustomerRecipient, "cust-a", "short@remote.test")
	now := time.Now()
	short := suppression.NewEntry(sp.Hasher(), tg, schemas.SuppressManual, now, now.Add(3*time.Second))
	short.AddedID = suppression.AddedID(now, short.Key, "manual-short")
	if _, err := w.Add(ctx, short, nil); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "the policy service to enforce the manual entry", func() bool {
		return policyAnswer("cust-a", "short@remote.test") != "DUNNO"
	})
	refused("cust-a", "short@remote.test")
	testwait.Eventually(t, 15*time.Second, "the entry to expire", func() bool {
		return policyAnswer("cust-a", "short@remote.test") == "DUNNO"
	})
	accepted("cust-a", "short@remote.test")
	testwait.Eventually(t, 15*time.Second, "the sweep to remove the expired entry", func() bool {
		_, found := entry("cust-a", "short@remote.test")
		return !found
	})

	// Dry run: cust-c's entry is kept and counted, not enforced.
	accepted("cust-c", "rcpt-unknown-2@remote.test")
	waitEntry("cust-c", "rcpt-unknown-2@remote.test", schemas.SuppressHardBounce)
	before := dryRunCount(t, rt, "cust-c")
	accepted("cust-c", "rcpt-unknown-2@remote.test")
	if after := dryRunCount(t, rt, "cust-c"); after <= before {
		t.Errorf("dry-run counter for cust-c went from %v to %v; want it counted", before, after)
	}

	// Every change is an event on SUPPRESSION.
	var added, removed = map[string]int{}, map[string]int{}
	for _, ev := range suppressionEvents(t, rt.JetStream) {
		switch e := ev.(type) {
		case *schemas.SuppressionAdded:
			added[e.Reason]++
		case *schemas.SuppressionRemoved:
			removed[e.Cause]++
		}
	}
	if added[schemas.SuppressHardBounce] < 4 || added[schemas.SuppressComplaint] != 1 || added[schemas.SuppressManual] != 1 {
		t.Errorf("added events by reason: %v", added)
	}
	if removed[schemas.UnsuppressDelivered] != 1 || removed[schemas.UnsuppressManual] != 1 || removed[schemas.UnsuppressExpired] != 1 {
		t.Errorf("removed events by cause: %v", removed)
	}
	t.Logf("added %v, removed %v", added, removed)
}

// suppressionEvents reads the whole SUPPRESSION stream, in order.
func suppressionEvents(t *testing.T, js jetstream.JetStream) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for _, msg := range streamMessages(t, js, "SUPPRESSION") {
		ev, err := schemas.Decode(msg.Data)
		if err != nil {
			t.Fatalf("SUPPRESSION seq %d: %v", msg.Sequence, err)
		}
		out = append(out, ev)
	}
	return out
}

// The customers of the test, by their senders' domains.
func customerDomain(customer string) string {
	return strings.TrimPrefix(customer, "cust-") + ".example"
}

func policyIdentity() policyservice.Identity {
	id := policyservice.Identity{SenderDomains: map[string]string{}}
	for _, c := range []string{"cust-a", "cust-b", "cust-c"} {
		id.SenderDomains[customerDomain(c)] = c
	}
	return id
}

// sendTracked submits one message of customer to rcpt, with a signed
// tracking header; the error is the first refusal.
func sendTracked(addr string, ring tracking.Keyring, customer, rcpt string) error {
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	header, err := ring.Sign(tracking.Fields{Customer: customer, Source: "192.0.2.10", MessageID: id, Time: time.Now()})
	if err != nil {
		return err
	}
	from := "news@" + customerDomain(customer)
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: news\r\nMessage-ID: <%s@mail.test>\r\n%s: %s\r\n\r\nhello\r\n",
		from, rcpt, id, tracking.HeaderName, header)
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("app.example.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, []string{rcpt}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// complaintReport is an ARF abuse report about customer's message to rcpt,
// quoting its signed tracking header.
func complaintReport(t *testing.T, ring tracking.Keyring, customer, rcpt, id string) []byte {
	t.Helper()
	track, err := ring.Sign(tracking.Fields{Customer: customer, Source: "192.0.2.10", MessageID: id, Time: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Feedback Loop <feedback@fbl.provider.test>")
	w("To: fbl@reports.example")
	w("Subject: abuse report")
	w("Date: %s", time.Now().UTC().Format(time.RFC1123Z))
	w("Message-ID: <report-%s@fbl.provider.test>", id)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=feedback-report; boundary=\"BOUND\"")
	w("")
	w("--BOUND")
	w("Content-Type: text/plain")
	w("")
	w("This is an email abuse report.")
	w("")
	w("--BOUND")
	w("Content-Type: message/feedback-report")
	w("")
	w("Feedback-Type: abuse")
	w("User-Agent: ProviderFBL/1.0")
	w("Version: 1")
	w("Original-Rcpt-To: <%s>", rcpt)
	w("Arrival-Date: %s", time.Now().Add(-30*time.Minute).UTC().Format(time.RFC1123Z))
	w("Source-IP: 192.0.2.10")
	w("")
	w("--BOUND")
	w("Content-Type: text/rfc822-headers")
	w("")
	w("%s: %s", tracking.HeaderName, track)
	w("From: news@%s", customerDomain(customer))
	w("To: %s", rcpt)
	w("Subject: Winter sale")
	w("Message-ID: <orig-%s@mail.test>", id)
	w("")
	w("--BOUND--")
	return []byte(b.String())
}

// submitFBL hands a report straight to the fbl-ingester's listener.
func submitFBL(t *testing.T, addr string, msg []byte) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("provider.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("feedback@fbl.provider.test", []string{"fbl@reports.example"}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

// askPolicyAbout asks the policy service as Postfix does at RCPT TO and
// returns the action's verb.
func askPolicyAbout(t *testing.T, addr, sender, rcpt string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\nsender=%s\nrecipient=%s\n\n", sender, rcpt)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	action := strings.TrimPrefix(strings.TrimSpace(line), "action=")
	verb, _, _ := strings.Cut(action, " ")
	return verb
}

// waitConsumed waits until durable on stream has taken and acked at least
// n messages and holds none.
func waitConsumed(t *testing.T, js jetstream.JetStream, stream, durable string, n uint64) {
	t.Helper()
	testwait.Eventually(t, 30*time.Second, durable+" to consume "+stream, func() bool {
		c, err := js.Consumer(t.Context(), stream, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.AckFloor.Stream >= n && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// dryRunCount reads the policy service's dry-run counter for customer.
func dryRunCount(t *testing.T, rt *Runtime, customer string) float64 {
	t.Helper()
	families, err := rt.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "mailmon_policy_service_suppression_dry_run_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelIs(m, "customer", customer) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// remoteMX is the receiving side: it refuses rcpt-unknown-* at RCPT and
// data-unknown-* after DATA with 550 5.1.1, refuses addresses marked gone
// at RCPT, and accepts everything else.
type remoteMX struct {
	port      int
	mu        sync.Mutex
	gone      map[string]bool
	delivered map[string]int
}

func startRemoteMX(t *testing.T) *remoteMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mx := &remoteMX{port: ln.Addr().(*net.TCPAddr).Port, gone: map[string]bool{}, delivered: map[string]int{}}
	srv := smtp.NewServer(mx)
	srv.Domain = "mx.remote.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return mx
}

func (mx *remoteMX) setGone(rcpt string, gone bool) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.gone[rcpt] = gone
}

func (mx *remoteMX) waitDelivered(t *testing.T, rcpt string) {
	t.Helper()
	testwait.Eventually(t, 30*time.Second, "delivery to "+rcpt+" at the remote MX", func() bool {
		mx.mu.Lock()
		defer mx.mu.Unlock()
		return mx.delivered[rcpt] > 0
	})
}

var errUserUnknown = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
	Message: "The email account that you tried to reach does not exist."}

func (mx *remoteMX) NewSession(*smtp.Conn) (smtp.Session, error) { return &remoteSession{mx: mx}, nil }

type remoteSession struct {
	mx    *remoteMX
	rcpts []string
}

func (s *remoteSession) Reset()                             { s.rcpts = nil }
func (*remoteSession) Logout() error                        { return nil }
func (*remoteSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *remoteSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mx.mu.Lock()
	gone := s.mx.gone[to]
	s.mx.mu.Unlock()
	if gone || strings.HasPrefix(to, "rcpt-unknown-") {
		return errUserUnknown
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *remoteSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	for _, to := range s.rcpts {
		if strings.HasPrefix(to, "data-unknown-") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient address rejected: User unknown in virtual mailbox table"}
		}
	}
	s.mx.mu.Lock()
	for _, to := range s.rcpts {
		s.mx.delivered[to]++
	}
	s.mx.mu.Unlock()
	return nil
}
