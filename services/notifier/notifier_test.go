package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// hook records what an HTTP endpoint received; fail makes the first
// requests fail with that status.
type hook struct {
	mu       sync.Mutex
	requests []received
	fail     []int
	srv      *httptest.Server
}

type received struct {
	path, auth string
	body       []byte
}

func newHook(t *testing.T, fail ...int) *hook {
	h := &hook{fail: fail}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.fail) > 0 {
			code := h.fail[0]
			h.fail = h.fail[1:]
			w.WriteHeader(code)
			return
		}
		h.requests = append(h.requests, received{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.requests...)
}

func (h *hook) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint got %d requests, want %d", len(h.got()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h.got()
}

type env struct {
	js      jetstream.JetStream
	pub     *bus.Publisher
	log     *bytes.Buffer
	logMu   *sync.Mutex
	metrics *prometheus.Registry
	stop    func()
}

// run starts a NATS server with the topology applied and a notifier on it.
func run(t *testing.T, cfg Config) *env {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return start(t, js, cfg, nil)
}

// start runs a notifier on js until the test ends or stop is called; now
// is its clock (nil: time.Now).
func start(t *testing.T, js jetstream.JetStream, cfg Config, now func() time.Time) *env {
	t.Helper()
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})
	reg := prometheus.NewRegistry()
	n, err := New(cfg, worker.Settings{Logger: logger, Metrics: reg, JetStream: js, Publisher: pub, Now: now,
		Source: schemas.Source{Worker: WorkerName, Host: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &env{js: js, pub: pub, log: &logBuf, logMu: &logMu, metrics: reg, stop: stop}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testConfig(routes ...Route) Config {
	cfg := DefaultConfig()
	cfg.GroupWait = config.Duration(150 * time.Millisecond)
	cfg.RetryMin = config.Duration(10 * time.Millisecond)
	cfg.RetryMax = config.Duration(50 * time.Millisecond)
	cfg.Redelivery = []config.Duration{config.Duration(20 * time.Millisecond)}
	cfg.Routes = routes
	return cfg
}

func alert(subject, rule, status, severity string) *schemas.AlertRaised {
	a := &schemas.AlertRaised{Rule: rule, Status: status, Severity: severity, Subject: subject,
		Summary: subject + " " + rule + " " + status, DedupeKey: rule + "/" + subject, Customer: strings.TrimPrefix(subject, "customer:")}
	schemas.Stamp(a, schemas.Source{Worker: "complaint-evaluator", Host: "test"}, time.Now())
	return a
}

func (e *env) publish(t *testing.T, alerts ...*schemas.AlertRaised) {
	t.Helper()
	for _, a := range alerts {
		if err := e.pub.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWebhookGroupsAndDedupes(t *testing.T) {
	h := newHook(t)
	e := run(t, testConfig(Route{Name: "abuse", Kind: KindWebhook, URL: config.Secret(h.srv.URL + "/hook"), Token: "s3cret"}))
	firing := alert("customer:acme", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical)
	warn := alert("customer:acme", "complaint_count", schemas.AlertFiring, schemas.AlertWarning)
	other := alert("customer:other", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical)
	e.publish(t, firing, warn, other)
	reqs := h.wait(t, 2)
	time.Sleep(300 * time.Millisecond)
	if got := len(h.got()); got != 2 {
		t.Fatalf("%d requests, want one per subject (2)", got)
	}
	bySubject := map[string]Notification{}
	for _, r := range reqs {
		if r.path != "/hook" || r.auth != "Bearer s3cret" {
			t.Errorf("request to %s with auth %q", r.path, r.auth)
		}
		var n Notification
		if err := json.Unmarshal(r.body, &n); err != nil {
			t.Fatal(err)
		}
		bySubject[n.GroupKey] = n
	}
	if n := bySubject["customer:acme"]; len(n.Alerts) != 2 || n.Status != schemas.AlertFiring || n.Receiver != "abuse" {
		t.Errorf("acme notification %+v", n)
	}
	// The same condition again (a new event id, same dedupe key and
	// status) is not repeated.
	e.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical))
	time.Sleep(400 * time.Millisecond)
	if got := len(h.got()); got != 2 {
		t.Fatalf("a repeated alert was sent again (%d requests)", got)
	}
	// Its resolution goes out.
	e.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertResolved, schemas.AlertCritical))
	reqs = h.wait(t, 3)
	var n Notification
	json.Unmarshal(reqs[2].body, &n)
	if n.Status != schemas.AlertResolved || len(n.Alerts) != 1 || n.Alerts[0].Status != schemas.AlertResolved {
		t.Errorf("resolved notification %+v", n)
	}
}

func TestSlackAndAlertmanagerPayloads(t *testing.T) {
	slack := newHook(t)
	am := newHook(t)
	e := run(t, testConfig(
		Route{Name: "slack", Kind: KindSlack, URL: config.Secret(slack.srv.URL + "/services/T000/B000/XXXX"), MinSeverity: "critical"},
		Route{Name: "am", Kind: KindAlertmanager, URL: config.Secret(am.srv.URL), Username: "mailmon", Password: "pw"},
	))
	e.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical),
		alert("customer:low", "complaint_rate", schemas.AlertFiring, schemas.AlertWarning))
	s := slack.wait(t, 1)
	var msg map[string]string
	if err := json.Unmarshal(s[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg["text"], "[FIRING] *customer:acme*") || strings.Contains(msg["text"], "customer:low") {
		t.Errorf("slack text %q", msg["text"])
	}
	a := am.wait(t, 2)
	for _, r := range a {
		if r.path != "/api/v2/alerts" || !strings.HasPrefix(r.auth, "Basic ") {
			t.Errorf("alertmanager request to %s auth %q", r.path, r.auth)
		}
		var alerts []amAlert
		if err := json.Unmarshal(r.body, &alerts); err != nil {
			t.Fatal(err)
		}
		if len(alerts) != 1 || alerts[0].Labels["alertname"] != "complaint_rate" || alerts[0].Labels["source"] != "mailmon" || alerts[0].EndsAt != nil {
			t.Errorf("alertmanager alerts %+v", alerts)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if got := len(slack.got()); got != 1 {
		t.Errorf("slack got %d requests; the warning is below its min_severity", got)
	}
	e.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertResolved, schemas.AlertCritical))
	a = am.wait(t, 3)
	var alerts []amAlert
	json.Unmarshal(a[2].body, &alerts)
	if len(alerts) != 1 || alerts[0].EndsAt == nil || alerts[0].Labels["dedupe_key"] != "complaint_rate/customer:acme" {
		t.Errorf("resolved alertmanager alert %+v", alerts)
	}
}

