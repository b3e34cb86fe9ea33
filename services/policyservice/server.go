package policyservice

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/provider"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the policy service's subcommand and log name.
const WorkerName = "policy-service"

// RuleStateUnavailable is the rule of the alert raised when the service
// fails open, or enforces a stale copy of the decisions.
const RuleStateUnavailable = "policy_state_unavailable"

// RuleInvalidRecord is the rule of the alert raised once per revision of
// an enforcement record the service refuses to answer.
const RuleInvalidRecord = "policy_invalid_record"

// Server is the policy-service worker.
type Server struct {
	// silences marks the alerts raised during a silence; empty until
	// they are read (see readSilences).
	silences atomic.Pointer[silence.Store]
	cfg      Config
	set      worker.Settings
	log      *slog.Logger
	metrics  *metrics
	state    *State
	now      func() time.Time
	prefixes []prefixCustomer
	domains  map[string]string // recipient domain → provider

	addrMu sync.Mutex
	addr   net.Addr
	ready  chan struct{}
	// serving is true while the accept loop runs: readiness says no as
	// soon as connections would only queue.
	serving atomic.Bool

	// alerts tracks the alert publishes in flight; alertCtx ends them when
	// Serve returns.
	alerts   sync.WaitGroup
	alertCtx context.Context

	alertMu   sync.Mutex
	lastAlert time.Time
	condition stateCondition
	// conditionNow mirrors condition for the lock-free check on every
	// answer.
	conditionNow atomic.Int32

	// invalidMu guards invalid: the revision last counted and alerted of
	// every key whose current record is refused.
	invalidMu sync.Mutex
	invalid   map[string]uint64

	// snapshotDirty is signalled after every change of the state.
	snapshotDirty chan struct{}

	// supp is the suppression list the service enforces.
	supp *suppressing
}

// stateCondition is what the state alert says.
type stateCondition int32

const (
	conditionOK       stateCondition = iota
	conditionFailOpen                // answering DUNNO for lack of state
	conditionStale                   // enforcing a stale copy (on_stale: enforce_unexpired)
)

type prefixCustomer struct {
	p        netip.Prefix
	customer string
}

// New checks the configuration and builds the worker; nothing listens
// until Run.
func New(cfg Config, s worker.Settings) (*Server, error) {
	var check config.Check
	check.Nest("policy_service", cfg.Validate())
	if _, err := suppressAnswer(cfg.Suppression.RejectCode, cfg.Suppression.RejectText); err != nil {
		check.Addf("suppression.reject_text", "%v", err)
	}
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
	supp, err := newSuppressing(cfg.Suppression, s.Metrics)
	if err != nil {
		return nil, err
	}
	srv := &Server{cfg: cfg, set: s, log: s.Logger, metrics: m, now: s.Now, domains: map[string]string{},
		ready: make(chan struct{}), alertCtx: context.Background(), invalid: map[string]uint64{},
		snapshotDirty: make(chan struct{}, 1), supp: supp}
	for cidr, customer := range cfg.Customers.ClientAddresses {
		p, _ := parsePrefix(cidr)
		srv.prefixes = append(srv.prefixes, prefixCustomer{p, customer})
	}
	// Most specific prefix first.
	slices.SortFunc(srv.prefixes, func(a, b prefixCustomer) int { return b.p.Bits() - a.p.Bits() })
	// The shared table names providers as the MTA log tailer and the FBL
	// ingester do, so a customer × provider decision meets the same name
	// here; configured domains add to it or override it.
	srv.domains = provider.Domains()
	for name, domains := range cfg.Providers {
		for _, d := range domains {
			srv.domains[provider.Normalize(d)] = name
		}
	}
	connected := func() bool { return true }
	if nc := s.JetStream.Conn(); nc != nil {
		connected = nc.IsConnected
	}
	srv.state = newState(connected, func() time.Time { return srv.now() }, srv.log)
	srv.state.read = srv.readRecord
	srv.state.deleted = srv.recordDeleted
	srv.state.updates = func() {
		m.decisions.Set(float64(srv.state.Len()))
		select {
		case srv.snapshotDirty <- struct{}{}:
		default:
		}
	}
	return srv, nil
}

// Addr is the address the server listens on, once Ready.
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// State is the server's copy of the decisions.
func (s *Server) State() *State { return s.state }

