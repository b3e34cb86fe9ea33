package notifier

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// at builds an alert at a given time, with evidence given as name, value
// pairs.
func at(t0 time.Time, rule, subject, status, severity string, ev ...string) *schemas.AlertRaised {
	a := &schemas.AlertRaised{Rule: rule, Status: status, Severity: severity, Subject: subject,
		Summary: subject + " " + rule + " " + status, DedupeKey: rule + "/" + subject}
	for i := 0; i+1 < len(ev); i += 2 {
		a.EvidenceNames = append(a.EvidenceNames, ev[i])
		a.EvidenceValues = append(a.EvidenceValues, ev[i+1])
	}
	schemas.Stamp(a, schemas.Source{Worker: "complaint-evaluator", Host: "test"}, t0)
	return a
}

// burst is a rejection burst at one provider as the evaluator raises it:
// the provider is in the dedupe key and the evidence.
func burst(t0 time.Time, provider string) *schemas.AlertRaised {
	a := at(t0, "rejection_burst", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "provider", provider)
	a.DedupeKey += "/" + provider
	return a
}

func TestFingerprintAndMembers(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name        string
		alert       *schemas.AlertRaised
		fingerprint string
		members     []string
	}{
		{"rule and dedupe key", at(t0, "complaint_rate", "customer:acme", "firing", "warning"), "complaint_rate|complaint_rate/customer:acme", nil},
		{"the subject when there is no dedupe key", func() *schemas.AlertRaised {
			a := at(t0, "complaint_rate", "customer:acme", "firing", "warning")
			a.DedupeKey = ""
			return a
		}(), "complaint_rate|customer:acme", nil},
		{"the zones of a listing are members", at(t0, "blocklist", "ip:192.0.2.1", "firing", "critical", "zones", "b.example,a.example", "zone", "c.example"),
			"blocklist|blocklist/ip:192.0.2.1", []string{"zone:a.example", "zone:b.example", "zone:c.example"}},
		{"a rejection burst's dedupe key names its provider", burst(t0, "gmail"),
			"rejection_burst|rejection_burst/ip:192.0.2.1/gmail", nil},
		{"a provider already in the dedupe key is not repeated", func() *schemas.AlertRaised {
			a := at(t0, "probe_missing_provider", "ip:192.0.2.1", "firing", "warning")
			a.Provider, a.DedupeKey = "gmail", "probe_missing_provider/ip:192.0.2.1/provider:gmail"
			return a
		}(), "probe_missing_provider|probe_missing_provider/ip:192.0.2.1/provider:gmail", nil},
		{"listed providers are members", at(t0, "probe_missing", "ip:192.0.2.1", "firing", "warning", "providers", "yahoo, gmail,,gmail"),
			"probe_missing|probe_missing/ip:192.0.2.1", []string{"provider:gmail", "provider:yahoo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fingerprintOf(tt.alert); got != tt.fingerprint {
				t.Errorf("fingerprint %q, want %q", got, tt.fingerprint)
			}
			if got := membersOf(tt.alert); !slices.Equal(got, tt.members) {
				t.Errorf("members %q, want %q", got, tt.members)
			}
		})
	}
	many := make([]string, 2*maxMembers)
	for i := range many {
		many[i] = strings.Repeat("p", i+1)
	}
	if got := membersOf(at(t0, "probe_missing", "ip:192.0.2.1", "firing", "warning", "providers", strings.Join(many, ","))); len(got) != maxMembers {
		t.Errorf("%d members kept, want at most %d", len(got), maxMembers)
	}
}

