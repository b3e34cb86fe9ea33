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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/provider"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the policy service's subcommand and log name.
const WorkerName = "policy-service"

// RuleStateUnavailable is the rule of the alert raised when the service
// fails open.
const RuleStateUnavailable = "policy_state_unavailable"

// Server is the policy-service worker.
type Server struct {
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

	alertMu   sync.Mutex
	lastAlert time.Time
	failing   bool
	// failingNow mirrors failing for the lock-free check on every answer.
	failingNow atomic.Bool
}

type prefixCustomer struct {
	p        netip.Prefix
	customer string
}

// Option adjusts a Server for tests.
type Option func(*Server)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New checks the configuration and builds the worker; nothing listens
// until Run.
func New(cfg Config, s worker.Settings, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: policy_service: %w", WorkerName, err)
	}
	if s.JetStream == nil {
		return nil, fmt.Errorf("%s: settings: JetStream is required", WorkerName)
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	srv := &Server{cfg: cfg, set: s, log: s.Logger, metrics: m, now: time.Now, domains: map[string]string{}, ready: make(chan struct{})}
	if srv.log == nil {
		srv.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		o(srv)
	}
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
	srv.state = NewState(connected, srv.log)
	srv.state.updates = func() { m.decisions.Set(float64(srv.state.Len())) }
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
// once; until the decisions are loaded (at most answer_timeout per
// request) it answers DUNNO.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("%s: listen: %w", WorkerName, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()
	s.log.Info("policy service listening", "addr", ln.Addr().String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
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
			s.log.Warn("enforcement bucket unavailable; answering DUNNO", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(delay*2, 5*time.Second)
		}
	})
	if s.set.Health != nil {
		s.set.Health.Register(WorkerName, func(context.Context) error {
			if !s.state.Usable(s.now(), s.cfg.StaleAfter.Std()) {
				return errors.New("enforcement state unavailable (failing open)")
			}
			return nil
		})
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	close(s.ready)

	slots := make(chan struct{}, s.cfg.MaxConnections)
	conns := map[net.Conn]struct{}{}
	var connMu sync.Mutex
	defer func() {
		connMu.Lock()
		for c := range conns {
			c.Close()
		}
		connMu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("%s: accept: %w", WorkerName, err)
		}
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
func (s *Server) Decide(ctx context.Context, req Request) string {
	if req["request"] != "smtpd_access_policy" {
		s.metrics.answers.WithLabelValues("DUNNO").Inc()
		return "DUNNO"
	}
	now := s.now()
	if !s.state.Usable(now, s.cfg.StaleAfter.Std()) {
		// Not loaded yet (start-up) or NATS gone too long: wait a bounded
		// time for it, then fail open.
		t := time.NewTimer(s.cfg.AnswerTimeout.Std())
		select {
		case <-s.state.Synced():
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		now = s.now()
		if !s.state.Usable(now, s.cfg.StaleAfter.Std()) {
			s.metrics.failOpen.Inc()
			s.metrics.answers.WithLabelValues("DUNNO").Inc()
			s.stateAlert(true)
			return "DUNNO"
		}
	}
	s.stateAlert(false)
	rec, ok := s.match(req, now)
	if !ok {
		s.metrics.answers.WithLabelValues("DUNNO").Inc()
		return "DUNNO"
	}
	action := s.answerFor(rec)
	s.metrics.answers.WithLabelValues(strings.Fields(action)[0]).Inc()
	return action
}

// Subjects lists the subjects a request may be enforced under.
func (s *Server) Subjects(req Request) []string {
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
func (s *Server) match(req Request, now time.Time) (enforcement.Record, bool) {
	var best enforcement.Record
	found := false
	for _, subj := range s.Subjects(req) {
		r, ok := s.state.Lookup(subj, now)
		if !ok {
			continue
		}
		if !found || (r.Action == schemas.ActionCutoff && best.Action != schemas.ActionCutoff) {
			best, found = r, true
		}
	}
	return best, found
}

// answerFor is the Postfix action for a decision.
func (s *Server) answerFor(r enforcement.Record) string {
	if r.Action == schemas.ActionReroute {
		return "FILTER " + r.Transport + ":" + s.cfg.RerouteNexthop
	}
	action := r.PolicyAction
	if s.cfg.CutoffAction != "" {
		action = s.cfg.CutoffAction
	}
	if action == "" {
		action = "DEFER_IF_PERMIT"
	}
	text := r.PolicyText
	if s.cfg.CutoffText != "" {
		text = s.cfg.CutoffText
	}
	if text == "" {
		text = "Sending suspended for " + r.Subject
	}
	switch action {
	case "REJECT":
		text = statusClass(text, '5')
	case "DEFER_IF_PERMIT":
		text = statusClass(text, '4')
	}
	return action + " " + text
}

// statusClass makes the enhanced status code at the start of text (adding
// x.7.1 when there is none) belong to class c: Postfix refuses a 4.x.x
// code on a REJECT and a 5.x.x code on a DEFER.
func statusClass(text string, c byte) string {
	if len(text) >= 5 && (text[0] == '4' || text[0] == '5') && text[1] == '.' {
		return string(c) + text[1:]
	}
	return string(c) + ".7.1 " + text
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

// stateAlert raises an alert when the service starts failing open (at most
// once per alert_interval) and resolves it when it recovers. Publishing
// happens in the background: an answer never waits for it.
func (s *Server) stateAlert(failing bool) {
	if !failing && !s.failingNow.Load() {
		return
	}
	s.alertMu.Lock()
	now := s.now()
	send := false
	switch {
	case failing && (!s.failing || now.Sub(s.lastAlert) >= s.cfg.AlertInterval.Std()):
		send = true
		s.lastAlert = now
	case !failing && s.failing:
		send = true
	}
	s.failing = failing
	s.failingNow.Store(failing)
	s.alertMu.Unlock()
	if !send || s.set.Publisher == nil {
		if send {
			s.log.Warn("enforcement state unavailable; failing open", "failing", failing)
		}
		return
	}
	status, severity, summary := schemas.AlertFiring, schemas.AlertCritical,
		"policy service failing open: enforcement decisions unavailable, every request answered DUNNO"
	if !failing {
		status, summary = schemas.AlertResolved, "policy service enforcing again: enforcement decisions available"
	}
	host := s.set.Source.Host
	a := &schemas.AlertRaised{Rule: RuleStateUnavailable, Status: status, Severity: severity,
		Subject: "worker:" + WorkerName + "/" + host, Summary: summary, DedupeKey: RuleStateUnavailable + "/" + host}
	if err := schemas.Stamp(a, s.set.Source, now); err != nil {
		return
	}
	s.log.Warn(summary)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.set.Publisher.Publish(ctx, a); err != nil {
			s.log.Warn("could not publish the state alert", "error", err)
		}
	}()
}

type metrics struct {
	answers        *prometheus.CounterVec
	failOpen       prometheus.Counter
	protocolErrors prometheus.Counter
	refused        prometheus.Counter
	connections    prometheus.Gauge
	decisions      prometheus.Gauge
	answerSeconds  prometheus.Histogram
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
	}
	r := obs.NewRegistrar(reg)
	m.answers = obs.Register(r, m.answers)
	m.failOpen = obs.Register(r, m.failOpen)
	m.protocolErrors = obs.Register(r, m.protocolErrors)
	m.refused = obs.Register(r, m.refused)
	m.connections = obs.Register(r, m.connections)
	m.decisions = obs.Register(r, m.decisions)
	m.answerSeconds = obs.Register(r, m.answerSeconds)
	return m, r.Err()
}
