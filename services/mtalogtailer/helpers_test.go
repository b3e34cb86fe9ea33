package mtalogtailer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/mtalogtailer"
)

// testKeyring signs the tracking headers of the generated logs.
var testKeyring = tracking.Keyring{Current: tracking.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}

// startBus runs an embedded NATS server with the whole topology applied.
func startBus(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return js
}

func workerSettings(js jetstream.JetStream) worker.Settings {
	return worker.Settings{
		Logger:    slog.New(slog.DiscardHandler),
		JetStream: js,
		Source:    schemas.Source{Worker: mtalogtailer.WorkerName, Host: "test-host"},
	}
}

// testConfig polls, commits and gives up on rotated files quickly.
func testConfig(paths ...string) mtalogtailer.Config {
	cfg := mtalogtailer.DefaultConfig()
	cfg.Files = nil
	for _, p := range paths {
		cfg.Files = append(cfg.Files, mtalogtailer.FileConfig{Path: p, Format: "postfix", RotatedGlobs: []string{p + ".[0-9]*"}})
	}
	cfg.PollInterval = config.Duration(10 * time.Millisecond)
	cfg.RotateGrace = config.Duration(100 * time.Millisecond)
	cfg.CommitInterval = config.Duration(50 * time.Millisecond)
	cfg.CommitLines = 200
	cfg.RetryInterval = config.Duration(100 * time.Millisecond)
	cfg.TimeZone = "UTC"
	return cfg
}

