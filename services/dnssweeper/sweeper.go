package dnssweeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the sweeper's subcommand, log name, durable and
// dead-letter suffix.
const WorkerName = "dns-sweeper"

// Durable is the sweeper's consumer of delivery events.
const Durable = "dns-sweeper"

// DeliveryStream is the stream the seen sending IPs come from.
const DeliveryStream = "DELIVERY"

// eventBatch is how many changes wait for their events to be confirmed
// before their state is written. Waiting for confirmations stalls the
// sweep, so it happens rarely; a crash before the writes only repeats
// the events.
const eventBatch = 10000

// Sweeper is the dns-sweeper worker. Build it with New, start it with Run.
type Sweeper struct {
	cfg      Config
	set      worker.Settings
	log      *slog.Logger
	pub      *bus.Publisher
	checker  *Checker
	auditCli *Client
	static   []dnsbl.Target
	metrics  *metrics
	resolver string

	loadOnce sync.Once
	loadErr  error
	ready    atomic.Bool
	kv       jetstream.KeyValue

	// sweepMu runs one sweep at a time; the state below is read and
	// written by sweeps only, except seen, which the delivery consumer
	// also writes (under seenMu).
	sweepMu sync.Mutex
	records map[pairKey]*record
	zoneRec map[string]*zoneRecord
	last    *lastSweep
	// current is the sweep in progress or left unfinished (sweep/current).
	current *lastSweep
	seenMu  sync.Mutex
	seen    map[string]*seenRecord
}

// New checks the configuration and builds a sweeper; nothing is connected
// until Run.
func New(cfg Config, s worker.Settings) (*Sweeper, error) {
	var check config.Check
	check.Nest("dns_sweeper", cfg.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	log := s.Logger
	zones, warnings, err := dnsbl.Default().With(cfg.CustomZones).Select(cfg.Zones)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn("dns_sweeper.zones: " + w)
	}
	warnPublicResolver(log, cfg, zones)
	client := NewClient(cfg.Resolver, ClientOptions{Timeout: cfg.Timeout.Std(), Retries: cfg.Retries, TCPFallback: cfg.TCPFallback, MaxIdle: cfg.Concurrency + 4})
	checker, err := NewChecker(client, zones, cfg.DQSKey.Reveal(), cfg.ZoneRate, cfg.FetchTXT)
	if err != nil {
		return nil, err
	}
	static, err := staticTargets(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	pub := s.Publisher
	sw := &Sweeper{
		cfg:      cfg,
		set:      s,
		log:      log,
		pub:      pub,
		checker:  checker,
		auditCli: NewClient(cfg.auditResolver(), ClientOptions{Timeout: cfg.Timeout.Std(), Retries: cfg.Retries, TCPFallback: true, MaxIdle: 8}),
		static:   static,
		metrics:  m,
		resolver: cfg.Resolver,
		records:  map[pairKey]*record{},
		zoneRec:  map[string]*zoneRecord{},
		seen:     map[string]*seenRecord{},
	}
	s.Health.Register(WorkerName, func(context.Context) error {
		if !sw.ready.Load() {
			return errors.New("loading state from KV bucket " + Bucket)
		}
		return nil
	})
	return sw, nil
}

// warnPublicResolver warns when a zone that refuses public resolvers would
// be asked through one, without a DQS key to get around it.
func warnPublicResolver(log *slog.Logger, cfg Config, zones []dnsbl.Zone) {
	host := cfg.Resolver
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return
	}
	operator := dnsbl.PublicResolver(addr)
	if operator == "" {
		return
	}
	for _, z := range zones {
		if z.RegisteredResolver && (z.DQSZone == "" || cfg.DQSKey == "") {
			log.Warn("dns_sweeper.resolver is a public resolver that this zone refuses; its self-test will fail and it stays unknown. Use your own recursive resolver, or set dqs_key for Spamhaus",
				"resolver", cfg.Resolver, "operator", operator, "zone", z.Name)
		}
	}
}

// staticTargets are the configured IPs, expanded CIDRs and domains, each
// once, in that order.
func staticTargets(cfg Config) ([]dnsbl.Target, error) {
	var out []dnsbl.Target
	seen := map[dnsbl.Target]bool{}
	add := func(t dnsbl.Target) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, s := range cfg.IPs {
		t, err := dnsbl.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		add(t)
	}
	for _, s := range cfg.CIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		addrs, err := dnsbl.ExpandPrefix(p, cfg.MaxTargets)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			add(dnsbl.IPTarget(a))
		}
	}
	for _, s := range cfg.Domains {
		t, err := dnsbl.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		add(t)
	}
	return out, nil
}

