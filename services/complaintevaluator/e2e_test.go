package complaintevaluator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/policyservice"
)

// loop is the whole enforcement loop on one embedded NATS.
type loop struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	pub    *bus.Publisher
	policy *policyservice.Server
	hook   *webhook
}

func settings(t testing.TB, js jetstream.JetStream, name string) worker.Settings {
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("MAILMON_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", name)
	}
	return worker.Settings{
		Logger:    log,
		Metrics:   prometheus.NewRegistry(),
		JetStream: js,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: name}),
		Source:    schemas.Source{Worker: name, Host: "test"},
	}
}

func newNATS(t testing.TB) (jetstream.JetStream, jetstream.KeyValue) {
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv
}

// runWorker runs r until the test ends (or stop is called) and fails the
// test if it returns an error.
func runWorker(t testing.TB, r worker.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// evaluatorConfig judges the customer scope over 1h with a minimum of 100
// deliveries; first offences last ttl.
func evaluatorConfig(ttl time.Duration, action string) complaintevaluator.Config {
	cfg := complaintevaluator.DefaultConfig()
	cfg.Windows = []config.Duration{config.Duration(time.Hour), config.Duration(24 * time.Hour)}
	cfg.Customer.MinDelivered = 100
	cfg.Customer.Action = action
	cfg.CustomerProvider.WarnRate, cfg.CustomerProvider.ActRate = 0, 0
	cfg.SourceIP.WarnRate, cfg.SourceIP.ActRate = 0, 0
	cfg.Decisions.First = config.Duration(ttl)
	cfg.Tick = config.Duration(50 * time.Millisecond)
	return cfg
}

func startEvaluator(t testing.TB, js jetstream.JetStream, cfg complaintevaluator.Config) (*complaintevaluator.Evaluator, func()) {
	t.Helper()
	ev, err := complaintevaluator.New(cfg, settings(t, js, complaintevaluator.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	stop := runWorker(t, ev)
	select {
	case <-ev.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("evaluator not ready")
	}
	return ev, stop
}

func startLoop(t *testing.T, evCfg complaintevaluator.Config, cutoffAction string) *loop {
	t.Helper()
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"}), hook: newWebhook(t)}

	pcfg := policyservice.DefaultConfig()
	pcfg.Listen = "127.0.0.1:0"
	pcfg.CutoffAction = cutoffAction
	policy, err := policyservice.New(pcfg, settings(t, js, policyservice.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, policy)
	<-policy.Ready()
	l.policy = policy

	ncfg := notifier.DefaultConfig()
	ncfg.GroupWait = config.Duration(100 * time.Millisecond)
	ncfg.Routes = []notifier.Route{{Name: "test", Kind: notifier.KindWebhook, URL: config.Secret(l.hook.srv.URL)}}
	n, err := notifier.New(ncfg, settings(t, js, notifier.WorkerName))
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, n)
	startEvaluator(t, js, evCfg)
	return l
}

// webhook records notifications.
type webhook struct {
	mu    sync.Mutex
	notes []notifier.Notification
	srv   *httptest.Server
}

func newWebhook(t testing.TB) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n notifier.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.notes = append(w.notes, n)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// alerts returns the alerts received about subject, in order.
func (w *webhook) alerts(subject string) []*schemas.AlertRaised {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*schemas.AlertRaised
	for _, n := range w.notes {
		for _, a := range n.Alerts {
			if a.Subject == subject {
				out = append(out, a)
			}
		}
	}
	return out
}

func (l *loop) publish(t testing.TB, evs ...schemas.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		if err := l.pub.PublishAsync(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func stamp[E schemas.Event](ev E, at time.Time) E {
	schemas.Stamp(ev, schemas.Source{Worker: "test", Host: "test"}, at)
	return ev
}

func sent(customer, provider string, at time.Time) *schemas.DeliveryAttempted {
	return stamp(&schemas.DeliveryAttempted{
		OutgoingMessage: schemas.OutgoingMessage{Customer: customer, SourceIP: "192.0.2.10", Provider: provider, RecipientDomain: provider + ".test"},
		TrackingStatus:  schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mx", Recipient: "r@" + provider + ".test",
		Status: schemas.StatusSent, DelayMs: -1, DelayBeforeQmgrMs: -1, DelayInQmgrMs: -1, DelayConnSetupMs: -1, DelayTransmissionMs: -1,
	}, at)
}

func complaint(customer, provider string, at time.Time) *schemas.ComplaintReceived {
	return stamp(&schemas.ComplaintReceived{Customer: customer, SourceIP: "192.0.2.10", Provider: provider,
		TraceMethod: schemas.TraceTrackingHeader, Counted: true, Trusted: true, Trust: schemas.TrustOperatorDKIM, Format: "arf", ReceivedVia: schemas.ReceivedViaFile, FeedbackType: "abuse"}, at)
}

func traffic(customer string, n int, at time.Time) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = sent(customer, "yahoo", at)
	}
	return out
}

// ask sends one policy request the way Postfix does and returns the action.
func ask(t testing.TB, addr net.Addr, attrs map[string]string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	b.WriteString("request=smtpd_access_policy\nprotocol_state=RCPT\n")
	for k, v := range attrs {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	b.WriteString("\n")
	io.WriteString(c, b.String())
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("policy answer: %v", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "action=")
}

// decisionEvents reads every event in the DECISION stream.
func decisionEvents(t testing.TB, js jetstream.JetStream) []schemas.Event {
	t.Helper()
	return streamEvents(t, js, "DECISION")
}

// streamEvents reads every event in a stream.
func streamEvents(t testing.TB, js jetstream.JetStream, stream string) []schemas.Event {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
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
			continue
		}
		ev, err := schemas.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestEnforcementLoopCutoff(t *testing.T) {
	const ttl = 2 * time.Second
	l := startLoop(t, evaluatorConfig(ttl, schemas.ActionCutoff), "REJECT")
	now := time.Now()
	l.publish(t, traffic("cust-a", 200, now.Add(-time.Minute))...)
	l.publish(t, traffic("cust-b", 200, now.Add(-time.Minute))...)
	reqA := map[string]string{"sasl_username": "cust-a", "sender": "x@a.example", "recipient": "r@yahoo.com", "client_address": "192.0.2.99"}
	reqB := map[string]string{"sasl_username": "cust-b", "sender": "x@b.example", "recipient": "r@yahoo.com", "client_address": "192.0.2.99"}
	if got := ask(t, l.policy.Addr(), reqA); got != "DUNNO" {
		t.Fatalf("A before: %q", got)
	}
	// One complaint in 200 is 0.5 % (act at 0.3 %); B gets one in 1000... none.
	published := time.Now()
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	took := testwait.Eventually(t, 30*time.Second, "A refused", func() bool { return strings.HasPrefix(ask(t, l.policy.Addr(), reqA), "REJECT") })
	t.Logf("complaint to enforcement: %s", took)
	if got := ask(t, l.policy.Addr(), reqA); !strings.HasPrefix(got, "REJECT 5.7.1 ") {
		t.Errorf("A's answer %q: want REJECT with a 5.7.1 code", got)
	}
	if got := ask(t, l.policy.Addr(), reqB); got != "DUNNO" {
		t.Errorf("B's answer %q, want DUNNO", got)
	}
	rec, _, found, err := enforcement.Get(context.Background(), l.kv, enforcement.Customer("cust-a"), time.Now())
	if err != nil || !found {
		t.Fatalf("no decision in the bucket: %v", err)
	}
	if rec.Action != schemas.ActionCutoff || rec.Evidence.Complaints != 1 || rec.Evidence.Delivered != 200 || rec.Evidence.Threshold != 0.003 || len(rec.Evidence.SampleComplaintIDs) != 1 {
		t.Errorf("record %+v", rec)
	}
	// Released after the TTL: DUNNO again, a release event, a resolved notice.
	testwait.Eventually(t, ttl+5*time.Second, "A released", func() bool { return ask(t, l.policy.Addr(), reqA) == "DUNNO" })
	if held := time.Since(published); held < ttl {
		t.Errorf("released after %s, before the TTL %s", held, ttl)
	}
	testwait.Eventually(t, 30*time.Second, "release event", func() bool {
		for _, ev := range decisionEvents(t, l.js) {
			if r, ok := ev.(*schemas.DecisionRelease); ok && r.DecisionID == rec.DecisionID {
				return true
			}
		}
		return false
	})
	testwait.Eventually(t, 30*time.Second, "firing and resolved notices", func() bool {
		as := l.hook.alerts("customer:cust-a")
		return len(as) >= 2 && as[0].Status == schemas.AlertFiring && as[len(as)-1].Status == schemas.AlertResolved
	})
	as := l.hook.alerts("customer:cust-a")
	if as[0].DecisionID != rec.DecisionID || as[len(as)-1].DecisionID != rec.DecisionID {
		t.Errorf("notices not about the decision: %+v", as)
	}
	if len(l.hook.alerts("customer:cust-b")) != 0 {
		t.Error("B was notified about")
	}
	var kinds []string
	for _, ev := range decisionEvents(t, l.js) {
		kinds = append(kinds, ev.EventHeader().Type)
	}
	if strings.Join(kinds, ",") != schemas.TypeDecisionCutoff+","+schemas.TypeDecisionRelease {
		t.Errorf("decision stream holds %v, want one cut-off and its release", kinds)
	}
	if _, _, found, _ := enforcement.Get(context.Background(), l.kv, enforcement.Customer("cust-a"), time.Now()); found {
		t.Error("key still in the bucket after the release")
	}
}

func TestEnforcementLoopReroute(t *testing.T) {
	l := startLoop(t, evaluatorConfig(time.Hour, schemas.ActionReroute), "")
	l.publish(t, traffic("cust-a", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	req := map[string]string{"sasl_username": "cust-a", "recipient": "r@yahoo.com"}
	testwait.Eventually(t, 30*time.Second, "A rerouted", func() bool { return ask(t, l.policy.Addr(), req) == "FILTER ndr:" })
	if got := ask(t, l.policy.Addr(), map[string]string{"sasl_username": "cust-b"}); got != "DUNNO" {
		t.Errorf("B: %q", got)
	}
}

// A restart rebuilds the windows from the streams: events counted before
// it are neither lost nor counted twice, and a republished event (same id)
// counts once.
func TestRestartRebuildsWithoutDoubleCounting(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	cfg := evaluatorConfig(time.Hour, schemas.ActionCutoff)
	cfg.Customer.MinDelivered = 1000
	_, stop := startEvaluator(t, js, cfg)
	now := time.Now()
	l.publish(t, traffic("cust-a", 1000, now.Add(-time.Minute))...)
	first := complaint("cust-a", "yahoo", now)
	second := complaint("cust-a", "yahoo", now)
	l.publish(t, first, second) // 0.2 %: a warning only
	time.Sleep(300 * time.Millisecond)
	stop()
	if evs := decisionEvents(t, js); len(evs) != 0 {
		t.Fatalf("decided at 0.2 %%: %v", evs)
	}
	for range 2 {
		_, stop = startEvaluator(t, js, cfg)
		l.publish(t, first, second) // republished: the stream drops them
		time.Sleep(200 * time.Millisecond)
		stop()
		if evs := decisionEvents(t, js); len(evs) != 0 {
			t.Fatalf("a restart counted twice: %d decision events", len(evs))
		}
	}
	// A third complaint makes 0.3 %: exactly one decision, after two
	// restarts.
	startEvaluator(t, js, cfg)
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	testwait.Eventually(t, 30*time.Second, "decision", func() bool { return len(decisionEvents(t, js)) == 1 })
	c, ok := decisionEvents(t, js)[0].(*schemas.DecisionCutoff)
	if !ok || c.Complaints != 3 || c.Delivered != 1000 {
		t.Errorf("decision %+v", decisionEvents(t, js)[0])
	}
}

// A decision that expired while no evaluator ran is released at the next
// start, with the time it expired; the evidence is not judged again.
func TestReleaseAfterDowntime(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	cfg := evaluatorConfig(time.Second, schemas.ActionCutoff)
	_, stop := startEvaluator(t, js, cfg)
	l.publish(t, traffic("cust-a", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	testwait.Eventually(t, 30*time.Second, "decision", func() bool { return len(decisionEvents(t, js)) == 1 })
	stop()
	time.Sleep(1500 * time.Millisecond)
	startEvaluator(t, js, cfg)
	testwait.Eventually(t, 30*time.Second, "release", func() bool { return len(decisionEvents(t, js)) == 2 })
	evs := decisionEvents(t, js)
	c := evs[0].(*schemas.DecisionCutoff)
	r, ok := evs[1].(*schemas.DecisionRelease)
	if !ok || r.DecisionID != c.ID || !r.Time.Equal(c.Until) {
		t.Fatalf("release %+v for %+v", evs[1], c)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(decisionEvents(t, js)); n != 2 {
		t.Errorf("%d decision events after the restart, want 2 (no new decision on old evidence)", n)
	}
}

// Two copies with partitions: 2 split the subjects; each decision is made
// once.
func TestTwoCopiesSplitSubjects(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	for i := range 2 {
		cfg := evaluatorConfig(time.Hour, schemas.ActionCutoff)
		cfg.Partitions, cfg.Partition = 2, i
		startEvaluator(t, js, cfg)
	}
	const customers = 20
	now := time.Now()
	for i := range customers {
		l.publish(t, traffic(fmt.Sprintf("cust-%02d", i), 150, now.Add(-time.Minute))...)
	}
	for i := range customers {
		l.publish(t, complaint(fmt.Sprintf("cust-%02d", i), "yahoo", time.Now()))
	}
	testwait.Eventually(t, 10*time.Second, "decisions", func() bool { return len(decisionEvents(t, js)) >= customers })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, ev := range decisionEvents(t, js) {
		c := ev.(*schemas.DecisionCutoff)
		seen[c.Subject]++
		if c.Complaints != 1 || c.Delivered != 150 {
			t.Errorf("%s: %d/%d, counted twice?", c.Subject, c.Complaints, c.Delivered)
		}
	}
	if len(seen) != customers {
		t.Errorf("%d subjects decided, want %d", len(seen), customers)
	}
	for s, n := range seen {
		if n != 1 {
			t.Errorf("%s decided %d times", s, n)
		}
	}
	recs, err := enforcement.List(context.Background(), kv, time.Now())
	if err != nil || len(recs) != customers {
		t.Errorf("bucket holds %d records (%v), want %d", len(recs), err, customers)
	}
}

// A lift by hand (what `mailmon enforcement lift` does) ends the decision:
// the policy service answers DUNNO at once and a resolved notice goes out.
func TestLift(t *testing.T) {
	l := startLoop(t, evaluatorConfig(time.Hour, schemas.ActionCutoff), "")
	l.publish(t, traffic("cust-a", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, complaint("cust-a", "yahoo", time.Now()))
	req := map[string]string{"sasl_username": "cust-a"}
	testwait.Eventually(t, 30*time.Second, "A cut off", func() bool { return strings.HasPrefix(ask(t, l.policy.Addr(), req), "DEFER_IF_PERMIT 4.7.1") })
	ev, err := enforcement.Lift(context.Background(), l.kv, l.pub, enforcement.Customer("cust-a"), "ops", "false positive",
		schemas.Source{Worker: "mailmon-cli", Host: "test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Validate(&ev); err != nil {
		t.Error(err)
	}
	if got := ask(t, l.policy.Addr(), req); got != "DUNNO" {
		testwait.Eventually(t, time.Second, "DUNNO after lift", func() bool { return ask(t, l.policy.Addr(), req) == "DUNNO" })
	}
	testwait.Eventually(t, 30*time.Second, "resolved notice", func() bool {
		as := l.hook.alerts("customer:cust-a")
		return len(as) >= 2 && as[len(as)-1].Status == schemas.AlertResolved
	})
	if _, err := enforcement.Lift(context.Background(), l.kv, l.pub, enforcement.Customer("cust-a"), "ops", "", schemas.Source{Worker: "x", Host: "y"}, time.Now()); err == nil {
		t.Error("lifting twice succeeded")
	}
}