type tailerRun struct {
	tailer *mtalogtailer.Tailer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startTailer builds a tailer and runs it until the test ends or stop.
func startTailer(t *testing.T, js jetstream.JetStream, cfg mtalogtailer.Config, tune ...func(*mtalogtailer.Tailer)) *tailerRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	ring := testKeyring
	tl, err := mtalogtailer.New(cfg, worker.Settings{
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Metrics:   reg,
		JetStream: js,
		Source:    schemas.Source{Worker: mtalogtailer.WorkerName, Host: "test-host"},
		Tracking:  worker.Tracking{Keyring: &ring},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tune {
		f(tl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &tailerRun{tailer: tl, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tl.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the run and waits for Run to return.
func (r *tailerRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		r.done <- nil // a second stop returns at once
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}

// counter sums a counter family of the run's registry.
func (r *tailerRun) counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// testWriter sends the worker's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// streamEvents reads every delivery event stored in the DELIVERY stream.
func streamEvents(t *testing.T, js jetstream.JetStream) []*schemas.DeliveryAttempted {
	t.Helper()
	return readStream(t, js, "DELIVERY", func(data []byte) *schemas.DeliveryAttempted {
		ev, err := schemas.Decode(data)
		if err != nil {
			t.Fatalf("stored event does not decode: %v", err)
		}
		if err := schemas.Validate(ev); err != nil {
			t.Fatalf("stored event is invalid: %v", err)
		}
		return ev.(*schemas.DeliveryAttempted)
	})
}

func readStream[T any](t *testing.T, js jetstream.JetStream, name string, decode func([]byte) T) []T {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, decode(m.Data))
	}
	return out
}

// streamCount is the number of messages in a stream.
func streamCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// logWriter appends generated Postfix lines to a log file, the way
// syslog does: one write per line, the file reopened when rotated.
type logWriter struct {
	t    *testing.T
	path string
	mu   sync.Mutex
	f    *os.File
	base time.Time
	n    int // messages written
}

func newLogWriter(t *testing.T, path string) *logWriter {
	w := &logWriter{t: t, path: path, base: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	w.reopen()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *logWriter) reopen() {
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *logWriter) line(at time.Time, program string, pid int, msg string) {
	if _, err := fmt.Fprintf(w.f, "%s mx1 %s[%d]: %s\n", at.Format("2006-01-02T15:04:05.000000-07:00"), program, pid, msg); err != nil {
		w.t.Fatal(err)
	}
}

// outcome is what a generated delivery attempt ends in.
type outcome struct {
	domain, relay, dsn, status, reply string
	code                              int
}

// outcomes cycle over the generated messages: a sent one to Gmail, a Yahoo
// rate deferral, an Outlook unknown user, a Spamhaus block.
var outcomes = []outcome{
	{"gmail.com", "gmail-smtp-in.l.google.com[142.250.1.27]:25", "2.0.0", "sent", "250 2.0.0 OK 1709287200 a1si123 - gsmtp", 250},
	{"yahoo.com", "mta7.am0.yahoodns.net[67.195.204.72]:25", "4.7.0", "deferred",
		"host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)", 421},
	{"outlook.com", "outlook-com.olc.protection.outlook.com[52.101.8.44]:25", "5.1.1", "bounced",
		"host outlook-com.olc.protection.outlook.com[52.101.8.44] said: 550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). (in reply to RCPT TO command)", 550},
	{"example.net", "mx.example.net[203.0.113.5]:25", "5.7.1", "bounced",
		"host mx.example.net[203.0.113.5] said: 554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.9 (in reply to RCPT TO command)", 554},
}

// message writes the lines of one message with a signed tracking header
// and one delivery attempt, and returns its recipient.
func (w *logWriter) message() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := w.n
	w.n++
	at := w.base.Add(time.Duration(i) * 10 * time.Millisecond)
	qid := fmt.Sprintf("%010X", 0x3A00000000+i)
	o := outcomes[i%len(outcomes)]
	rcpt := fmt.Sprintf("user%d@%s", i, o.domain)
	header, err := testKeyring.Sign(tracking.Fields{Customer: "acme", Source: "pool-a", MessageID: fmt.Sprintf("m-%d", i), Time: at})
	if err != nil {
		w.t.Fatal(err)
	}
	w.line(at, "postfix-192.0.2.9/smtpd", 100, qid+": client=app1.example[198.51.100.21]")
	w.line(at, "postfix-192.0.2.9/cleanup", 101, fmt.Sprintf("%s: message-id=<m-%d@app1.example>", qid, i))
	w.line(at, "postfix-192.0.2.9/cleanup", 101, fmt.Sprintf("%s: warning: header X-Mailmon-Track: %s from app1.example[198.51.100.21]; from=<news@shop.example> to=<%s> proto=ESMTP helo=<app1.example>", qid, header, rcpt))
	w.line(at, "postfix-192.0.2.9/qmgr", 102, qid+": from=<news@shop.example>, size=4321, nrcpt=1 (queue active)")
	w.line(at.Add(1200*time.Millisecond), "postfix-192.0.2.9/smtp", 103, fmt.Sprintf(
		"%s: to=<%s>, relay=%s, delay=1.2, delays=0.1/0.02/0.5/0.58, dsn=%s, status=%s (%s)", qid, rcpt, o.relay, o.dsn, o.status, o.reply))
	if o.status != "deferred" {
		w.line(at.Add(1200*time.Millisecond), "postfix-192.0.2.9/qmgr", 102, qid+": removed")
	}
	return rcpt
}

// rotateRename renames the log away (shifting the numbered ones) and
// reopens a new one, as logrotate with a postrotate reload does.
func (w *logWriter) rotateRename(keep int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shift(keep)
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.t.Fatal(err)
	}
	w.reopen()
}

// rotateCopyTruncate copies the log to .1 and truncates it in place, as
// logrotate's copytruncate does; the writer keeps its descriptor.
func (w *logWriter) rotateCopyTruncate(keep int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shift(keep)
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(w.path+".1", data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Truncate(w.path, 0); err != nil {
		w.t.Fatal(err)
	}
}

func (w *logWriter) shift(keep int) {
	for i := keep; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", w.path, i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", w.path, i+1)); err != nil {
				w.t.Fatal(err)
			}
		}
	}
}

// countByID fails the test unless every recipient in want has exactly one
// event and there are no others.
func countByID(t *testing.T, events []*schemas.DeliveryAttempted, want []string) {
	t.Helper()
	byID := map[string]int{}
	byRcpt := map[string]int{}
	for _, ev := range events {
		byID[ev.ID]++
		byRcpt[ev.Recipient]++
	}
	for id, n := range byID {
		if n != 1 {
			t.Errorf("event id %s stored %d times", id, n)
		}
	}
	for _, r := range want {
		if byRcpt[r] != 1 {
			t.Errorf("recipient %s has %d events, want 1", r, byRcpt[r])
		}
	}
	if len(events) != len(want) {
		t.Errorf("%d events stored, want %d", len(events), len(want))
	}
}