// Run listens and answers Postfix until ctx ends. It starts answering at
// once: from the snapshot if there is one, else DUNNO until the decisions
// are loaded (at most answer_timeout per request).
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened; it closes ln. It returns
// when ctx ends (nil) or when ln fails (the error), in both cases after
// every goroutine it started has ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	var connMu sync.Mutex
	defer func() {
		// Stop everything first, then wait: waiting before the cancel
		// would wait for goroutines that only end on it.
		s.serving.Store(false)
		cancel()
		ln.Close()
		connMu.Lock()
		for c := range conns {
			c.Close()
		}
		connMu.Unlock()
		wg.Wait()
		s.alerts.Wait()
	}()
	s.alertCtx = ctx
	wg.Go(func() { s.readSilences(ctx) })
	// Accept returns when ctx ends because the listener is closed then.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	if path := s.cfg.snapshotPath(); path != "" {
		s.loadSnapshot(path)
	}
	if path := s.cfg.suppressionSnapshotPath(); path != "" {
		s.loadSuppressionSnapshot(path)
	}
	wg.Go(func() { s.watchBucket(ctx) })
	wg.Go(func() { s.watchSuppression(ctx) })
	if path := s.cfg.snapshotPath(); path != "" {
		wg.Go(func() { s.keepSnapshot(ctx, path) })
	}
	if path := s.cfg.suppressionSnapshotPath(); path != "" {
		wg.Go(func() { s.keepSuppressionSnapshot(ctx, path) })
	}
	s.set.Health.Register(WorkerName, s.readiness)
	s.log.Info("policy service listening", "addr", ln.Addr().String())
	s.serving.Store(true)
	close(s.ready)

	slots := make(chan struct{}, s.cfg.MaxConnections)
	retry := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if transientAcceptError(err) {
				// Out of file descriptors or a connection reset before it
				// was accepted: wait a little, as net/http does.
				s.log.Warn("accept failed; retrying", "error", err, "retry_in", retry)
				select {
				case <-time.After(retry):
				case <-ctx.Done():
					return nil
				}
				retry = min(retry*2, time.Second)
				continue
			}
			s.log.Error("accept failed; the policy service stops", "error", err)
			return fmt.Errorf("accept: %w", err)
		}
		retry = 5 * time.Millisecond
		select {
		case slots <- struct{}{}:
		default:
			s.metrics.refused.Inc()
			c.Close()
			continue
		}
		connMu.Lock()
		conns[c] = struct{}{}
		connMu.Unlock()
		s.metrics.connections.Inc()
		wg.Go(func() {
			defer func() {
				connMu.Lock()
				delete(conns, c)
				connMu.Unlock()
				c.Close()
				s.metrics.connections.Dec()
				<-slots
			}()
			s.serveConn(ctx, c)
		})
	}
}

