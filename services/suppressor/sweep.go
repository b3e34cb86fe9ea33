package suppressor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// sweepLoop removes expired entries every sweep_interval, starting at once.
func (w *Worker) sweepLoop(ctx context.Context) {
	for {
		start := time.Now()
		st, err := w.sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.metrics.sweeps.WithLabelValues("failed").Inc()
			w.log.Warn("sweep of expired suppression entries failed", "removed", st.removed, "error", err)
		default:
			w.metrics.sweeps.WithLabelValues("ok").Inc()
			level := slog.LevelDebug
			if st.removed > 0 || st.undecodable > 0 {
				level = slog.LevelInfo
			}
			w.log.Log(ctx, level, "swept suppression entries", "entries", st.seen, "removed", st.removed,
				"undecodable", st.undecodable, "took", time.Since(start).Round(time.Millisecond))
		}
		w.rules.Prune(w.now())
		w.metrics.soft.Set(float64(w.rules.SoftTracked()))
		if !worker.Sleep(ctx, w.cfg.SweepInterval.Std()) {
			return
		}
	}
}

type sweepStats struct {
	seen, removed, undecodable int
}

// sweep reads every entry (a watch's initial values) and removes those
// expired at now as it goes; it also sets the entries gauge.
func (w *Worker) sweep(ctx context.Context) (sweepStats, error) {
	var st sweepStats
	now := w.now()
	byReason := map[string]int{}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watcher, err := w.kv.WatchAll(sctx, jetstream.IgnoreDeletes())
	if err != nil {
		return st, fmt.Errorf("watch %s: %w", suppression.Bucket, err)
	}
	defer watcher.Stop()
	idle := time.NewTimer(sweepIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-idle.C:
			return st, fmt.Errorf("watch %s: no entry for %s after %d", suppression.Bucket, sweepIdle, st.seen)
		case kve, ok := <-watcher.Updates():
			if !ok {
				return st, errors.New("watch ended before the initial values")
			}
			if kve == nil { // every entry seen
				for _, reason := range []string{schemas.SuppressHardBounce, schemas.SuppressSoftBounces,
					schemas.SuppressComplaint, schemas.SuppressManual, schemas.SuppressUnsubscribe} {
					w.metrics.entries.WithLabelValues(reason).Set(float64(byReason[reason]))
				}
				return st, nil
			}
			if kve.Operation() != jetstream.KeyValuePut {
				continue
			}
			st.seen++
			var e expiring
			if err := json.Unmarshal(kve.Value(), &e); err != nil || e.AddedID == "" {
				st.undecodable++
				continue
			}
			byReason[e.Reason]++
			if !e.Expires.IsZero() && !now.Before(e.Expires) {
				removed, err := w.expire(ctx, kve.Key(), e, now)
				if err != nil {
					return st, err
				}
				if removed {
					st.removed++
					byReason[e.Reason]--
				}
			}
			idle.Reset(sweepIdle)
		}
	}
}

// expiring is the part of an entry the sweep reads: decoding only these
// fields halves the cost of a pass over the bucket.
type expiring struct {
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
	AddedID string    `json:"added_id"`
}

// expire removes the expired entry under key, if it is still the one
// scanned and still expired. The event is dated at the expiry, and its id
// derives from it, so a retry publishes the same event.
func (w *Worker) expire(ctx context.Context, key string, e expiring, now time.Time) (bool, error) {
	keep := func(cur suppression.Entry) bool { return cur.AddedID != e.AddedID || cur.Active(now) }
	causeID := e.Expires.UTC().Format(time.RFC3339Nano)
	for attempt := 1; ; attempt++ {
		_, ok, err := w.writer.Remove(ctx, key, schemas.UnsuppressExpired, causeID, e.Expires, nil, "", "", keep)
		if errors.Is(err, suppression.ErrChanged) && attempt < changeRetries {
			continue
		}
		if err != nil {
			return false, err
		}
		if ok {
			w.metrics.removed.WithLabelValues(schemas.UnsuppressExpired).Inc()
		}
		return ok, nil
	}
}
