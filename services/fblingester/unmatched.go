package fblingester

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// alertRule names the alert this worker raises.
const alertRule = "unmatched_complaints"

// unmatchedWindow keeps the counted complaints of the last window, and
// whether each traced to something, to alert when the untraced share
// grows: that means our tracking header is being stripped, keys were
// rotated away, or someone else's mail is reported to us.
type unmatchedWindow struct {
	mu     sync.Mutex
	seen   []seenComplaint
	ids    map[string]bool // complaints in the window, so a resent report counts once
	firing bool
}

type seenComplaint struct {
	at        time.Time
	id        string
	unmatched bool
}

// add records one complaint and returns the share and count over the
// window, and the alert transition to publish ("" for none).
func (w *unmatchedWindow) add(id string, unmatched bool, now time.Time, cfg UnmatchedAlertConfig) (share float64, n int, transition string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ids == nil {
		w.ids = map[string]bool{}
	}
	cut := now.Add(-cfg.Window.Std())
	i := 0
	for i < len(w.seen) && w.seen[i].at.Before(cut) {
		delete(w.ids, w.seen[i].id)
		i++
	}
	w.seen = w.seen[i:]
	if !w.ids[id] {
		w.ids[id] = true
		w.seen = append(w.seen, seenComplaint{at: now, id: id, unmatched: unmatched})
	}
	bad := 0
	for _, s := range w.seen {
		if s.unmatched {
			bad++
		}
	}
	n = len(w.seen)
	share = float64(bad) / float64(n)
	switch {
	case !w.firing && n >= cfg.MinComplaints && share > cfg.Threshold:
		w.firing = true
		transition = schemas.AlertFiring
	case w.firing && share <= cfg.Threshold:
		w.firing = false
		transition = schemas.AlertResolved
	}
	return share, n, transition
}

// undo forgets a transition whose alert could not be published, so the
// next complaint tries again.
func (w *unmatchedWindow) undo(transition string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.firing = transition != schemas.AlertFiring
}

// observeComplaint feeds a stored, counted complaint to the window and
// publishes the alert on a transition. A failed alert publish is logged
// and retried with the next complaint; the complaint itself is stored.
func (in *Ingester) observeComplaint(ctx context.Context, ev *schemas.ComplaintReceived) {
	cfg := in.cfg.UnmatchedAlert
	share, n, transition := in.window.add(ev.ID, ev.TraceMethod == schemas.TraceNone, in.now(), cfg)
	in.m.unmatchedShare.Set(share)
	if transition == "" {
		return
	}
	a := &schemas.AlertRaised{
		Rule:      alertRule,
		Status:    transition,
		Severity:  schemas.AlertWarning,
		Subject:   "fbl:" + in.source.Host,
		DedupeKey: alertRule + ":" + in.source.Host,
		Summary: fmt.Sprintf("%.0f %% of %d complaints in the last %s traced to nothing of ours (limit %.0f %%)",
			100*share, n, cfg.Window.Std(), 100*cfg.Threshold),
		EventIDs:       []string{ev.ID},
		EvidenceNames:  []string{"unmatched_share", "complaints", "threshold", "window"},
		EvidenceValues: []string{strconv.FormatFloat(share, 'f', 4, 64), strconv.Itoa(n), strconv.FormatFloat(cfg.Threshold, 'f', 4, 64), cfg.Window.Std().String()},
	}
	if transition == schemas.AlertResolved {
		a.Severity = schemas.AlertInfo
	}
	in.silences.Stamp(a, in.now())
	_ = schemas.Stamp(a, in.source, in.now())
	if err := in.pub.Publish(ctx, a); err != nil {
		in.window.undo(transition)
		in.log.Warn("unmatched complaints alert not published; retried with the next complaint", "status", transition, "error", err)
		return
	}
	in.m.alerts.WithLabelValues(transition).Inc()
	in.log.Warn("unmatched complaints", "status", transition, "share", share, "complaints", n)
}