// transientAcceptError reports whether Accept may succeed if tried again.
func transientAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// watchBucket finds the bucket, retrying with backoff while NATS or the
// bucket is not there, then keeps the state by watching it.
func (s *Server) watchBucket(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		kv, err := s.set.JetStream.KeyValue(ctx, enforcement.Bucket)
		if err == nil {
			s.state.Run(ctx, kv)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("enforcement bucket unavailable; answering from the last known decisions or DUNNO", "error", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// readiness is the service's check on /readyz: ready only while it
// accepts connections and answers from the live bucket.
func (s *Server) readiness(context.Context) error {
	if !s.serving.Load() {
		return errors.New("not accepting connections")
	}
	switch mode := s.state.Mode(s.now(), s.cfg.StaleAfter.Std()); mode {
	case ModeLive:
		return nil
	case ModeEmpty:
		return errors.New("enforcement decisions not loaded (failing open)")
	default:
		what := "the last known decisions"
		if mode == ModeStale && s.cfg.OnStale == OnStaleFailOpen {
			what = "DUNNO (failing open)"
		}
		return fmt.Errorf("no live watch of the enforcement bucket since %s; answering %s", s.state.Since().UTC().Format(time.RFC3339), what)
	}
}

// loadSnapshot starts the state from the snapshot file, if there is a
// usable one.
func (s *Server) loadSnapshot(path string) {
	snap, err := readSnapshot(path, s.cfg.SnapshotMaxBytes.Int64())
	if err != nil {
		s.metrics.snapshotErrors.Inc()
		s.log.Error("enforcement snapshot unusable; starting without it", "path", path, "error", err)
		return
	}
	if snap == nil {
		s.log.Info("no enforcement snapshot yet", "path", path)
		return
	}
	s.state.loadSnapshot(snap.Records)
	s.log.Info("enforcement snapshot loaded; answering from it until the bucket is watched", "path", path,
		"records", s.state.Len(), "written_at", snap.WrittenAt)
}

// keepSnapshot rewrites the snapshot after every change of the live
// state. Changes that come while it writes are folded into the next
// write.
func (s *Server) keepSnapshot(ctx context.Context, path string) {
	for {
		select {
		case <-s.snapshotDirty:
		case <-ctx.Done():
			return
		}
		entries, live := s.state.entries()
		if !live {
			continue // never write the snapshot back from itself
		}
		data, err := encodeSnapshot(entries, s.now(), s.cfg.SnapshotMaxBytes.Int64())
		if err == nil {
			err = writeSnapshot(path, data)
		}
		if err != nil {
			s.metrics.snapshotErrors.Inc()
			s.log.Error("could not write the enforcement snapshot; the previous one stays", "path", path, "error", err)
			continue
		}
		s.metrics.snapshotWrites.Inc()
	}
}

// readRecord decodes and checks one bucket value. A value that may not be
// answered is counted and alerted once per revision, and nil is returned:
// its subject is answered as if it had no record.
func (s *Server) readRecord(key string, revision uint64, value []byte) *entry {
	e, err := s.checkRecord(key, revision, value)
	if err == nil {
		s.recordDeleted(key) // a valid revision resolves an earlier refusal
		return e
	}
	s.invalidMu.Lock()
	last, seen := s.invalid[key]
	s.invalid[key] = revision
	s.invalidMu.Unlock()
	if seen && last == revision {
		return nil // the same revision again (a reloaded watch, the snapshot)
	}
	s.metrics.invalidRecords.Inc()
	summary := truncateString(fmt.Sprintf("policy service ignores enforcement record %s (revision %d): %v; its subject is answered DUNNO",
		safeKey(key), revision, err), 400)
	s.log.Error("enforcement record refused", "key", safeKey(key), "revision", revision, "error", err)
	s.publishAlert(&schemas.AlertRaised{Rule: RuleInvalidRecord, Status: schemas.AlertFiring, Severity: schemas.AlertCritical,
		Subject: "enforcement_key:" + safeKey(key), Summary: summary, DedupeKey: RuleInvalidRecord + "/" + safeKey(key)})
	return nil
}

// recordDeleted resolves the alert of a refused record once its key is
// deleted or holds a valid record.
func (s *Server) recordDeleted(key string) {
	s.invalidMu.Lock()
	_, was := s.invalid[key]
	delete(s.invalid, key)
	s.invalidMu.Unlock()
	if was {
		s.publishAlert(&schemas.AlertRaised{Rule: RuleInvalidRecord, Status: schemas.AlertResolved, Severity: schemas.AlertCritical,
			Subject: "enforcement_key:" + safeKey(key), Summary: "enforcement record " + safeKey(key) + " replaced or removed",
			DedupeKey: RuleInvalidRecord + "/" + safeKey(key)})
	}
}

// checkRecord is the whole check of one bucket value.
func (s *Server) checkRecord(key string, revision uint64, value []byte) (*entry, error) {
	r, err := enforcement.Unmarshal(value)
	if err != nil {
		return nil, err
	}
	if want := r.SubjectOf().Key(); key != want {
		return nil, fmt.Errorf("stored under a key that is not its subject's (%s)", safeKey(want))
	}
	answer, err := s.cfg.answerFor(r)
	if err != nil {
		return nil, err
	}
	return &entry{key: key, revision: revision, value: value, rec: r, answer: answer}, nil
}

// safeKey returns a KV key as is when it has only the characters KV keys
// may hold, else quoted.
func safeKey(key string) string {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/' || c == '=' || c == '.') || i >= 200 {
			return quoteShort(key)
		}
	}
	return key
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	r := bufio.NewReaderSize(c, 4096)
	lim := Limits{MaxAttributes: s.cfg.MaxAttributes, MaxLineBytes: s.cfg.MaxLineBytes}
	for ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout.Std()))
		req, err := ReadRequest(r, lim)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				s.metrics.protocolErrors.Inc()
				s.log.Warn("policy protocol error; closing the connection", "remote", c.RemoteAddr().String(), "error", err)
			}
			return
		}
		start := time.Now()
		action := s.Decide(ctx, req)
		c.SetWriteDeadline(time.Now().Add(s.cfg.AnswerTimeout.Std() + time.Second))
		if _, err := c.Write(Answer(action)); err != nil {
			return
		}
		s.metrics.answerSeconds.Observe(time.Since(start).Seconds())
	}
}