// Each step judges one alert against what the route was told so far; the
// state carries from step to step only when the alert was sent.
func TestLifecycle(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const repeat = 4 * time.Hour
	type step struct {
		alert  *schemas.AlertRaised
		now    time.Duration // after t0
		reason string
		sent   int
	}
	f := func(min int, severity string, ev ...string) *schemas.AlertRaised {
		return at(t0.Add(time.Duration(min)*time.Minute), "probe_missing", "ip:192.0.2.1", schemas.AlertFiring, severity, ev...)
	}
	r := func(min int) *schemas.AlertRaised {
		return at(t0.Add(time.Duration(min)*time.Minute), "probe_missing", "ip:192.0.2.1", schemas.AlertResolved, schemas.AlertWarning)
	}
	first := f(0, "warning", "providers", "gmail")
	tests := map[string][]step{
		"first firing, unchanged, repeat after repeat_interval, resolved": {
			{first, 0, reasonFirst, 1},
			{f(1, "warning", "providers", "gmail"), time.Minute, reasonUnchanged, 0},
			{first, 2 * time.Minute, reasonDuplicate, 0},
			{f(2, "warning", "providers", "gmail"), repeat, reasonRepeat, 1},
			{r(300), 5 * time.Hour, reasonResolved, 1},
			{r(301), 5 * time.Hour, reasonHeld, 0},
			{f(302, "warning", "providers", "gmail"), 5 * time.Hour, reasonFirst, 1},
		},
		"severity up and down": {
			{first, 0, reasonFirst, 1},
			{f(1, "critical", "providers", "gmail"), time.Minute, reasonSeverity, 1},
			{f(2, "critical", "providers", "gmail"), 2 * time.Minute, reasonUnchanged, 0},
			{f(3, "warning", "providers", "gmail"), 3 * time.Minute, reasonSeverity, 1},
		},
		"a new member is news, one that leaves and comes back is not": {
			{first, 0, reasonFirst, 1},
			{f(1, "warning", "providers", "gmail,yahoo"), time.Minute, reasonMember, 1},
			{f(2, "warning", "providers", "yahoo"), 2 * time.Minute, reasonUnchanged, 0},
			{f(3, "warning", "providers", "gmail,yahoo"), 3 * time.Minute, reasonUnchanged, 0},
			{f(4, "warning", "providers", "outlook"), 4 * time.Minute, reasonMember, 1},
		},
		"a resolution of nothing notified is held, and goes out with its late firing": {
			{r(10), 10 * time.Minute, reasonHeld, 0},
			{r(9), 10 * time.Minute, reasonStale, 0},
			{f(5, "warning"), 11 * time.Minute, reasonLate, 2},
			{f(6, "warning"), 12 * time.Minute, reasonStale, 0},
			{f(11, "warning"), 13 * time.Minute, reasonFirst, 1},
		},
		"a firing after a held resolution drops it": {
			{r(10), 10 * time.Minute, reasonHeld, 0},
			{f(11, "warning"), 11 * time.Minute, reasonFirst, 1},
			{r(12), 12 * time.Minute, reasonResolved, 1},
		},
		"a resolution older than the last firing is stale": {
			{first, 0, reasonFirst, 1},
			{f(10, "critical"), 10 * time.Minute, reasonSeverity, 1},
			{r(5), 11 * time.Minute, reasonStale, 0},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			var rs routeState
			for i, s := range steps {
				after, sent, reason := rs.next(s.alert, t0.Add(s.now), repeat)
				if reason != s.reason || len(sent) != s.sent {
					t.Fatalf("step %d (%s %s at +%s): reason %s, %d sent; want %s, %d", i, s.alert.Status, s.alert.Severity,
						s.alert.Time.Sub(t0), reason, len(sent), s.reason, s.sent)
				}
				if s.sent > 0 || reason == reasonHeld {
					rs = after
				}
			}
		})
	}
}