func TestRetriesWithBackoffAndKeepsSecrets(t *testing.T) {
	h := newHook(t, 500, 503) // two failures, then success
	e := run(t, testConfig(Route{Name: "flaky", Kind: KindWebhook, URL: config.Secret(h.srv.URL + "/hook?token=url-secret")}))
	e.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical))
	h.wait(t, 1)

	// A route that is down: the alert goes back to JetStream; the log
	// never shows the URL, which holds a credential.
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL + "/hook?token=url-secret"
	down.Close()
	e2 := run(t, testConfig(Route{Name: "down", Kind: KindWebhook, URL: config.Secret(url)}))
	e2.publish(t, alert("customer:acme", "complaint_rate", schemas.AlertFiring, schemas.AlertCritical))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e2.logString(), "route unreachable") {
		if time.Now().After(deadline) {
			t.Fatalf("no unreachable log line; log:\n%s", e2.logString())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(e2.logString(), "url-secret") {
		t.Errorf("the log shows the route URL:\n%s", e2.logString())
	}
}

func (e *env) logString() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.log.String()
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routes = []Route{
		{Name: "a", Kind: "pager", URL: "ftp://x"},
		{Name: "a", Kind: KindSlack, URL: "https://hooks.example/x", MinSeverity: "loud", Token: "t", Username: "u"},
	}
	cfg.Redelivery = []config.Duration{config.Duration(time.Second), 0}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no problems")
	}
	for _, want := range []string{"routes[0].kind", "routes[0].url", "routes[1].name", "routes[1].min_severity", "routes[1].token", "routes[1].password", "redelivery[1]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems do not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hooks.example") {
		t.Errorf("problems quote a URL: %v", err)
	}
}