// Decide answers one request. It never blocks longer than answer_timeout.
// A cut-off comes first, then a suppressed recipient, then a reroute.
func (s *Server) Decide(ctx context.Context, req Request) string {
	if req["request"] != "smtpd_access_policy" {
		s.metrics.answers.WithLabelValues("DUNNO").Inc()
		return "DUNNO"
	}
	now := s.now()
	staleAfter := s.cfg.StaleAfter.Std()
	mode := s.state.Mode(now, staleAfter)
	if mode == ModeEmpty {
		// Nothing loaded yet (start-up without a snapshot): wait a bounded
		// time for the bucket, then fail open.
		t := time.NewTimer(s.cfg.AnswerTimeout.Std())
		select {
		case <-s.state.Synced():
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		now = s.now()
		mode = s.state.Mode(now, staleAfter)
	}
	failOpen := mode == ModeEmpty || mode == ModeStale && s.cfg.OnStale == OnStaleFailOpen
	switch {
	case failOpen:
		s.stateAlert(conditionFailOpen)
	case mode == ModeStale:
		s.stateAlert(conditionStale)
	default:
		s.stateAlert(conditionOK)
	}
	customers := s.customers(req)
	var e *entry
	if !failOpen {
		e, _ = s.match(req, customers, now)
	}
	switch {
	case e != nil && e.rec.Action == schemas.ActionCutoff:
	case s.suppressed(req, customers, now):
		// The list is enforced whatever the decisions' state: its entries
		// are facts about recipients, each with its own expiry.
		s.supp.metrics.rejects.Inc()
		s.metrics.answers.WithLabelValues("REJECT").Inc()
		return s.supp.answer
	case e == nil:
		if failOpen {
			s.metrics.failOpen.Inc()
		}
		s.metrics.answers.WithLabelValues("DUNNO").Inc()
		return "DUNNO"
	}
	action, _, _ := strings.Cut(e.answer, " ")
	s.metrics.answers.WithLabelValues(action).Inc()
	return e.answer
}

// customers lists the customers a request is sent for, as the customers
// section says to tell them: by SMTP AUTH name, envelope sender domain,
// client address.
func (s *Server) customers(req Request) []string {
	var customers []string
	add := func(c string) {
		if c != "" && !slices.Contains(customers, c) {
			customers = append(customers, c)
		}
	}
	id := s.cfg.Customers
	if u := req["sasl_username"]; u != "" {
		if c, ok := id.SASLUsernames[u]; ok {
			add(c)
		} else if id.SASLUsername {
			add(u)
		}
	}
	if d := senderDomain(req["sender"]); d != "" {
		if c, ok := id.SenderDomains[d]; ok {
			add(c)
		} else if id.SenderDomain {
			add(d)
		}
	}
	if a, err := netip.ParseAddr(req["client_address"]); err == nil && len(s.prefixes) > 0 {
		a = a.Unmap()
		for _, p := range s.prefixes {
			if p.p.Contains(a) {
				add(p.customer)
				break
			}
		}
	}
	return customers
}

// Subjects lists the subjects a request may be enforced under.
func (s *Server) Subjects(req Request) []string { return s.subjects(req, s.customers(req)) }

func (s *Server) subjects(req Request, customers []string) []string {
	provider := s.provider(senderDomain(req["recipient"]))
	var out []string
	for _, c := range customers {
		out = append(out, enforcement.Customer(c).String())
		if provider != "" {
			out = append(out, enforcement.CustomerProvider(c, provider).String())
		}
	}
	for _, attr := range s.cfg.IPAttributes {
		if ip := req[attr]; ip != "" {
			out = append(out, enforcement.SourceIP(ip).String())
		}
	}
	return out
}

// match finds the strongest decision in force for the request: a cut-off
// before a reroute.
func (s *Server) match(req Request, customers []string, now time.Time) (*entry, bool) {
	var best *entry
	for _, subj := range s.subjects(req, customers) {
		e, ok := s.state.lookup(subj, now)
		if !ok {
			continue
		}
		if best == nil || (e.rec.Action == schemas.ActionCutoff && best.rec.Action != schemas.ActionCutoff) {
			best = e
		}
	}
	return best, best != nil
}

func senderDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
}

// provider maps a recipient domain (or a parent of it) to its provider.
func (s *Server) provider(domain string) string { return provider.Match(s.domains, domain) }