func TestRouteAllowLists(t *testing.T) {
	t0 := time.Now()
	mk := func(status, severity, customer, provider string, ev ...string) *schemas.AlertRaised {
		a := at(t0, "complaint_rate", "customer:"+customer, status, severity, ev...)
		a.Customer, a.Provider = customer, provider
		return a
	}
	firing := routeState{Status: schemas.AlertFiring}
	tests := []struct {
		name  string
		route Route
		alert *schemas.AlertRaised
		state routeState
		want  bool
	}{
		{"empty lists take all", Route{}, mk("firing", "info", "acme", ""), routeState{}, true},
		{"rule listed", Route{Rules: []string{"complaint_rate"}}, mk("firing", "info", "acme", ""), routeState{}, true},
		{"rule not listed", Route{Rules: []string{"blocklist"}}, mk("firing", "critical", "acme", ""), routeState{}, false},
		{"customer listed", Route{Customers: []string{"acme", "beta"}}, mk("firing", "info", "beta", ""), routeState{}, true},
		{"customer not listed", Route{Customers: []string{"acme"}}, mk("firing", "info", "beta", ""), routeState{}, false},
		{"no customer on a customer route", Route{Customers: []string{"acme"}}, mk("firing", "info", "", ""), routeState{}, false},
		{"provider listed", Route{Providers: []string{"gmail"}}, mk("firing", "info", "acme", "gmail"), routeState{}, true},
		{"provider evidence", Route{Providers: []string{"gmail"}}, mk("firing", "info", "acme", "", "provider", "gmail"), routeState{}, true},
		{"provider among members", Route{Providers: []string{"yahoo"}}, mk("firing", "info", "acme", "", "providers", "gmail,yahoo"), routeState{}, true},
		{"provider not listed", Route{Providers: []string{"yahoo"}}, mk("firing", "info", "acme", "gmail"), routeState{}, false},
		{"below min_severity", Route{MinSeverity: "critical"}, mk("firing", "warning", "acme", ""), routeState{}, false},
		{"at min_severity", Route{MinSeverity: "warning"}, mk("firing", "warning", "acme", ""), routeState{}, true},
		{"a downgrade of a firing the route was told of", Route{MinSeverity: "critical"}, mk("firing", "warning", "acme", ""), firing, true},
		{"a resolution is not held back by severity", Route{MinSeverity: "critical"}, mk("resolved", "info", "acme", ""), firing, true},
		{"every list must match", Route{Rules: []string{"complaint_rate"}, Customers: []string{"acme"}, Providers: []string{"gmail"}},
			mk("firing", "info", "acme", "yahoo"), routeState{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.route.accepts(tt.alert, tt.state); got != tt.want {
				t.Errorf("accepts = %v, want %v", got, tt.want)
			}
		})
	}
}

// receiver is an in-process webhook that counts the alerts it took, by
// id; while down says so, it answers with failStatus (and calls onFail).
type receiver struct {
	mu         sync.Mutex
	byID       map[string]int
	statuses   []string
	requests   int
	failStatus int
	down       func() bool
	onFail     func()
	srv        *httptest.Server
}

