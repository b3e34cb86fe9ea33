package dnssweeper

import (
	"context"
	"sync"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// LeaseKey is the dns-sweeper's leader lease in the leases bucket: the
// copy holding it sweeps and audits.
const LeaseKey = "dns-sweeper"

// stateRetry is the wait before reading the state bucket again after a
// failure.
const stateRetry = 5 * time.Second

// lead sweeps and audits until ctx ends (the lease is lost or the worker
// stops).
func (s *Sweeper) lead(ctx context.Context) error {
	s.metrics.leader.Set(1)
	defer s.metrics.leader.Set(0)
	s.log.Info("leading: this copy sweeps and audits")
	var wg sync.WaitGroup
	if s.cfg.Audit.Enabled {
		wg.Go(func() { s.every(ctx, s.cfg.Audit.Interval.Std(), "audit", s.Audit) })
	}
	wg.Go(func() { s.schedule(ctx) })
	wg.Wait()
	return nil
}

// schedule runs the sweeps of a term: first what plan says, then one
// every interval, start to start. Each sweep starts from the state the
// bucket holds.
func (s *Sweeper) schedule(ctx context.Context) {
	var resume *lastSweep
	var next time.Time
	planned := false
	for {
		if planned && !worker.Sleep(ctx, time.Until(next)) {
			return
		}
		if err := s.reload(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("read state; retrying", "error", err)
			if !worker.Sleep(ctx, stateRetry) {
				return
			}
			continue
		}
		if !planned {
			planned = true
			s.sweepMu.Lock()
			resume, next = plan(s.last, s.current, s.cfg.Interval.Std(), time.Now())
			s.sweepMu.Unlock()
			if time.Now().Before(next) {
				continue
			}
		}
		id, started := schemas.NewID(), time.Now()
		if resume != nil {
			id, started = resume.SweepID, resume.Started
			s.log.Info("resuming a sweep left unfinished", "sweep_id", id, "started", started)
		}
		resume = nil
		if _, err := s.sweep(ctx, id, started); err != nil && ctx.Err() == nil {
			s.log.Error("sweep failed", "error", err)
		}
		next = started.Add(s.cfg.Interval.Std())
	}
}

// plan says what a copy that has just become the leader does first: finish
// the sweep the last leader left unfinished (sweep/current is not
// sweep/last), under its id, if it started less than an interval ago;
// else sweep when the last complete sweep is an interval old (at once
// without one).
func plan(last, current *lastSweep, interval time.Duration, now time.Time) (resume *lastSweep, next time.Time) {
	if current != nil && (last == nil || current.SweepID != last.SweepID) && now.Sub(current.Started) < interval {
		return current, now
	}
	if last == nil {
		return nil, now
	}
	return nil, last.Started.Add(interval)
}

// eventID is the id of an event of a sweep: derived from the sweep, the
// event type and the pair (or the zone alone, or nothing for the
// summary), with the sweep's start as its time part. A sweep resumed by
// another copy republishes an event under the id it had, so the DNS
// stream (within its duplicate window) and ClickHouse store it once; a
// sweep never has two events of one type for one pair.
func eventID(sweepID string, started time.Time, typ, target, zone string) string {
	return enforcement.StableID(started, "dns-sweeper", sweepID, typ, target, zone)
}
