package dnssweeper

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// maxPrunePerSweep bounds the stale records deleted after one sweep.
const maxPrunePerSweep = 10000

// shutdownFinish bounds storing the events and state of a sweep cut short
// by shutdown.
const shutdownFinish = 10 * time.Second

// confirmEvery is the longest a change waits for its event to be
// confirmed and its record written. It bounds what a copy that takes over
// an unfinished sweep publishes again: the events of the last few seconds
// before the leader died, under the same ids.
const confirmEvery = 2 * time.Second

// Sweep checks every target against every zone once: self-tests first,
// then the queries, publishing dnsbl.listed, dnsbl.delisted and dnsbl.error
// on transitions as the answers arrive, then the dnsbl.checked summary,
// which it returns. A pair's record is written only after its event is
// confirmed, so a crash between the two repeats the event rather than
// losing it.
func (s *Sweeper) Sweep(ctx context.Context) (*schemas.DNSBLChecked, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s.sweep(ctx, schemas.NewID(), time.Now())
}

// sweep is Sweep under a given id and start: a new sweep, or one another
// copy left unfinished (its events then get the ids they had, see
// eventID). sweep/current names it until sweep/last does.
func (s *Sweeper) sweep(ctx context.Context, sweepID string, started time.Time) (*schemas.DNSBLChecked, error) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	cur := &lastSweep{SweepID: sweepID, Started: started}
	if err := s.putJSON(ctx, currentSweepKey, cur); err != nil {
		return nil, err
	}
	s.current = cur
	targets, capped := s.targets(started)
	zones := s.checker.Zones()
	p := &processor{s: s, ctx: ctx, sweepID: sweepID, now: started, w: newKVWriter(s.set.JetStream, Bucket),
		cov: newCoverage(s.last, s.firstSeen), zoneErrors: make([]uint32, len(zones)), confirmed: time.Now()}
	res, sweepErr := s.checker.Sweep(ctx, targets, s.cfg.Concurrency, p.handle)
	if sweepErr != nil {
		// Cancelled (shutdown): store what the checks so far found, within
		// a bound, and publish no summary.
		finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFinish)
		defer cancel()
		p.ctx = finishCtx
		p.finish()
		return nil, sweepErr
	}

	// Zone self-test transitions.
	var zonesOK []string
	var zoneWrites []*zoneRecord
	for i, b := range zones {
		state, detail := schemas.ZoneOK, ""
		if f := res.ZoneFailure[i]; f != nil {
			state, detail = schemas.ZoneUnknown, f.Detail
			// Every target the zone lists is unknown on it this sweep.
			for _, t := range targets {
				if b.Applies(t) {
					p.zoneErrors[i]++
				}
			}
		} else {
			zonesOK = append(zonesOK, b.Name())
		}
		up := 0.0
		if state == schemas.ZoneOK {
			up = 1
		}
		s.metrics.zoneUp.WithLabelValues(b.Name()).Set(up)
		prev := s.zoneRec[zoneKey(b.Name())]
		if prev != nil && prev.State == state && prev.Detail == detail {
			continue
		}
		if state == schemas.ZoneUnknown && (prev == nil || prev.State != schemas.ZoneUnknown) {
			f := res.ZoneFailure[i]
			p.publish(&schemas.DNSBLError{
				Zone: b.Name(), List: b.Zone().ListName(), Cause: string(dnsbl.CauseSelfTest),
				AnswerCode: f.ErrorCode, Meaning: f.Meaning, Rcode: f.Rcode, Error: f.Detail,
				SweepID: sweepID, Resolver: s.resolver,
			}, "", b.Name())
			s.log.Warn("zone failed its self-test; its answers are not trusted this sweep", "zone", b.Name(), "detail", detail)
		}
		if state == schemas.ZoneOK && prev != nil && prev.State == schemas.ZoneUnknown {
			s.log.Info("zone passed its self-test again", "zone", b.Name())
		}
		zoneWrites = append(zoneWrites, &zoneRecord{Zone: b.Name(), State: state, Detail: detail, Changed: started})
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	for _, zr := range zoneWrites {
		if err := s.putJSON(ctx, zoneKey(zr.Zone), zr); err != nil {
			return nil, err
		}
		s.zoneRec[zoneKey(zr.Zone)] = zr
	}
	last := &lastSweep{SweepID: sweepID, Started: started, IPs: s.cfg.IPs, CIDRs: s.cfg.CIDRs, Domains: s.cfg.Domains, ZonesOK: zonesOK, SeenCapped: capped}
	if err := s.putJSON(ctx, lastSweepKey, last); err != nil {
		return nil, err
	}
	s.last = last
	current := make(map[dnsbl.Target]bool, len(targets))
	for _, t := range targets {
		current[t] = true
	}
	pruned := s.prune(ctx, current)

	// Summary: listings of current targets, including those on zones that
	// failed their self-test (the last trustworthy answer stands).
	listed := make(map[string]uint32, len(zones))
	for k, r := range s.records {
		if r.State == stateListed && current[k.target] {
			listed[k.zone]++
		}
	}
	sum := &schemas.DNSBLChecked{SweepID: sweepID, Resolver: s.resolver, StartedAt: started.UTC().Truncate(time.Millisecond), Targets: uint32(len(targets))}
	for i, b := range zones {
		state := schemas.ZoneOK
		if res.ZoneFailure[i] != nil {
			state = schemas.ZoneUnknown
		}
		sum.ZoneNames = append(sum.ZoneNames, b.Name())
		sum.ZoneStates = append(sum.ZoneStates, state)
		sum.ZoneListed = append(sum.ZoneListed, listed[b.Name()])
		sum.ZoneErrors = append(sum.ZoneErrors, p.zoneErrors[i])
		sum.ZoneQueries = append(sum.ZoneQueries, uint32(res.ZoneQueries[i]))
		sum.Listed += listed[b.Name()]
		sum.Errors += p.zoneErrors[i]
		sum.Queries += uint32(res.ZoneQueries[i])
		s.metrics.listed.WithLabelValues(b.Name()).Set(float64(listed[b.Name()]))
		s.metrics.queries.WithLabelValues(b.Name()).Add(float64(res.ZoneQueries[i]))
	}
	sum.NewlyListed, sum.Delisted = p.newlyListed, p.delisted
	finished := time.Now()
	if err := schemas.Stamp(sum, s.set.Source, finished); err != nil {
		return nil, err
	}
	sum.ID = eventID(sweepID, started, sum.Type, "", "")
	sum.DurationMs = sum.Time.Sub(sum.StartedAt).Milliseconds()
	if err := s.pub.Publish(ctx, sum); err != nil {
		return nil, fmt.Errorf("publish sweep summary: %w", err)
	}
	s.metrics.sweeps.Inc()
	s.metrics.sweepSeconds.Observe(finished.Sub(started).Seconds())
	s.metrics.targets.Set(float64(len(targets)))
	s.log.Info("sweep done", "sweep_id", sweepID, "targets", len(targets), "queries", sum.Queries, "listed", sum.Listed,
		"newly_listed", sum.NewlyListed, "delisted", sum.Delisted, "errors", sum.Errors, "pruned", pruned, "duration", finished.Sub(started).Round(time.Millisecond))
	return sum, nil
}

