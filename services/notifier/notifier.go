package notifier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/silence"
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
	state   store
	// silences holds back the firing alerts they match.
	silences *silence.Store
	// holder names this copy in its claims on scheduled reports.
	holder string

	// subjects serialises the flushes of one subject, so two groups about
	// one subject never judge the same fingerprints at once.
	subjects keyedMutex
	// flushCtx ends the flushes still running once Consume has drained.
	flushCtx context.Context
	flushes  sync.WaitGroup

	mu     sync.Mutex
	groups map[string]*group
}

// group is the alerts about one subject collected within group_wait.
type group struct {
	key     string
	members []*member
}

// member is one alert of a group and the handler waiting for it.
type member struct {
	alert *schemas.AlertRaised
	done  chan error
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
	n := &Notifier{cfg: cfg, set: s, log: s.Logger, metrics: m, now: s.Now, groups: map[string]*group{}, holder: lease.DefaultHolder()}
	client := &http.Client{Timeout: cfg.Timeout.Std()}
	for _, r := range cfg.Routes {
		n.senders = append(n.senders, &sender{route: r, client: client, now: s.Now})
	}
	return n, nil
}

// Run consumes mailmon.alert.> through the durable consumer `notifier`
// until ctx ends, then drains.
func (n *Notifier) Run(ctx context.Context) error {
	// A stop while starting (a restart right after a start) is a stop, not
	// a failure the process should exit non-zero for.
	kv, err := n.set.JetStream.KeyValue(ctx, Bucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("open bucket %s (apply the pipelines first): %w", Bucket, err)
	}
	n.state = store{kv: kv}
	if n.silences, err = silence.Open(ctx, n.set.JetStream); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer n.silences.Close()
	flushCtx, stopFlushes := context.WithCancel(context.WithoutCancel(ctx))
	n.flushCtx = flushCtx
	defer func() {
		stopFlushes()
		n.flushes.Wait()
	}()
	if len(n.cfg.Reports) > 0 {
		n.flushes.Go(func() { n.reportLoop(flushCtx, kv) })
	}
	backoff := make([]time.Duration, len(n.cfg.Redelivery))
	for i, d := range n.cfg.Redelivery {
		backoff[i] = d.Std()
	}
	return bus.Consume(ctx, n.set.JetStream, bus.ConsumeOptions{
		Worker:      WorkerName,
		Stream:      Stream,
		Durable:     WorkerName,
		Concurrency: n.cfg.Concurrency,
		// A notification can take attempts × (timeout + retry_max); the bus
		// keeps the waiting messages alive with in-progress signals. After
		// that the message comes back after the redelivery delays until
		// max_age gives it up.
		Backoff:   backoff,
		Publisher: n.set.Publisher,
		Logger:    n.log,
		Metrics:   n.set.Metrics,
	}, n.handle)
}

// handle takes one alert: it joins its subject's group and returns once
// the group was flushed: nil (ack) when every route that needed the
// alert took it and the state says so, an error (redelivered later) when a
// route failed, a permanent one (dead letter) once max_age is past.
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
	if len(n.senders) == 0 {
		n.metrics.alerts.WithLabelValues(outcomeUnrouted).Inc()
		return nil
	}
	done := n.join(a)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The flush goes on; the redelivered copy finds what it did.
		return ctx.Err()
	}
}

// join adds a to its subject's group, starting the group's timer if the
// group is new, and returns where a's result will come.
func (n *Notifier) join(a *schemas.AlertRaised) <-chan error {
	m := &member{alert: a, done: make(chan error, 1)}
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[a.Subject]
	if g == nil {
		g = &group{key: a.Subject}
		n.groups[a.Subject] = g
		n.flushes.Add(1)
		time.AfterFunc(n.cfg.GroupWait.Std(), func() {
			defer n.flushes.Done()
			n.flush(g)
		})
	}
	g.members = append(g.members, m)
	return m.done
}

// Outcomes of an alert, the label of mailmon_notifier_alerts_total.
const (
	outcomeNotified      = "notified"      // at least one route took it
	outcomeRepeat        = "repeat"        // no route needed it: unchanged, a duplicate or stale
	outcomeHeld          = "held"          // a resolution of a firing no route was told of
	outcomeUnrouted      = "unrouted"      // no route takes it
	outcomeTooOld        = "too_old"       // due on a route but older than max_age: dead letter
	outcomeUndeliverable = "undeliverable" // a route failed until max_age: dead letter
	outcomeRetry         = "retry"         // a route or the state failed: redelivered later
	outcomeSilenced      = "silenced"      // a firing an active silence holds back
)

// routeWork is what one route is sent in one flush, and its state after.
type routeWork struct {
	sender *sender
	alerts []*schemas.AlertRaised
	// after is the route's state per fingerprint once it took alerts
	// (and the held resolutions it keeps without a send).
	after map[string]routeState
	// sends is true when alerts is not empty.
	sends bool
}