// Run loads the state, learns sending IPs from delivery events (with
// seen_ips enabled) and campaigns for the leader lease until ctx ends.
// While it leads, it sweeps every interval and audits every
// audit.interval (see lead). A sweep that fails is logged and counted, and
// the next one runs on time; Run returns an error only when a bucket or
// the delivery consumer is missing.
func (s *Sweeper) Run(ctx context.Context) error {
	defer s.checker.Client().Close()
	defer s.auditCli.Close()
	if err := s.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	opts := s.cfg.LeaderLease.Options()
	opts.Logger = s.log
	leader, err := lease.New(ctx, s.set.JetStream, LeaseKey, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if s.cfg.SeenIPs.Enabled {
		wg.Go(func() {
			if err := s.consumeDeliveries(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() {
		if err := leader.Run(ctx, s.lead); err != nil {
			cancel(err)
		}
	})
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	s.log.Info("dns-sweeper stopped")
	return nil
}

// every runs f now and then every interval (start to start) until ctx ends.
func (s *Sweeper) every(ctx context.Context, interval time.Duration, what string, f func(context.Context) error) {
	for {
		started := time.Now()
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.log.Error(what+" failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(started.Add(interval))):
		}
	}
}

// load reads the state bucket once.
func (s *Sweeper) load(ctx context.Context) error {
	s.loadOnce.Do(func() { s.loadErr = s.loadState(ctx) })
	return s.loadErr
}

func (s *Sweeper) loadState(ctx context.Context) error {
	kv, err := s.set.JetStream.KeyValue(ctx, Bucket)
	if err != nil {
		return fmt.Errorf("KV bucket %s (apply the pipelines first): %w", Bucket, err)
	}
	s.kv = kv
	if err := s.reload(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	s.sweepMu.Lock()
	records, zones := len(s.records), len(s.zoneRec)
	s.sweepMu.Unlock()
	s.log.Info("state loaded", "records", records, "zones", zones, "seen_ips", s.seenCount())
	return nil
}

// reload replaces the cached state with what the bucket holds: a copy
// that becomes the leader, and the leader before each sweep, read what
// other copies wrote (their sweeps, the sending IPs they learnt).
func (s *Sweeper) reload(ctx context.Context) error {
	st, err := readState(ctx, s.kv)
	if err != nil {
		return err
	}
	if st.bad > 0 {
		s.log.Warn("unreadable state records ignored", "count", st.bad)
	}
	s.sweepMu.Lock()
	s.records, s.zoneRec, s.last, s.current = st.records, st.zoneRec, st.last, st.current
	s.sweepMu.Unlock()
	s.seenMu.Lock()
	s.seen = st.seen
	s.seenMu.Unlock()
	return nil
}

func (s *Sweeper) seenCount() int {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return len(s.seen)
}

// state is the content of the state bucket.
type state struct {
	records       map[pairKey]*record
	zoneRec       map[string]*zoneRecord
	last, current *lastSweep
	seen          map[string]*seenRecord
	bad           int
}

func readState(ctx context.Context, kv jetstream.KeyValue) (*state, error) {
	st := &state{records: map[pairKey]*record{}, zoneRec: map[string]*zoneRecord{}, seen: map[string]*seenRecord{}}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read KV bucket %s: %w", Bucket, err)
	}
	defer w.Stop()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e == nil {
			return st, nil // the initial values are all delivered
		}
		key := e.Key()
		var err error
		switch {
		case strings.HasPrefix(key, "ip/"), strings.HasPrefix(key, "domain/"):
			var r record
			if err = json.Unmarshal(e.Value(), &r); err == nil {
				var t dnsbl.Target
				if t, err = dnsbl.ParseTarget(r.Target); err == nil {
					st.records[pairKey{t, r.Zone}] = &r
				}
			}
		case strings.HasPrefix(key, "zone/"):
			var r zoneRecord
			if err = json.Unmarshal(e.Value(), &r); err == nil {
				st.zoneRec[key] = &r
			}
		case key == lastSweepKey:
			var r lastSweep
			if err = json.Unmarshal(e.Value(), &r); err == nil {
				st.last = &r
			}
		case key == currentSweepKey:
			var r lastSweep
			if err = json.Unmarshal(e.Value(), &r); err == nil {
				st.current = &r
			}
		case strings.HasPrefix(key, "seen/"):
			var r seenRecord
			if err = json.Unmarshal(e.Value(), &r); err == nil {
				st.seen[key] = &r
			}
		}
		if err != nil {
			st.bad++ // an unreadable record is as good as none: it is rewritten by the next sweep
		}
	}
}

// targets are this sweep's targets: the configured ones, then the sending
// IPs seen within seen_ips.max_age, capped at max_targets; capped says
// whether seen IPs were left out.
func (s *Sweeper) targets(now time.Time) (targets []dnsbl.Target, capped bool) {
	out := slices.Clone(s.static)
	if !s.cfg.SeenIPs.Enabled {
		return out, false
	}
	have := make(map[dnsbl.Target]bool, len(out))
	for _, t := range out {
		have[t] = true
	}
	s.seenMu.Lock()
	var extra []dnsbl.Target
	for _, r := range s.seen {
		if now.Sub(r.LastSeen) > s.cfg.SeenIPs.MaxAge.Std() {
			continue
		}
		if a, err := netip.ParseAddr(r.IP); err == nil {
			if t := dnsbl.IPTarget(a); !have[t] {
				have[t] = true
				extra = append(extra, t)
			}
		}
	}
	s.seenMu.Unlock()
	slices.SortFunc(extra, func(a, b dnsbl.Target) int { return a.IP.Compare(b.IP) })
	if room := s.cfg.MaxTargets - len(out); len(extra) > room {
		s.log.Warn("more targets than max_targets; seen IPs left out of this sweep", "left_out", len(extra)-max(room, 0), "max_targets", s.cfg.MaxTargets)
		extra, capped = extra[:max(room, 0)], true
	}
	return append(out, extra...), capped
}