func newReceiver(t *testing.T, failStatus int, down func() bool, onFail func()) *receiver {
	r := &receiver{byID: map[string]int{}, failStatus: failStatus, down: down, onFail: onFail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.down != nil && r.down() {
			if r.onFail != nil {
				r.onFail()
			}
			w.WriteHeader(r.failStatus)
			return
		}
		var n Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("receiver: %v", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		for _, a := range n.Alerts {
			r.byID[a.ID]++
			r.statuses = append(r.statuses, a.Status+"/"+a.Severity)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.byID {
		n += c
	}
	return n
}

func (r *receiver) times(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// testClock is the notifier's clock in tests: it moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return js
}

// settle waits until the notifier has nothing unacknowledged left, so a
// count taken after it is final.
func settle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	testwait.Eventually(t, 20*time.Second, "the notifier consumer to have nothing pending", func() bool {
		c, err := js.Consumer(context.Background(), Stream, WorkerName)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// Escalation and a new member are news on a real notifier; repeats of an
// unchanged condition are not.
func TestEscalationAndNewMembersNotify(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, 0, nil, nil)
	e := start(t, js, testConfig(Route{Name: "ops", Kind: KindWebhook, URL: config.Secret(rcv.srv.URL)}), nil)
	steps := []struct {
		alert *schemas.AlertRaised
		total int
	}{
		{at(time.Now(), "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertWarning), 1},
		{at(time.Now(), "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertWarning), 1},
		{at(time.Now(), "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertCritical), 2},
		{at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zone", "a.example"), 3},
		{at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zone", "a.example"), 3},
		{at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zone", "b.example"), 4},
		{at(time.Now(), "probe_missing", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertWarning, "providers", "gmail"), 5},
		{at(time.Now(), "probe_missing", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertWarning, "providers", "gmail,yahoo"), 6},
		{burst(time.Now(), "gmail"), 7},
		{burst(time.Now(), "yahoo"), 8},
		// A zone delisting the IP while another still lists it is no news;
		// the last one is.
		{at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zones", "b.example"), 8},
		{at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertResolved, schemas.AlertCritical), 9},
		{at(time.Now(), "complaint_rate", "customer:never", schemas.AlertResolved, schemas.AlertCritical), 9},
	}
	for i, s := range steps {
		e.publish(t, s.alert)
		settle(t, js)
		if got := rcv.count(); got != s.total {
			t.Fatalf("after step %d (%s %s %s): %d alerts delivered, want %d", i, s.alert.Rule, s.alert.Status, s.alert.Severity, got, s.total)
		}
	}
	if got := counter(t, e.metrics, "mailmon_notifier_alerts_total", "outcome", outcomeHeld); got != 1 {
		t.Errorf("held resolutions counted %v, want 1", got)
	}
}

// A restarted notifier — a new Notifier on the same bucket — neither
// repeats what the first one sent nor forgets what it must resolve.
func TestRestartNeitherRepeatsNorForgets(t *testing.T) {
	js := startJetStream(t)
	rcv := newReceiver(t, 0, nil, nil)
	cfg := testConfig(Route{Name: "ops", Kind: KindWebhook, URL: config.Secret(rcv.srv.URL)})
	first := start(t, js, cfg, nil)
	firing := at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zone", "a.example")
	first.publish(t, firing)
	settle(t, js)
	first.stop()

	second := start(t, js, cfg, nil)
	again := at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertFiring, schemas.AlertCritical, "zone", "a.example")
	second.publish(t, again)
	settle(t, js)
	if got := rcv.count(); got != 1 {
		t.Fatalf("after the restart %d alerts delivered, want 1 (the repeat is not news)", got)
	}
	resolved := at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertResolved, schemas.AlertCritical, "zone", "a.example")
	second.publish(t, resolved)
	settle(t, js)
	second.stop()

	third := start(t, js, cfg, nil)
	third.publish(t, at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertResolved, schemas.AlertCritical, "zone", "a.example"))
	settle(t, js)
	if got, want := rcv.count(), 2; got != want || rcv.times(firing.ID) != 1 || rcv.times(resolved.ID) != 1 {
		t.Errorf("%d alerts delivered (firing %d times, resolved %d times), want %d: one firing, one resolved",
			got, rcv.times(firing.ID), rcv.times(resolved.ID), want)
	}
}

// A webhook down for two hours of the notifier's clock loses nothing: each
// failed request moves the clock five minutes; once two hours passed the
// receiver recovers, and every alert arrives exactly once, on the route
// that was down and on the one that was not.
func TestWebhookDownTwoHoursLosesNothing(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t0 := time.Now().UTC()
			clock := &testClock{now: t0}
			outageEnds := t0.Add(2 * time.Hour)
			var refused atomic.Int64
			down := newReceiver(t, status, func() bool { return clock.Now().Before(outageEnds) }, func() {
				refused.Add(1)
				clock.Advance(5 * time.Minute)
			})
			began := time.Now()
			up := newReceiver(t, 0, nil, nil)
			js := startJetStream(t)
			cfg := testConfig(
				Route{Name: "pager", Kind: KindWebhook, URL: config.Secret(down.srv.URL + "/hook?token=url-secret")},
				Route{Name: "chat", Kind: KindSlack, URL: config.Secret(up.srv.URL)})
			cfg.Attempts = 2
			cfg.Redelivery = []config.Duration{config.Duration(20 * time.Millisecond)}
			e := start(t, js, cfg, clock.Now)
			var alerts []*schemas.AlertRaised
			for _, subject := range []string{"customer:a", "customer:b", "customer:c", "ip:192.0.2.1", "ip:192.0.2.2"} {
				alerts = append(alerts, at(t0, "complaint_rate", subject, schemas.AlertFiring, schemas.AlertCritical))
			}
			e.publish(t, alerts...)
			testwait.Eventually(t, 60*time.Second, "every alert on the recovered route", func() bool { return down.count() >= len(alerts) })
			settle(t, js)
			if clock.Now().Before(outageEnds) {
				t.Fatalf("the clock moved only %s", clock.Now().Sub(t0))
			}
			t.Logf("an outage of %s on the notifier's clock: %d refused requests, %s of real time", clock.Now().Sub(t0), refused.Load(), time.Since(began).Round(time.Millisecond))
			for _, a := range alerts {
				if down.times(a.ID) != 1 {
					t.Errorf("%s reached the route that was down %d times, want 1", a.Subject, down.times(a.ID))
				}
			}
			if got := up.requests; got != len(alerts) {
				t.Errorf("the route that stayed up got %d notifications, want %d (one per alert, no repeats)", got, len(alerts))
			}
			if got := counter(t, e.metrics, "mailmon_notifier_alerts_undeliverable_total"); got != 0 {
				t.Errorf("%v alerts undeliverable", got)
			}
			auth := counter(t, e.metrics, "mailmon_notifier_route_auth_failures_total", "route", "pager")
			if (status == http.StatusUnauthorized) != (auth > 0) {
				t.Errorf("status %d: %v auth failures counted", status, auth)
			}
			log := e.logString()
			if status != http.StatusServiceUnavailable && !strings.Contains(log, "level=ERROR msg=\"route refuses notifications") {
				t.Errorf("no error-level log for status %d:\n%s", status, log)
			}
			if !strings.Contains(log, "route=pager") || strings.Contains(log, "url-secret") {
				t.Errorf("the log does not name the route, or shows its URL:\n%s", log)
			}
		})
	}
}

// A route that never recovers: once max_age has passed since the alert's
// time, the alert is dead-lettered with the reason and counted, never
// acked in silence; an alert already too old is dead-lettered unsent.
func TestUndeliverableAfterMaxAgeIsDeadLettered(t *testing.T) {
	t0 := time.Now().UTC()
	clock := &testClock{now: t0}
	down := newReceiver(t, http.StatusBadGateway, func() bool { return true }, func() { clock.Advance(time.Hour) })
	js := startJetStream(t)
	cfg := testConfig(Route{Name: "pager", Kind: KindWebhook, URL: config.Secret(down.srv.URL)})
	cfg.Attempts = 1
	e := start(t, js, cfg, clock.Now)
	lost := at(t0, "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertCritical)
	old := at(t0.Add(-48*time.Hour), "complaint_rate", "customer:old", schemas.AlertFiring, schemas.AlertCritical)
	e.publish(t, lost, old)
	dead := deadLetters(t, js, 2)
	settle(t, js)
	reasons := map[string]string{}
	for _, m := range dead {
		reasons[m.Headers().Get(bus.HeaderDeadLetterMsgID)] = m.Headers().Get(bus.HeaderDeadLetterReason)
	}
	if r := reasons[lost.ID]; !strings.Contains(r, "undeliverable within max_age (1d): route pager: http status 502") {
		t.Errorf("dead letter reason of the undeliverable alert: %q (all: %v)", r, reasons)
	}
	if r := reasons[old.ID]; !strings.Contains(r, "older than max_age") {
		t.Errorf("dead letter reason of the old alert: %q", r)
	}
	if got := counter(t, e.metrics, "mailmon_notifier_alerts_undeliverable_total", "route", "pager"); got != 2 {
		t.Errorf("undeliverable counted %v, want 2", got)
	}
	if got := clock.Now().Sub(t0); got < 24*time.Hour || got > 27*time.Hour {
		t.Errorf("given up after %s of the notifier's clock, want just past max_age (24h)", got)
	}
}

func deadLetters(t *testing.T, js jetstream.JetStream, n int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mailmon.dlq." + WorkerName}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		m, err := c.Next(jetstream.FetchMaxWait(60 * time.Second))
		if err != nil {
			t.Fatalf("%d dead letters, want %d: %v", len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// A firing alert that an active silence matches is not notified, but
// counted and logged; once the silence ended the condition is news again.
func TestSilencedAlertsAreCountedNotNotified(t *testing.T) {
	t0 := time.Now().UTC()
	clock := &testClock{now: t0}
	js := startJetStream(t)
	silences, err := silence.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	defer silences.Close()
	matcher, err := silence.ParseMatcher("subject=customer:acme")
	if err != nil {
		t.Fatal(err)
	}
	sil, err := silences.Add(context.Background(), silence.Silence{Matchers: []silence.Matcher{matcher}, EndsAt: t0.Add(2 * time.Hour),
		Comment: "relay maintenance", CreatedBy: "test"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t, 0, nil, nil)
	e := start(t, js, testConfig(Route{Name: "ops", Kind: KindWebhook, URL: config.Secret(rcv.srv.URL)}), clock.Now)

	muted := at(t0, "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertCritical)
	other := at(t0, "complaint_rate", "customer:other", schemas.AlertFiring, schemas.AlertCritical)
	e.publish(t, muted, other)
	settle(t, js)
	if rcv.times(muted.ID) != 0 || rcv.times(other.ID) != 1 {
		t.Fatalf("silenced alert delivered %d times, the other %d; want 0 and 1", rcv.times(muted.ID), rcv.times(other.ID))
	}
	if got := counter(t, e.metrics, "mailmon_notifier_alerts_total", "outcome", outcomeSilenced); got != 1 {
		t.Errorf("silenced counted %v, want 1", got)
	}
	if log := e.logString(); !strings.Contains(log, "alert silenced") || !strings.Contains(log, sil.ID) {
		t.Errorf("no log line naming the silence:\n%s", log)
	}

	clock.Advance(2*time.Hour + time.Second)
	after := at(clock.Now(), "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertCritical)
	e.publish(t, after)
	settle(t, js)
	if rcv.times(after.ID) != 1 {
		t.Errorf("after the silence ended the firing was delivered %d times, want 1", rcv.times(after.ID))
	}
}

// The state keeps one held resolution per route: its copy is bounded
// whatever the alert carried, so an entry stays far below a KV value's
// limit.
func TestHeldResolutionIsBounded(t *testing.T) {
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = schemas.NewID()
	}
	big := at(time.Now(), "blocklist", "ip:192.0.2.1", schemas.AlertResolved, schemas.AlertCritical,
		"txt", strings.Repeat("é", 100_000), "zones", strings.Repeat("z,", 50_000))
	big.EventIDs = ids
	big.Summary = strings.Repeat("s", 100_000)
	after, _, reason := routeState{}.next(big, time.Now(), time.Hour)
	if reason != reasonHeld {
		t.Fatalf("reason %s, want %s", reason, reasonHeld)
	}
	data, err := json.Marshal(after)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 16<<10 {
		t.Errorf("held resolution takes %d bytes of state", len(data))
	}
	if after.Held.ID != big.ID || !utf8.ValidString(evidence(after.Held, "txt")) {
		t.Errorf("held copy lost its id or cut a rune")
	}
}

// Two providers' rejection bursts are two conditions: Alertmanager gets
// each with its provider label, so it does not merge them into one alert
// that the first resolution would close.
func TestAlertmanagerLabelsKeepProvidersApart(t *testing.T) {
	gmail, yahoo := burst(time.Now(), "gmail"), burst(time.Now(), "yahoo")
	got := alertmanagerAlerts(Notification{Alerts: []*schemas.AlertRaised{gmail, yahoo}})
	if got[0].Labels["provider"] != "gmail" || got[1].Labels["provider"] != "yahoo" {
		t.Errorf("labels %v and %v", got[0].Labels, got[1].Labels)
	}
}

// A notifier stopped while one route is down and another took the alert:
// the next notifier delivers it once to the route that was down and not
// again to the one that took it.
func TestRestartDuringAnOutageDeliversOnce(t *testing.T) {
	var mu sync.Mutex
	isDown, failed := true, 0
	down := newReceiver(t, http.StatusBadGateway, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return isDown
	}, func() {
		mu.Lock()
		defer mu.Unlock()
		failed++
	})
	up := newReceiver(t, 0, nil, nil)
	js := startJetStream(t)
	cfg := testConfig(Route{Name: "pager", Kind: KindWebhook, URL: config.Secret(down.srv.URL)},
		Route{Name: "ops", Kind: KindWebhook, URL: config.Secret(up.srv.URL)})
	first := start(t, js, cfg, nil)
	a := at(time.Now(), "complaint_rate", "customer:acme", schemas.AlertFiring, schemas.AlertCritical)
	first.publish(t, a)
	testwait.Eventually(t, 20*time.Second, "a failed request and the other route's delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed > 0 && up.times(a.ID) == 1
	})
	first.stop()

	mu.Lock()
	isDown = false
	mu.Unlock()
	start(t, js, cfg, nil)
	settle(t, js)
	if down.times(a.ID) != 1 || up.times(a.ID) != 1 {
		t.Errorf("after the restart: %d deliveries to the route that was down, %d to the one that was up; want 1 and 1", down.times(a.ID), up.times(a.ID))
	}
}
