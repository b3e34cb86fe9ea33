package complaintevaluator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// errCheckpointBusy: outputs judged are not yet carried out, so the state
// is not one to save.
var errCheckpointBusy = errors.New("enforcement steps in progress")

// done counts one output carried out.
func (e *Evaluator) done() {
	e.mu.Lock()
	e.inflight--
	e.mu.Unlock()
}

// streamNames lists the streams the worker reads, sorted.
func (e *Evaluator) streamNames() []string {
	var names []string
	for _, s := range e.streams {
		if !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return names
}

// loadCheckpoint opens the checkpoint store and, when the last checkpoint
// fits this configuration and these streams, puts its state in the engine
// and returns where to read each stream from (the sequence after which to
// start; absent or 0: as a full rebuild). It returns nil, and logs why,
// when the state must be rebuilt from the streams.
func (e *Evaluator) loadCheckpoint(ctx context.Context) map[string]uint64 {
	if !e.cfg.Checkpoint.Enabled {
		return nil
	}
	store, err := openCheckpointStore(ctx, e.js, e.cfg.Partition, e.cfg.Partitions)
	if err != nil {
		e.log.Warn("checkpoints off: every start rebuilds the state from the streams", "error", err)
		return nil
	}
	// Without the creation times, no checkpoint can be checked or written.
	for _, name := range e.streamNames() {
		st, err := e.js.Stream(ctx, name)
		if err != nil {
			e.log.Warn("checkpoints off: stream info", "stream", name, "error", err)
			return nil
		}
		e.created[name] = st.CachedInfo().Created.UnixNano()
	}
	e.ckpt = store
	resume, why := e.useCheckpoint(ctx)
	if resume == nil {
		e.metrics.checkpointUsed.Set(0)
		e.log.Info("no usable checkpoint; rebuilding the state from the streams", "reason", why)
		return nil
	}
	e.metrics.checkpointUsed.Set(1)
	return resume
}

func (e *Evaluator) useCheckpoint(ctx context.Context) (map[string]uint64, string) {
	data, err := e.ckpt.Load(ctx)
	if err != nil {
		return nil, "unreadable: " + err.Error()
	}
	if data == nil {
		return nil, fmt.Sprintf("none for partition %d of %d", e.cfg.Partition, e.cfg.Partitions)
	}
	c, err := decodeCheckpoint(data)
	if err != nil {
		return nil, err.Error()
	}
	if c.Partition != e.cfg.Partition || c.Partitions != e.cfg.Partitions {
		return nil, fmt.Sprintf("taken by partition %d of %d", c.Partition, c.Partitions)
	}
	if c.ConfigHash != configHash(e.cfg) {
		return nil, "the configuration changed since it was taken"
	}
	taken := fromUnixNano(c.TakenAt)
	if age := e.now().Sub(taken); age > e.cfg.longestWindow() {
		return nil, fmt.Sprintf("taken %s ago, longer than the longest window", age.Round(time.Second))
	}
	resume := map[string]uint64{}
	for _, name := range e.streamNames() {
		pos, ok := c.streamPos(name)
		if !ok {
			return nil, "it does not cover stream " + name
		}
		if pos.Seq == 0 {
			continue // nothing read: from the window's start, as a rebuild
		}
		if pos.Created != e.created[name] {
			return nil, "stream " + name + " was created again since"
		}
		st, err := e.js.Stream(ctx, name)
		if err != nil {
			return nil, "stream " + name + ": " + err.Error()
		}
		if last := st.CachedInfo().State.LastSeq; last < pos.Seq {
			return nil, fmt.Sprintf("stream %s ends at %d, before the checkpoint's %d", name, last, pos.Seq)
		}
		resume[name] = pos.Seq
	}
	e.mu.Lock()
	err = restoreEngine(e.cfg, e.engine, c.Engine)
	if err == nil {
		for name, seq := range resume {
			e.seqs[name] = seq
		}
		e.resumed = true
	}
	e.mu.Unlock()
	if err != nil {
		return nil, "state does not fit: " + err.Error()
	}
	e.log.Info("state loaded from checkpoint", "taken_at", taken, "bytes", len(data), "subjects", e.engine.Subjects())
	return resume, ""
}

// saveCheckpoint writes the engine's state with the positions of the
// streams it covers. It returns errCheckpointBusy, writing nothing, while
// outputs are judged but not carried out.
func (e *Evaluator) saveCheckpoint(ctx context.Context) error {
	began := time.Now()
	alerts := e.streams[schemas.SubjectAlertRaised]
	// Every alert this copy published is in ALERT up to its last sequence
	// now, and its judgement is in the state taken below: a start reads
	// only the alerts after it. (One published between the two is read
	// again, which only records once more that it was published.) The
	// other streams' positions are what was read.
	infoCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := e.js.Stream(infoCtx, alerts)
	cancel()
	if err != nil {
		return e.checkpointFailed(fmt.Errorf("stream %s: %w", alerts, err))
	}
	alertsLast := st.CachedInfo().State.LastSeq
	e.mu.Lock()
	if e.inflight > 0 {
		e.mu.Unlock()
		return errCheckpointBusy
	}
	c := &checkpoint{Version: checkpointVersion, ConfigHash: configHash(e.cfg), Partition: e.cfg.Partition, Partitions: e.cfg.Partitions,
		TakenAt: unixNano(e.now())}
	for _, name := range e.streamNames() {
		seq := e.seqs[name]
		if name == alerts {
			seq = alertsLast
		}
		c.Streams = append(c.Streams, streamPos{Stream: name, Seq: seq, Created: e.created[name]})
	}
	c.Engine = e.engine.snapshot()
	e.mu.Unlock()
	data, err := encodeCheckpoint(c)
	if err != nil {
		return e.checkpointFailed(err)
	}
	if err := e.ckpt.Save(ctx, data, fromUnixNano(c.TakenAt)); err != nil {
		return e.checkpointFailed(err)
	}
	e.metrics.checkpointBytes.Set(float64(len(data)))
	e.metrics.checkpointSeconds.Set(time.Since(began).Seconds())
	return nil
}

func (e *Evaluator) checkpointFailed(err error) error {
	e.metrics.checkpointErrors.Inc()
	e.log.Warn("checkpoint not saved; the next start reads more of the streams", "error", err)
	return err
}

// finalCheckpoint saves the state at a clean stop, when it is complete
// (rebuilt) and every output was carried out.
func (e *Evaluator) finalCheckpoint() {
	if e.ckpt == nil {
		return
	}
	select {
	case <-e.ready:
	default:
		return // stopped while rebuilding: the last checkpoint stays
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := e.saveCheckpoint(ctx); errors.Is(err, errCheckpointBusy) {
		e.log.Info("no checkpoint at stop: enforcement steps were left undone; the last checkpoint stays")
	}
}

// alertPublished takes one of this worker's alerts read back from ALERT
// after a checkpoint: it only records what was published under its key,
// so the start publishes nothing twice. Unlike alertSeen it does not seed
// the rules' memory: the checkpoint holds it, and the replay of the
// signals after the checkpoint brings it up to date.
func (e *Engine) alertPublished(a *schemas.AlertRaised) {
	if a.Source.Worker != e.src.Worker || !slices.Contains(trackedRules, a.Rule) ||
		!strings.HasPrefix(a.DedupeKey, a.Rule+"/") || !e.ownsAlertSubject(a.Subject) {
		return
	}
	if a.Status != schemas.AlertFiring {
		delete(e.alerts.published, a.DedupeKey)
		return
	}
	var members []string
	if a.Rule == RuleBlocklist {
		evidence := map[string]string{}
		for i, n := range a.EvidenceNames {
			if i < len(a.EvidenceValues) {
				evidence[n] = a.EvidenceValues[i]
			}
		}
		zones := evidence["zones"]
		if zones == "" {
			zones = evidence["zone"] // an alert of an older release
		}
		members = splitList(zones)
	}
	e.alerts.published[a.DedupeKey] = publishedAlert{status: a.Status, severity: a.Severity, members: strings.Join(members, ",")}
}