// stateAlert raises an alert when the service starts failing open or
// enforcing a stale copy (again at most once per alert_interval while it
// lasts) and resolves it when the state is live again. Publishing happens
// in the background: an answer never waits for it.
func (s *Server) stateAlert(cond stateCondition) {
	if cond == conditionOK && stateCondition(s.conditionNow.Load()) == conditionOK {
		return
	}
	s.alertMu.Lock()
	now := s.now()
	send := false
	switch {
	case cond != conditionOK && (cond != s.condition || now.Sub(s.lastAlert) >= s.cfg.AlertInterval.Std()):
		send = true
		s.lastAlert = now
	case cond == conditionOK && s.condition != conditionOK:
		send = true
	}
	s.condition = cond
	s.conditionNow.Store(int32(cond))
	s.alertMu.Unlock()
	if !send {
		return
	}
	status, severity := schemas.AlertFiring, schemas.AlertCritical
	var summary string
	switch cond {
	case conditionFailOpen:
		summary = "policy service failing open: enforcement decisions unavailable, every request answered DUNNO"
	case conditionStale:
		severity = schemas.AlertWarning
		summary = "policy service without a live watch of the enforcement bucket: enforcing the last known decisions until their own until"
	default:
		status, summary = schemas.AlertResolved, "policy service enforcing again: enforcement decisions available"
	}
	host := s.set.Source.Host
	s.log.Warn(summary)
	s.publishAlert(&schemas.AlertRaised{Rule: RuleStateUnavailable, Status: status, Severity: severity,
		Subject: "worker:" + WorkerName + "/" + host, Summary: summary, DedupeKey: RuleStateUnavailable + "/" + host})
}

// publishAlert stamps and publishes a in the background; Serve waits for
// it before it returns.
func (s *Server) publishAlert(a *schemas.AlertRaised) {
	if s.set.Publisher == nil {
		return
	}
	s.silences.Load().Stamp(a, s.now())
	if err := schemas.Stamp(a, s.set.Source, s.now()); err != nil {
		s.log.Warn("could not stamp an alert", "rule", a.Rule, "error", err)
		return
	}
	parent := s.alertCtx
	s.alerts.Go(func() {
		ctx, cancel := context.WithTimeout(parent, 10*time.Second)
		defer cancel()
		if err := s.set.Publisher.Publish(ctx, a); err != nil {
			s.log.Warn("could not publish an alert", "rule", a.Rule, "error", err)
		}
	})
}

// readSilences opens the silences, which mark the alerts raised during
// one, in the background: the service answers Postfix whether or not NATS
// is there, and tries again every minute until it is.
func (s *Server) readSilences(ctx context.Context) {
	for {
		if st := silence.OpenForStamping(ctx, s.set.JetStream, s.log); st != nil {
			s.silences.Store(st)
			<-ctx.Done()
			st.Close()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

type metrics struct {
	answers        *prometheus.CounterVec
	failOpen       prometheus.Counter
	protocolErrors prometheus.Counter
	refused        prometheus.Counter
	connections    prometheus.Gauge
	decisions      prometheus.Gauge
	answerSeconds  prometheus.Histogram
	invalidRecords prometheus.Counter
	snapshotWrites prometheus.Counter
	snapshotErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "policy_service"
	m := &metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "answers_total", Help: "Answers given to Postfix, by action (DUNNO, REJECT, DEFER_IF_PERMIT, HOLD, FILTER)."}, []string{"action"}),
		failOpen: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "fail_open_total", Help: "Requests answered DUNNO because the decisions were unavailable."}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "protocol_errors_total", Help: "Connections closed for a malformed or oversized request."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "connections_refused_total", Help: "Connections closed at once because max_connections were open."}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "connections", Help: "Open client connections."}),
		decisions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "decisions", Help: "Decisions held from the enforcement bucket (expired ones until the server removes them)."}),
		answerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "answer_seconds", Help: "Time from a complete request to its answer.", Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10)}),
		invalidRecords: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "invalid_records_total", Help: "Enforcement record revisions refused (undecodable, an action or transport not allowed, a text that is not printable ASCII); their subjects are answered DUNNO."}),
		snapshotWrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "snapshot_writes_total", Help: "Snapshots of the enforcement bucket written to disk."}),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "snapshot_errors_total", Help: "Snapshots that could not be written, or read at start."}),
	}
	r := obs.NewRegistrar(reg)
	m.answers = obs.Register(r, m.answers)
	m.failOpen = obs.Register(r, m.failOpen)
	m.protocolErrors = obs.Register(r, m.protocolErrors)
	m.refused = obs.Register(r, m.refused)
	m.connections = obs.Register(r, m.connections)
	m.decisions = obs.Register(r, m.decisions)
	m.answerSeconds = obs.Register(r, m.answerSeconds)
	m.invalidRecords = obs.Register(r, m.invalidRecords)
	m.snapshotWrites = obs.Register(r, m.snapshotWrites)
	m.snapshotErrors = obs.Register(r, m.snapshotErrors)
	return m, r.Err()
}
