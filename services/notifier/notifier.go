package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the notifier's subcommand, log name and durable consumer.
const WorkerName = "notifier"

// Stream is the stream the notifier reads.
const Stream = "ALERT"

// Notifier is the notifier worker.
type Notifier struct {
	cfg     Config
	set     worker.Settings
	log     *slog.Logger
	metrics *metrics
	senders []*sender
	now     func() time.Time

	mu     sync.Mutex
	groups map[string]*group
	// sent: dedupe key → the status last sent and when.
	sent map[string]sentMark
	// delivered: alert id → routes it reached, so a notification retried
	// after a partial failure does not repeat it where it arrived.
	delivered map[string]map[string]bool
	lastPrune time.Time
}

type sentMark struct {
	status string
	at     time.Time
}

type group struct {
	key    string
	alerts []*schemas.AlertRaised
	done   chan struct{}
	err    error
}

// New checks the configuration and builds the worker.
func New(cfg Config, s worker.Settings) (*Notifier, error) {
	var check config.Check
	check.Nest("notifier", cfg.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	n := &Notifier{cfg: cfg, set: s, log: s.Logger, metrics: m, now: s.Now,
		groups: map[string]*group{}, sent: map[string]sentMark{}, delivered: map[string]map[string]bool{}}
	client := &http.Client{Timeout: cfg.Timeout.Std()}
	for _, r := range cfg.Routes {
		n.senders = append(n.senders, &sender{route: r, client: client, now: s.Now})
	}
	return n, nil
}

// Run consumes mailmon.alert.> through the durable consumer `notifier`
// until ctx ends, then drains.
func (n *Notifier) Run(ctx context.Context) error {
	return bus.Consume(ctx, n.set.JetStream, bus.ConsumeOptions{
		Worker:      WorkerName,
		Stream:      Stream,
		Durable:     WorkerName,
		Concurrency: n.cfg.Concurrency,
		// A notification can take attempts × (timeout + retry_max); the bus
		// keeps the waiting messages alive with in-progress signals.
		Backoff:   []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute},
		Publisher: n.set.Publisher,
		Logger:    n.log,
		Metrics:   n.set.Metrics,
	}, n.handle)
}

// handle takes one alert: it is dropped if too old or already sent,
// otherwise it joins its subject's group and returns once the group was
// delivered (nil: ack) or failed (error: redelivered later).
func (n *Notifier) handle(ctx context.Context, m *bus.Msg) error {
	ev, err := schemas.Decode(m.Data)
	if err == nil {
		err = schemas.Validate(ev)
	}
	if err != nil {
		n.metrics.alerts.WithLabelValues("invalid").Inc()
		return bus.Permanent(err)
	}
	a, ok := ev.(*schemas.AlertRaised)
	if !ok {
		n.metrics.alerts.WithLabelValues("invalid").Inc()
		return bus.Permanent(fmt.Errorf("%s is not an alert", ev.EventHeader().Type))
	}
	g := n.join(a)
	if g == nil {
		return nil
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// join adds a to its group, starting the group's timer if it is new; nil
// means a is dropped (too old or a repeat).
func (n *Notifier) join(a *schemas.AlertRaised) *group {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.prune(now)
	if now.Sub(a.Time) > n.cfg.MaxAge.Std() {
		n.metrics.alerts.WithLabelValues("too_old").Inc()
		return nil
	}
	if last, ok := n.sent[a.DedupeKey]; ok && last.status == a.Status && now.Sub(last.at) < n.cfg.RepeatInterval.Std() {
		n.metrics.alerts.WithLabelValues("repeat").Inc()
		return nil
	}
	g := n.groups[a.Subject]
	if g == nil {
		g = &group{key: a.Subject, done: make(chan struct{})}
		n.groups[a.Subject] = g
		time.AfterFunc(n.cfg.GroupWait.Std(), func() { n.flush(g) })
	}
	for _, b := range g.alerts {
		if b.ID == a.ID {
			return g // the same alert delivered twice while grouping
		}
		if b.DedupeKey == a.DedupeKey && b.Status == a.Status {
			n.metrics.alerts.WithLabelValues("repeat").Inc()
			return g
		}
	}
	// A firing alert and its resolution may share a group: both go out,
	// in order, and the notification's status is firing.
	g.alerts = append(g.alerts, a)
	n.metrics.alerts.WithLabelValues("accepted").Inc()
	return g
}

// flush sends a group to every route.
func (n *Notifier) flush(g *group) {
	n.mu.Lock()
	if n.groups[g.key] == g {
		delete(n.groups, g.key)
	}
	alerts := g.alerts
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n.cfg.Attempts)*(n.cfg.Timeout.Std()+n.cfg.RetryMax.Std()))
	defer cancel()
	var errs []error
	for _, s := range n.senders {
		if err := n.deliver(ctx, s, g.key, alerts); err != nil {
			errs = append(errs, err)
		}
	}
	g.err = errors.Join(errs...)
	if g.err == nil {
		n.mu.Lock()
		now := n.now()
		for _, a := range alerts {
			n.sent[a.DedupeKey] = sentMark{status: a.Status, at: now}
		}
		n.mu.Unlock()
	}
	close(g.done)
}