// flush judges a group's alerts against each route's state, sends each
// route what is news to it, writes the state of the routes that took
// their notification, and answers every waiting handler.
func (n *Notifier) flush(g *group) {
	n.mu.Lock()
	if n.groups[g.key] == g {
		delete(n.groups, g.key)
	}
	n.mu.Unlock()
	unlock := n.subjects.lock(g.key)
	defer unlock()

	ctx, cancel := context.WithTimeout(n.flushCtx, time.Duration(n.cfg.Attempts)*(n.cfg.Timeout.Std()+n.cfg.RetryMax.Std())+time.Minute)
	defer cancel()

	// Oldest first, so a firing and its resolution in one group go out in
	// that order.
	members := slices.Clone(g.members)
	slices.SortStableFunc(members, func(a, b *member) int { return a.alert.Time.Compare(b.alert.Time) })

	results := make(map[*member]*result, len(members))
	records := map[string]*record{}
	for _, m := range members {
		results[m] = &result{}
		fp := fingerprintOf(m.alert)
		if _, ok := records[fp]; ok {
			continue
		}
		rec, err := n.state.load(ctx, fp)
		if err != nil {
			results[m].fail(err)
			continue
		}
		records[fp] = rec
	}

	now := n.now()
	for _, m := range members {
		n.holdIfSilenced(m.alert, results[m], now)
	}
	work := make([]*routeWork, len(n.senders))
	for i, s := range n.senders {
		w := &routeWork{sender: s, after: map[string]routeState{}}
		work[i] = w
		for _, m := range members {
			a, res := m.alert, results[m]
			if res.silenced {
				continue
			}
			fp := fingerprintOf(a)
			rec := records[fp]
			if rec == nil {
				continue // its state could not be read: retried
			}
			rs, ok := w.after[fp]
			if !ok {
				rs = rec.Routes[s.route.Name]
			}
			if !s.route.accepts(a, rs) {
				continue
			}
			res.routed = true
			after, send, reason := rs.next(a, now, n.cfg.RepeatInterval.Std())
			res.note(reason)
			if len(send) > 0 && now.Sub(send[0].Time) > n.cfg.MaxAge.Std() {
				// Due, but too old to page anyone about: a dead letter,
				// not a silent ack.
				res.tooOld(fmt.Errorf("route %s: the alert is older than max_age (%s) and was not sent", s.route.Name, n.cfg.MaxAge))
				n.metrics.undeliverable.WithLabelValues(s.route.Name).Inc()
				continue
			}
			w.after[fp] = after
			if len(send) > 0 {
				w.alerts = append(w.alerts, send...)
				w.sends = true
				res.routes = append(res.routes, s.route.Name)
			}
		}
	}

	for _, w := range work {
		if !w.sends {
			continue
		}
		err := n.deliver(ctx, w.sender, g.key, w.alerts)
		if err == nil {
			continue
		}
		w.after = nil // nothing of it is written
		late := n.now()
		for _, m := range members {
			if slices.Contains(results[m].routes, w.sender.route.Name) {
				if late.Sub(m.alert.Time) > n.cfg.MaxAge.Std() {
					n.metrics.undeliverable.WithLabelValues(w.sender.route.Name).Inc()
					results[m].undeliverable(fmt.Errorf("undeliverable within max_age (%s): %w", n.cfg.MaxAge, err))
				} else {
					results[m].fail(err)
				}
			}
		}
	}

	// Write the state of the routes that took their notification; then
	// answer. A crash between a send and this write repeats that send.
	dirty := map[string]bool{}
	for _, w := range work {
		for fp, rs := range w.after {
			rec := records[fp]
			if old, ok := rec.Routes[w.sender.route.Name]; ok && equalState(old, rs) {
				continue
			}
			rec.Routes[w.sender.route.Name] = rs
			dirty[fp] = true
		}
	}
	stateErr := map[string]error{}
	for fp := range dirty {
		if err := n.state.save(ctx, records[fp]); err != nil {
			stateErr[fp] = err
		}
	}
	for _, m := range members {
		res := results[m]
		if err := stateErr[fingerprintOf(m.alert)]; err != nil {
			res.fail(err)
		}
		n.metrics.alerts.WithLabelValues(res.outcome()).Inc()
		m.done <- res.err()
	}
}

// holdIfSilenced marks a firing alert that an active silence matches: it
// goes to no route. A resolution is never held back by a silence: it
// goes where its firing went, so no receiver keeps a firing alert that
// ended during maintenance (and one whose firing was silenced was told
// nothing, so is told nothing now).
func (n *Notifier) holdIfSilenced(a *schemas.AlertRaised, res *result, now time.Time) {
	if a.Status != schemas.AlertFiring {
		return
	}
	if sil, ok := n.silences.Silenced(a, now); ok {
		res.silenced = true
		n.log.Info("alert silenced", "silence", sil.ID, "rule", a.Rule, "subject", a.Subject, "alert", a.ID, "until", sil.EndsAt)
	}
}

// result gathers what happened to one alert in a flush.
type result struct {
	silenced  bool     // an active silence holds it back
	routed    bool     // some route takes it
	routes    []string // routes it was sent to
	reasons   []string
	transient []error
	permanent []error
	gaveUp    bool // a route failed until max_age
}

