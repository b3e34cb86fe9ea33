package mailboxretriever

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

var testRing = tracking.Keyring{Current: tracking.Key{ID: "test", Secret: []byte("0123456789abcdef0123456789abcdef")}}

// memIMAP is go-imap's in-memory server with one user holding INBOX and a
// \Junk folder called "Spam".
type memIMAP struct {
	addr string
	user *imapmemserver.User
}

func startIMAP(t *testing.T) *memIMAP {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice@inbox.test", "secret")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if err := u.Create("Spam", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrJunk}}); err != nil {
		t.Fatal(err)
	}
	if err := u.Create("Archive", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapSpecialUse: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &memIMAP{addr: ln.Addr().String(), user: u}
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// deliver stores a message as a provider would.
func (m *memIMAP) deliver(t *testing.T, folder string, msg []byte) {
	t.Helper()
	if _, err := m.user.Append(folder, literal{bytes.NewReader(msg)}, &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func (m *memIMAP) count(t *testing.T, folder string) uint32 {
	t.Helper()
	st, err := m.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumMessages
}

// probeMessage is a probe as it lands in the mailbox; trackingValue "" signs
// a correct header.
func probeMessage(t *testing.T, probeID, trackingValue string, extra ...string) []byte {
	t.Helper()
	if trackingValue == "" {
		v, err := testRing.Sign(tracking.Fields{Customer: DefaultProbeCustomer, Source: "192.0.2.10", MessageID: probeID, Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		trackingValue = v
	}
	head := "Received: from mta.example.test by mx.inbox.test; " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Received: from app by mta.example.test; " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"Authentication-Results: mx.inbox.test; spf=pass smtp.mailfrom=sender.test; dkim=pass header.d=sender.test; dmarc=pass (p=NONE) header.from=sender.test\r\n" +
		"Message-ID: <" + probeID + "@sender.test>\r\n" +
		"From: <probe@sender.test>\r\nTo: <alice@inbox.test>\r\nSubject: mailmon probe " + probeID + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		tracking.HeaderName + ": " + trackingValue + "\r\n"
	for _, e := range extra {
		head += e + "\r\n"
	}
	return []byte(head + "\r\nprobe body\r\n")
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func startNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return js
}

func testConfig(imapAddr string) Config {
	cfg := DefaultConfig()
	cfg.ReconnectMin = config.Duration(50 * time.Millisecond)
	cfg.ReconnectMax = config.Duration(500 * time.Millisecond)
	cfg.Timeout = config.Duration(5 * time.Second)
	cfg.CheckInterval = config.Duration(200 * time.Millisecond)
	cfg.Accounts = []Account{{Name: "alice", Protocol: ProtocolIMAP, Addr: imapAddr, TLS: TLSNone, Username: "alice@inbox.test", Password: "secret"}}
	return cfg
}

type running struct {
	r      *Retriever
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (rn *running) stop(t *testing.T) {
	t.Helper()
	rn.cancel()
	select {
	case <-rn.done:
		if rn.err != nil {
			t.Errorf("Run returned %v", rn.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

func (rn *running) counter(name string, labels ...string) float64 {
	m := rn.r.metrics
	var c prometheus.Counter
	switch name {
	case "ignored":
		c = m.ignored.WithLabelValues(labels...)
	case "probes":
		c = m.probes.WithLabelValues(labels...)
	default:
		panic(name)
	}
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		panic(err)
	}
	return out.GetCounter().GetValue()
}

func startRetriever(t *testing.T, js jetstream.JetStream, cfg Config, clock *fakeClock) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	set := worker.Settings{
		JetStream: js, Metrics: reg, Source: schemas.Source{Worker: WorkerName, Host: "test"},
		Tracking: worker.Tracking{Keyring: &testRing}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("retriever logs:\n%s", logs.String())
		}
	})
	if clock != nil {
		set.Now = clock.Now
	}
	r, err := New(cfg, set)
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
		select {
		case <-rn.done:
		case <-time.After(20 * time.Second):
		}
	})
	return rn
}

// publishSent publishes an accepted probe.sent to seed at time sent.
func publishSent(t *testing.T, js jetstream.JetStream, probeID, seed string, sent time.Time) *schemas.ProbeSent {
	t.Helper()
	ev := &schemas.ProbeSent{
		ProbeRoute: schemas.ProbeRoute{ProbeID: probeID, TrackingID: probeID, SourceIP: "192.0.2.10", Provider: "test", RecipientDomain: "inbox.test", Route: "relay-1"},
		Submission: schemas.SubmissionSMTP, Relay: "127.0.0.1:25",
		ProbeSeed: schemas.ProbeSeed{Target: "t1", SeedAddress: seed},
		MessageID: probeID + "@sender.test", SizeBytes: 100, Outcome: schemas.OutcomeAccepted, ReplyCode: 250,
		ConnectMs: 1, BannerMs: 1, EhloMs: 1, StarttlsMs: -1, AuthMs: -1, MailMs: 1, RcptMs: 1, DataMs: 1, TotalMs: 5,
	}
	if err := schemas.Stamp(ev, schemas.Source{Worker: "probe-sender", Host: "test"}, sent); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, bus.PublisherOptions{Worker: "probe-sender"}).Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// events collects the events of one subject from the PROBE (or ALERT)
// stream until want have arrived or timeout.
type eventLog struct {
	mu   sync.Mutex
	evs  []schemas.Event
	cons jetstream.ConsumeContext
}

func watchEvents(t *testing.T, js jetstream.JetStream, stream, subject string) *eventLog {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	cc, err := c.Consume(func(m jetstream.Msg) {
		ev, err := schemas.Decode(m.Data())
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject(), err)
			return
		}
		if err := schemas.Validate(ev); err != nil {
			t.Errorf("event breaks the contract: %v\n%s", err, m.Data())
		}
		l.mu.Lock()
		l.evs = append(l.evs, ev)
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	l.cons = cc
	t.Cleanup(cc.Stop)
	return l
}

func (l *eventLog) all() []schemas.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]schemas.Event(nil), l.evs...)
}

func (l *eventLog) wait(t *testing.T, n int, timeout time.Duration) []schemas.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if evs := l.all(); len(evs) >= n {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
	evs := l.all()
	var b strings.Builder
	for _, e := range evs {
		j, _ := json.Marshal(e)
		fmt.Fprintf(&b, "%s\n", j)
	}
	t.Fatalf("got %d events, want %d within %s:\n%s", len(evs), n, timeout, b.String())
	return nil
}