// deliver sends to one route the alerts it takes and has not received,
// with retries.
func (n *Notifier) deliver(ctx context.Context, s *sender, key string, alerts []*schemas.AlertRaised) error {
	var todo []*schemas.AlertRaised
	n.mu.Lock()
	for _, a := range alerts {
		if s.route.accepts(a) && !n.delivered[a.ID][s.route.Name] {
			todo = append(todo, a)
		}
	}
	n.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	note := Notification{Receiver: s.route.Name, GroupKey: key, Status: schemas.AlertResolved, Alerts: todo}
	for _, a := range todo {
		if a.Status != schemas.AlertResolved {
			note.Status = schemas.AlertFiring
		}
	}
	delay := n.cfg.RetryMin.Std()
	var err error
	for attempt := 1; attempt <= n.cfg.Attempts; attempt++ {
		start := time.Now()
		err = s.send(ctx, note)
		n.metrics.sendSeconds.WithLabelValues(s.route.Name).Observe(time.Since(start).Seconds())
		if err == nil {
			n.metrics.sent.WithLabelValues(s.route.Name, note.Status).Inc()
			n.mu.Lock()
			for _, a := range todo {
				if n.delivered[a.ID] == nil {
					n.delivered[a.ID] = map[string]bool{}
				}
				n.delivered[a.ID][s.route.Name] = true
			}
			n.mu.Unlock()
			return nil
		}
		n.metrics.sendErrors.WithLabelValues(s.route.Name).Inc()
		var perm permanentError
		if errors.As(err, &perm) {
			// Retrying cannot help (a bad URL or a 4xx): log and give up
			// on this route for these alerts, rather than hold them forever.
			n.log.Error("route refused the notification; dropped for this route", "route", s.route.Name, "subject", key, "error", err)
			return nil
		}
		if attempt == n.cfg.Attempts {
			break
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("route %s: %w", s.route.Name, ctx.Err())
		}
		delay = min(delay*2, n.cfg.RetryMax.Std())
	}
	n.log.Warn("route unreachable; the alerts will be retried", "route", s.route.Name, "subject", key, "error", err)
	return fmt.Errorf("route %s: %w", s.route.Name, err)
}

// prune forgets dedupe marks and delivery records older than the repeat
// interval.
func (n *Notifier) prune(now time.Time) {
	if now.Sub(n.lastPrune) < time.Minute {
		return
	}
	n.lastPrune = now
	keep := n.cfg.RepeatInterval.Std()
	for k, m := range n.sent {
		if now.Sub(m.at) > keep {
			delete(n.sent, k)
		}
	}
	if len(n.delivered) > 100_000 {
		clear(n.delivered)
	}
}

type metrics struct {
	alerts      *prometheus.CounterVec
	sent        *prometheus.CounterVec
	sendErrors  *prometheus.CounterVec
	sendSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "notifier"
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "alerts_total", Help: "Alerts consumed, by outcome (accepted, repeat, too_old, invalid)."}, []string{"outcome"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "notifications_sent_total", Help: "Notifications a route accepted, by route and status."}, []string{"route", "status"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "send_errors_total", Help: "Failed sends (each attempt), by route."}, []string{"route"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "send_seconds", Help: "Time of one send attempt, by route.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"route"}),
	}
	r := obs.NewRegistrar(reg)
	m.alerts = obs.Register(r, m.alerts)
	m.sent = obs.Register(r, m.sent)
	m.sendErrors = obs.Register(r, m.sendErrors)
	m.sendSeconds = obs.Register(r, m.sendSeconds)
	return m, r.Err()
}
