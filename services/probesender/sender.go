package probesender

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bounceclass"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// publishGrace is how long a round keeps retrying to publish probe.sent
// events after its last submission could have ended.
const publishGrace = 30 * time.Second

// WorkerName is the subcommand, log name and metric subsystem (with "_").
const WorkerName = "probe-sender"

// Sender is the probe-sender worker.
type Sender struct {
	cfg      Config
	ring     *tracking.Keyring
	pub      *bus.Publisher
	log      *slog.Logger
	source   schemas.Source
	metrics  *metrics
	limiter  *limiter
	sources  []Source
	tlsCfgs  map[string]*tls.Config
	dkim     crypto.Signer
	heloName string
	now      func() time.Time
	round    uint64
	roundMu  sync.Mutex
	js       jetstream.JetStream
	holder   string
}

// New checks the configuration and builds a sender. s.Tracking's keyring
// signs the tracking header; it is required once there are probes to send.
func New(cfg Config, s worker.Settings) (*Sender, error) {
	var check config.Check
	check.Nest("probe_sender", cfg.Validate())
	if len(cfg.Targets) > 0 && len(cfg.Sources) > 0 && s.Tracking.Keyring == nil {
		check.Addf("tracking.key", "required to sign probes")
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
	snd := &Sender{
		cfg:     cfg,
		ring:    s.Tracking.Keyring,
		pub:     s.Publisher,
		log:     s.Logger,
		source:  s.Source,
		metrics: m,
		tlsCfgs: map[string]*tls.Config{},
		now:     s.Now,
		js:      s.JetStream,
		holder:  lease.DefaultHolder(),
	}
	snd.limiter = newLimiter(cfg.DefaultRatePerMinute, cfg.ProviderRatePerMinute, func() time.Time { return snd.now() })
	host, _ := os.Hostname()
	snd.heloName = host
	if !validHostname(host) || !strings.Contains(host, ".") {
		// A bare or odd host name: fall back to the From domain, which is
		// at least a name the receiving side can resolve.
		_, domain, _ := strings.Cut(cfg.From, "@")
		snd.heloName = domain
	}
	for _, src := range cfg.Sources {
		src = src.withDefaults()
		if src.Type == SourceSMTP && src.TLS != TLSNone {
			tc, err := src.tlsConfig()
			if err != nil {
				return nil, fmt.Errorf("probe_sender: source %s: %w", src.Name, err)
			}
			snd.tlsCfgs[src.Name] = tc
		}
		snd.sources = append(snd.sources, src)
	}
	if cfg.DKIM.Domain != "" {
		if snd.dkim, err = cfg.DKIM.signer(); err != nil {
			return nil, fmt.Errorf("probe_sender.dkim: %w", err)
		}
	}
	return snd, nil
}

// LeaseKey is the probe-sender's leader lease in the leases bucket: the
// copy holding it sends the rounds.
const LeaseKey = "probe-sender"

// roundKey is the claim of the round of the slot starting at slot.
func roundKey(slot time.Time) string {
	return LeaseKey + ".round." + strconv.FormatInt(slot.UnixMilli(), 10)
}

// Run campaigns for the leader lease until ctx ends and, while it leads,
// sends a round every interval (see lead).
func (s *Sender) Run(ctx context.Context) error {
	if len(s.sources) == 0 || len(s.cfg.Targets) == 0 {
		s.log.Warn("no probe sources or targets configured; idle")
		<-ctx.Done()
		return nil
	}
	opts := s.cfg.LeaderLease.Options()
	opts.Logger, opts.Holder = s.log, s.holder
	leader, err := lease.New(ctx, s.js, LeaseKey, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return leader.Run(ctx, s.lead)
}

// lead sends a round at every slot (a multiple of interval on the wall
// clock) until ctx ends: the current slot's at once, unless another copy
// claimed it. A round still running when the next is due makes that one
// skip (counted), so rounds never pile up behind a slow relay.
func (s *Sender) lead(ctx context.Context) error {
	s.metrics.leader.Set(1)
	defer s.metrics.leader.Set(0)
	s.log.Info("leading: this copy sends the probes")
	interval := s.cfg.Interval.Std()
	perRound := float64(len(s.sources) * len(s.cfg.Targets))
	var wg sync.WaitGroup
	defer wg.Wait()
	busy := make(chan struct{}, 1)
	start := func(slot time.Time) {
		select {
		case busy <- struct{}{}:
		default:
			s.metrics.skipped.WithLabelValues("overrun").Add(perRound)
			return
		}
		// The claim outlives the slot, so a copy that takes over later in
		// it finds the claim and waits for the next slot.
		claimed, err := lease.Claim(ctx, s.js, roundKey(slot), s.holder, 2*interval)
		if err != nil || !claimed {
			<-busy
			if err != nil && ctx.Err() == nil {
				s.log.Warn("round not claimed; skipped", "slot", slot, "error", err)
				s.metrics.skipped.WithLabelValues("unclaimed").Add(perRound)
			}
			if err == nil {
				s.metrics.skipped.WithLabelValues("sent_by_another_copy").Add(perRound)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-busy }()
			// A round may outlast the interval (a hanging relay gets its
			// whole timeout, and its event); the next round then skips.
			roundCtx, cancel := context.WithTimeout(ctx, s.cfg.Jitter.Std()+s.cfg.Timeout.Std()+publishGrace)
			defer cancel()
			s.Round(roundCtx, s.cfg.Jitter.Std(), nil)
		}()
	}
	start(time.Now().Truncate(interval))
	for {
		next := time.Now().Truncate(interval).Add(interval)
		if !worker.Sleep(ctx, time.Until(next)) {
			return nil
		}
		start(next)
	}
}

// Round sends one probe per (source, target), each after a random delay
// below jitter and within the provider's rate cap, publishes a probe.sent
// for each, and returns the events once all are published or ctx ends.
// onSent, when not nil, sees each event as it is published.
func (s *Sender) Round(ctx context.Context, jitter time.Duration, onSent func(*schemas.ProbeSent)) []*schemas.ProbeSent {
	s.roundMu.Lock()
	round := s.round
	s.round++
	s.roundMu.Unlock()
	s.metrics.rounds.Inc()

	// The rate cap may delay a probe up to the next round, not past it.
	capUntil := time.Now().Add(s.cfg.Interval.Std())
	sem := make(chan struct{}, s.cfg.Concurrency)
	var mu sync.Mutex
	var out []*schemas.ProbeSent
	var wg sync.WaitGroup
	for _, src := range s.sources {
		for _, tgt := range s.cfg.Targets {
			delay := time.Duration(0)
			if jitter > 0 {
				delay = rand.N(jitter)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !worker.Sleep(ctx, delay) {
					return
				}
				if wait := s.limiter.reserve(tgt.Provider); wait > 0 {
					if time.Now().Add(wait).After(capUntil) {
						s.metrics.skipped.WithLabelValues("rate_cap").Inc()
						return
					}
					if !worker.Sleep(ctx, wait) {
						return
					}
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				ev := s.Probe(ctx, src, tgt, variantFor(tgt, round))
				<-sem
				if ev == nil {
					return
				}
				if !s.publish(ctx, ev) {
					return
				}
				if onSent != nil {
					onSent(ev)
				}
				mu.Lock()
				out = append(out, ev)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

func variantFor(t Target, round uint64) string {
	if len(t.Variants) == 0 {
		return VariantPlain
	}
	return t.Variants[round%uint64(len(t.Variants))]
}

// publish publishes ev, retrying with backoff until ctx ends: the probe is
// already out, so its record must not be dropped on a NATS blip. The
// event id makes the retries safe.
func (s *Sender) publish(ctx context.Context, ev *schemas.ProbeSent) bool {
	backoff := 100 * time.Millisecond
	for {
		err := s.pub.Publish(ctx, ev)
		if err == nil {
			return true
		}
		if !worker.Sleep(ctx, backoff) {
			s.metrics.publishErrors.Inc()
			s.log.Error("probe.sent not published", "probe_id", ev.ProbeID, "error", err)
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Probe builds, signs and submits one probe and returns its probe.sent
// event (stamped, not yet published); nil if ctx ended first.
func (s *Sender) Probe(ctx context.Context, src Source, tgt Target, variant string) *schemas.ProbeSent {
	src = src.withDefaults()
	probeID := schemas.NewID()
	now := s.now()
	_, fromDomain, _ := strings.Cut(s.cfg.From, "@")
	sourceName := src.sourceIP()
	if sourceName == "" {
		sourceName = src.Name
	}
	ev := &schemas.ProbeSent{
		ProbeRoute: schemas.ProbeRoute{
			ProbeID:         probeID,
			TrackingID:      probeID,
			SourceIP:        src.sourceIP(),
			Provider:        tgt.Provider,
			RecipientDomain: domainOf(tgt.Address),
			Route:           src.Name,
		},
		Submission: schemas.SubmissionSMTP,
		ProbeSeed:  schemas.ProbeSeed{Target: tgt.Name, SeedAddress: tgt.Address, Variant: variant},
		MessageID:  probeID + "@" + fromDomain,
	}
	if src.Type == SourceSendmail {
		ev.Submission = schemas.SubmissionSendmail
	} else {
		ev.Relay = src.Addr
		ev.HeloName = s.heloFor(src)
	}
	header, err := s.ring.Sign(tracking.Fields{Customer: s.cfg.Customer, Source: sourceName, MessageID: probeID, Time: now})
	var msg []byte
	if err == nil {
		msg = buildMessage(probeMessage{
			ProbeID: probeID, From: s.cfg.From, FromName: s.cfg.FromName, To: tgt.Address, Date: now,
			Tracking: header, Variant: variant, Route: src.Name, Headers: tgt.Headers,
			UnsubURL: s.cfg.ListUnsubscribeURL, MessageID: ev.MessageID,
		})
		if s.dkim != nil {
			msg, err = signDKIM(msg, s.cfg.DKIM, s.dkim)
			ev.DKIMDomain, ev.DKIMSelector = s.cfg.DKIM.Domain, s.cfg.DKIM.Selector
		}
	}
	var r result
	if err != nil {
		r = newResult()
		r.Outcome, r.FailedPhase, r.Error, r.Done = schemas.OutcomeError, phaseSubmit, oneLine(err.Error()), s.now()
		r.Total = 0
	} else if src.Type == SourceSendmail {
		r = submitSendmail(ctx, src.SendmailCommand, s.cfg.From, tgt.Address, msg, s.cfg.Timeout.Std())
	} else {
		r = submitSMTP(ctx, src, s.tlsCfgs[src.Name], ev.HeloName, s.cfg.From, tgt.Address, msg, s.cfg.Timeout.Std())
	}
	if ctx.Err() != nil && r.Outcome != schemas.OutcomeAccepted {
		return nil // shutting down, not a verdict on the path
	}
	ev.SizeBytes = uint32(len(msg))
	ev.Outcome = r.Outcome
	ev.FailedPhase = r.FailedPhase
	ev.ReplyCode = uint16(r.ReplyCode)
	ev.EnhancedStatus = r.EnhancedStatus
	ev.ReplyText = r.ReplyText
	ev.QueueID = r.QueueID
	ev.Error = r.Error
	ev.TLSVersion, ev.TLSCipher = r.TLSVersion, r.TLSCipher
	ev.AuthMechanism = r.AuthMechanism
	if r.Outcome == schemas.OutcomeRefused || r.Outcome == schemas.OutcomeTempfail {
		// The reply text decides (a banner-time "554 poor reputation" is a
		// reputation block whatever its code says).
		c := bounceclass.Classify(bounceclass.Input{Text: r.ReplyText, ReplyCode: r.ReplyCode, Status: r.EnhancedStatus})
		ev.Reason, ev.Category = c.Reason, c.Category
	}
	ev.ConnectMs, ev.BannerMs, ev.EhloMs = ms(r.Connect), ms(r.Banner), ms(r.EHLO)
	ev.StarttlsMs, ev.AuthMs, ev.MailMs = ms(r.StartTLS), ms(r.Auth), ms(r.Mail)
	ev.RcptMs, ev.DataMs, ev.TotalMs = ms(r.Rcpt), ms(r.Data), max(ms(r.Total), 0)
	// The event time is the final reply, from the injectable clock so
	// tests control it; the wall clock measured the phases.
	done := s.now()
	if err := schemas.Stamp(ev, s.source, done); err != nil {
		s.log.Error("stamp probe.sent", "error", err)
		return nil
	}
	s.metrics.probes.WithLabelValues(src.Name, tgt.Provider, ev.Outcome).Inc()
	s.metrics.submitSeconds.WithLabelValues(src.Name).Observe(r.Total.Seconds())
	return ev
}

func (s *Sender) heloFor(src Source) string {
	if src.HeloName != "" {
		return src.HeloName
	}
	return s.heloName
}

func ms(d time.Duration) int32 {
	if d < 0 {
		return schemas.NoDuration
	}
	return int32(d / time.Millisecond)
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return strings.ToLower(d)
}