func (s *Sweeper) putJSON(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// firstSeen is when a seen IP was first seen, for coverage.
func (s *Sweeper) firstSeen(ip netip.Addr) (time.Time, bool) {
	if !s.cfg.SeenIPs.Enabled {
		return time.Time{}, false
	}
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	r := s.seen[seenKey(ip.String())]
	if r == nil {
		return time.Time{}, false
	}
	return r.FirstSeen, true
}

// processor turns the checks of one sweep into events and state writes.
type processor struct {
	s       *Sweeper
	ctx     context.Context
	sweepID string
	now     time.Time
	cov     *coverage
	w       *kvWriter
	// awaiting are changes whose events are not confirmed yet, since
	// confirmed.
	awaiting              []pending
	confirmed             time.Time
	zoneErrors            []uint32
	newlyListed, delisted uint32
	failed                error
}

type pending struct {
	key pairKey
	c   change
}

func (p *processor) handle(ch Check) {
	s := p.s
	b := s.checker.Zones()[ch.Zone]
	if ch.Result.Status == dnsbl.Error {
		p.zoneErrors[ch.Zone]++
		s.metrics.errors.WithLabelValues(b.Name(), string(ch.Result.Cause)).Inc()
	}
	key := pairKey{ch.Target, b.Name()}
	prev := s.records[key]
	if prev == nil && ch.Result.Status == dnsbl.NotListed {
		return // clean and still clean: nothing to store or say
	}
	c := transition(prev, ch, b, prev == nil && p.cov.clean(ch.Target, b.Name()), p.now, p.sweepID, s.resolver)
	if c.event == nil {
		p.write(key, c)
		return
	}
	switch c.event.(type) {
	case *schemas.DNSBLListed:
		p.newlyListed++
	case *schemas.DNSBLDelisted:
		p.delisted++
	}
	p.publish(c.event, ch.Target.String(), b.Name())
	if c.rec != nil || c.delete {
		p.awaiting = append(p.awaiting, pending{key, c})
		if len(p.awaiting) >= eventBatch || time.Since(p.confirmed) >= confirmEvery {
			p.confirm()
		}
	}
}

// publish stamps ev with the id eventID derives for (target, zone) in
// this sweep and publishes it.
func (p *processor) publish(ev schemas.Event, target, zone string) {
	if err := schemas.Stamp(ev, p.s.set.Source, time.Now()); err != nil {
		p.fail(err)
		return
	}
	h := ev.EventHeader()
	h.ID = eventID(p.sweepID, p.now, h.Type, target, zone)
	if err := p.s.pub.PublishAsync(p.ctx, ev); err != nil {
		p.fail(fmt.Errorf("publish %T: %w", ev, err))
	}
}

func (p *processor) fail(err error) {
	if p.failed == nil {
		p.failed = err
	}
}

// write stores or deletes a pair's record; the cache follows once the
// bucket confirmed it.
func (p *processor) write(key pairKey, c change) {
	s := p.s
	kvKey := stateKey(key.target, key.zone)
	var err error
	switch {
	case c.delete:
		err = p.w.del(p.ctx, kvKey, func() { delete(s.records, key) })
	case c.rec != nil:
		var data []byte
		if data, err = json.Marshal(c.rec); err == nil {
			rec := c.rec
			err = p.w.put(p.ctx, kvKey, data, func() { s.records[key] = rec })
		}
	}
	if err != nil {
		p.fail(err)
	}
}

// confirm waits for the events published so far; their records are
// written only if every one was stored, else they are dropped (the cache
// keeps the old state, so the next sweep sees the transition again).
func (p *processor) confirm() {
	p.confirmed = time.Now()
	err := p.s.pub.Flush(p.ctx)
	batch := p.awaiting
	p.awaiting = nil
	if err != nil {
		p.fail(fmt.Errorf("events not confirmed, %d state changes left for the next sweep: %w", len(batch), err))
		return
	}
	for _, a := range batch {
		p.write(a.key, a.c)
	}
}

// finish confirms the remaining events and waits for every state write.
func (p *processor) finish() error {
	p.confirm()
	if err := p.w.flush(p.ctx); err != nil {
		p.fail(err)
	}
	if p.failed != nil {
		p.s.metrics.sweepFailures.Inc()
		return fmt.Errorf("sweep %s: %w", p.sweepID, p.failed)
	}
	return nil
}

// prune deletes the records of targets and zones no longer swept (an IP
// removed from the configuration, a zone dropped), and seen IPs older than
// max_age, at most maxPrunePerSweep per sweep.
func (s *Sweeper) prune(ctx context.Context, current map[dnsbl.Target]bool) int {
	zoneNames := map[string]bool{}
	for _, b := range s.checker.Zones() {
		zoneNames[b.Name()] = true
	}
	var stalePairs []pairKey
	for k := range s.records {
		if !current[k.target] || !zoneNames[k.zone] {
			stalePairs = append(stalePairs, k)
		}
	}
	var staleKeys []string
	for key, r := range s.zoneRec {
		if !zoneNames[r.Zone] {
			staleKeys = append(staleKeys, key)
		}
	}
	if s.cfg.SeenIPs.Enabled {
		s.seenMu.Lock()
		for key, r := range s.seen {
			if time.Since(r.LastSeen) > s.cfg.SeenIPs.MaxAge.Std() {
				staleKeys = append(staleKeys, key)
			}
		}
		s.seenMu.Unlock()
	}
	n := 0
	del := func(key string) bool {
		if n >= maxPrunePerSweep {
			return false
		}
		if err := s.kv.Delete(ctx, key); err != nil {
			s.log.Warn("prune state record", "key", key, "error", err)
			return false
		}
		n++
		return true
	}
	for _, k := range stalePairs {
		if del(stateKey(k.target, k.zone)) {
			delete(s.records, k)
		}
	}
	for _, key := range staleKeys {
		if del(key) {
			delete(s.zoneRec, key)
			s.seenMu.Lock()
			delete(s.seen, key)
			s.seenMu.Unlock()
		}
	}
	return n
}