func (r *result) note(reason string)      { r.reasons = append(r.reasons, reason) }
func (r *result) fail(err error)          { r.transient = append(r.transient, err) }
func (r *result) tooOld(err error)        { r.permanent = append(r.permanent, err) }
func (r *result) undeliverable(err error) { r.permanent = append(r.permanent, err); r.gaveUp = true }

// err is the handler's answer: a retry while any route can still take the
// alert within max_age, a dead letter when the only failures are past it.
func (r *result) err() error {
	if len(r.transient) > 0 {
		return errors.Join(r.transient...)
	}
	if len(r.permanent) > 0 {
		return bus.Permanent(errors.Join(r.permanent...))
	}
	return nil
}

func (r *result) outcome() string {
	switch {
	case len(r.transient) > 0:
		return outcomeRetry
	case r.silenced:
		return outcomeSilenced
	case r.gaveUp:
		return outcomeUndeliverable
	case len(r.permanent) > 0:
		return outcomeTooOld
	case len(r.routes) > 0:
		return outcomeNotified
	case !r.routed:
		return outcomeUnrouted
	case slices.Contains(r.reasons, reasonHeld):
		return outcomeHeld
	}
	return outcomeRepeat
}

func equalState(a, b routeState) bool {
	return a.Status == b.Status && a.Severity == b.Severity && slices.Equal(a.Members, b.Members) &&
		a.NotifiedAt.Equal(b.NotifiedAt) && a.AlertID == b.AlertID && a.AlertTime.Equal(b.AlertTime) &&
		(a.Held == nil) == (b.Held == nil) && (a.Held == nil || a.Held.ID == b.Held.ID)
}

// deliver sends one notification to one route, with attempts spaced by
// exponential backoff.
func (n *Notifier) deliver(ctx context.Context, s *sender, key string, alerts []*schemas.AlertRaised) error {
	note := Notification{Receiver: s.route.Name, GroupKey: key, Status: schemas.AlertResolved, Alerts: alerts}
	for _, a := range alerts {
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
			return nil
		}
		n.metrics.sendErrors.WithLabelValues(s.route.Name).Inc()
		var status statusError
		if errors.As(err, &status) && (status.code == http.StatusUnauthorized || status.code == http.StatusForbidden) {
			n.metrics.authFailures.WithLabelValues(s.route.Name).Inc()
		}
		if attempt == n.cfg.Attempts {
			break
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("route %s: %w", s.route.Name, cmp.Or(context.Cause(ctx), err))
		}
		delay = min(delay*2, n.cfg.RetryMax.Std())
	}
	var status statusError
	if errors.As(err, &status) && status.code >= 400 && status.code < 500 && status.code != http.StatusTooManyRequests {
		// A 4xx will not go away by itself (a revoked token, a deleted
		// webhook): loud, though it is retried like a 5xx until max_age.
		n.log.Error("route refuses notifications; retrying until max_age", "route", s.route.Name, "status", status.code, "subject", key)
	} else {
		n.log.Warn("route unreachable; the alerts will be retried", "route", s.route.Name, "subject", key, "error", err)
	}
	return fmt.Errorf("route %s: %w", s.route.Name, err)
}

// keyedMutex is a mutex per key, kept only while someone holds or waits
// for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

type metrics struct {
	alerts        *prometheus.CounterVec
	sent          *prometheus.CounterVec
	sendErrors    *prometheus.CounterVec
	sendSeconds   *prometheus.HistogramVec
	undeliverable *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	reports       *prometheus.CounterVec
	reportErrors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "notifier"
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "alerts_total", Help: "Alerts handled, by outcome (notified, repeat, held, silenced, unrouted, too_old, undeliverable, retry, invalid)."}, []string{"outcome"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "notifications_sent_total", Help: "Notifications a route accepted, by route and status."}, []string{"route", "status"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "send_errors_total", Help: "Failed sends (each attempt), by route."}, []string{"route"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "send_seconds", Help: "Time of one send attempt, by route.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"route"}),
		undeliverable: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "alerts_undeliverable_total", Help: "Alerts a route did not take within max_age of their time, dead-lettered, by route."}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "route_auth_failures_total", Help: "Send attempts a route refused with 401 or 403 (a credential to fix), by route."}, []string{"route"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "reports_sent_total", Help: "Scheduled reports a route's relay took, by route and period."}, []string{"route", "period"}),
		reportErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "report_errors_total", Help: "Scheduled reports that could not be built, sent or marked sent (retried every minute), by route and period."}, []string{"route", "period"}),
	}
	r := obs.NewRegistrar(reg)
	m.alerts = obs.Register(r, m.alerts)
	m.sent = obs.Register(r, m.sent)
	m.sendErrors = obs.Register(r, m.sendErrors)
	m.sendSeconds = obs.Register(r, m.sendSeconds)
	m.undeliverable = obs.Register(r, m.undeliverable)
	m.authFailures = obs.Register(r, m.authFailures)
	m.reports = obs.Register(r, m.reports)
	m.reportErrors = obs.Register(r, m.reportErrors)
	return m, r.Err()
}
