package mtalogtailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/logfollow"
	"github.com/mailmon/mailmon/services/internal/postfixlog"
)

// Headers of a dead-lettered log line, besides bus's reason, worker and
// time headers.
const (
	HeaderLogFile   = "Mailmon-Log-File"
	HeaderLogOffset = "Mailmon-Log-Offset"
)

// checkpoint is the document stored under a file's key in the bucket.
type checkpoint struct {
	Path    string               `json:"path"`
	Files   []logfollow.Position `json:"files"`
	Updated time.Time            `json:"updated"`
}

// fileTailer follows one configured file.
type fileTailer struct {
	t   *Tailer
	cfg FileConfig
	kv  jetstream.KeyValue // nil for standard input
	key string
	log *slog.Logger

	pub    *bus.Publisher
	src    logfollow.Source
	fl     *logfollow.Follower // nil for standard input
	parser postfixlog.Parser
	joiner *postfixlog.Joiner

	// pending holds, per file id, the position after the last line whose
	// events were published since the last commit.
	pending      map[string]logfollow.Position
	pendingLines int
	lastCommit   time.Time
	// stored is false until the follower's checkpoint was stored once.
	stored    bool
	lastStats logfollow.Stats
	lastEvict time.Time

	samples sampler

	lines, unparsed                                prometheus.Counter
	lagGauge                                       prometheus.Gauge
	rotations, truncations, lost, restarts, stores prometheus.Counter
	storeErrors                                    prometheus.Counter
}

func (t *Tailer) newFileTailer(f FileConfig, kv jetstream.KeyValue) *fileTailer {
	m := t.metrics
	ft := &fileTailer{
		t:           t,
		cfg:         f,
		key:         checkpointKey(f.Path),
		log:         t.log.With("file", f.Path),
		samples:     sampler{every: t.cfg.SampleInterval.Std()},
		lines:       m.lines.WithLabelValues(f.Path),
		unparsed:    m.unparsed.WithLabelValues(f.Path),
		lagGauge:    m.lag.WithLabelValues(f.Path),
		rotations:   m.rotations.WithLabelValues(f.Path),
		truncations: m.truncations.WithLabelValues(f.Path),
		lost:        m.lostFiles.WithLabelValues(f.Path),
		restarts:    m.restarts.WithLabelValues(f.Path),
		stores:      m.checkpoints.WithLabelValues(f.Path),
		storeErrors: m.checkpointErrors.WithLabelValues(f.Path),
	}
	if f.Path != "-" {
		ft.kv = kv
	}
	return ft
}

// run reads the file until ctx ends (or standard input ends), starting
// over from the last checkpoint after an error.
func (ft *fileTailer) run(ctx context.Context) {
	for {
		err := ft.session(ctx)
		if err == nil || ctx.Err() != nil {
			ft.t.setFailing(ft.cfg.Path, nil)
			return
		}
		ft.t.setFailing(ft.cfg.Path, err)
		ft.restarts.Inc()
		ft.log.Error("reading the log failed; starting again from the last checkpoint", "error", err, "retry_in", ft.t.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(ft.t.cfg.RetryInterval.Std()):
		}
	}
}

// session opens the file at its checkpoint and publishes its lines until
// ctx ends (nil after a drain), standard input ends (nil), or something
// fails (the error).
func (ft *fileTailer) session(ctx context.Context) error {
	cfg := ft.t.cfg
	ft.pub = ft.t.newPublisher()
	ft.parser = postfixlog.Parser{Ref: time.Now(), Location: ft.t.zone}
	ft.joiner = postfixlog.NewJoiner(postfixlog.JoinerConfig{TrackingHeader: cfg.TrackingHeader})
	ft.pending = map[string]logfollow.Position{}
	ft.pendingLines, ft.lastCommit, ft.lastStats = 0, time.Now(), logfollow.Stats{}

	if ft.cfg.Path == "-" {
		ft.src = logfollow.NewStreamReader(ft.t.stdin, "-", int(cfg.MaxLineBytes), 0)
	} else {
		saved, err := ft.loadCheckpoint(ctx)
		if err != nil {
			return err
		}
		ft.stored = saved != nil
		globs := ft.cfg.RotatedGlobs
		if len(globs) == 0 {
			globs = logfollow.DefaultRotatedGlobs(ft.cfg.Path)
		}
		fl, err := logfollow.Open(logfollow.Options{
			Path:         ft.cfg.Path,
			RotatedGlobs: globs,
			PollInterval: cfg.PollInterval.Std(),
			RotateGrace:  cfg.RotateGrace.Std(),
			MaxLineBytes: int(cfg.MaxLineBytes),
			StartAtEnd:   cfg.StartAtEnd,
			Logger:       ft.log,
		}, saved)
		if err != nil {
			return err
		}
		ft.fl, ft.src = fl, fl
		if saved != nil {
			ft.replay()
		}
	}
	defer ft.src.Close()

	for {
		if ctx.Err() != nil {
			return ft.drain(ctx)
		}
		line, ok, err := ft.src.Next()
		if errors.Is(err, io.EOF) {
			return ft.commit(ctx) // standard input ended
		}
		if err != nil {
			return err
		}
		if ok {
			if err := ft.handle(ctx, line); err != nil {
				if ctx.Err() != nil {
					return ft.drain(ctx)
				}
				return err
			}
			if ft.pendingLines >= cfg.CommitLines || time.Since(ft.lastCommit) >= cfg.CommitInterval.Std() {
				if err := ft.commit(ctx); err != nil && ctx.Err() == nil {
					return err
				}
			}
			continue
		}
		// Caught up: confirm and checkpoint what was published, then wait.
		if err := ft.commit(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		ft.idle()
		ft.src.Wait(ctx)
	}
}

// drain confirms the publishes and stores the checkpoint at shutdown,
// within drain_timeout; a crash-testing tailer skips it. runCtx has ended:
// the drain keeps its values but not its cancellation.
func (ft *fileTailer) drain(runCtx context.Context) error {
	if ft.t.crashOnCancel {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), ft.t.cfg.DrainTimeout.Std())
	defer cancel()
	if err := ft.commit(ctx); err != nil {
		ft.log.Warn("shutdown: could not confirm the last events; they are read again at the next start", "error", err)
	}
	return nil
}

// replay feeds the lines before the checkpoint to the joiner, unpublished,
// so that deliveries after a restart get their message's context.
func (ft *fileTailer) replay() {
	lines, err := ft.fl.Lookback(int64(ft.t.cfg.LookbackBytes))
	if err != nil {
		ft.log.Warn("cannot read the lines before the checkpoint", "error", err)
		return
	}
	var pl postfixlog.Line
	for _, line := range lines {
		if ft.parser.Parse(line.Text, line.Offset, &pl) {
			ft.joiner.Add(&pl)
		}
	}
	ft.log.Info("resumed from checkpoint", "context_lines", len(lines))
}

// handle parses, joins and publishes one line.
func (ft *fileTailer) handle(ctx context.Context, line logfollow.Line) error {
	ft.lines.Inc()
	var pl postfixlog.Line
	if !ft.parser.Parse(line.Text, line.Offset, &pl) {
		ft.unparsed.Inc()
		if ft.samples.due("unparsed") {
			ft.log.Warn("unparsed log line (sampled)", "offset", line.Offset, "line", clip(line.Text, 300))
		}
		if err := ft.deadLetter(ctx, line, "unparsed", "not a Postfix or Exim log line: the syslog or Exim header was not understood"); err != nil {
			return err
		}
		ft.done(line)
		return nil
	}
	var events []*schemas.DeliveryAttempted
	switch r := ft.joiner.Add(&pl).(type) {
	case *postfixlog.Delivery:
		events = ft.t.deliveryEvents(r, line, ft)
	case *postfixlog.Reject:
		if ft.t.cfg.PublishRejects {
			events = ft.t.rejectEvents(r, line, ft)
		}
	}
	for _, ev := range events {
		if err := schemas.Validate(ev); err != nil {
			if err := ft.deadLetter(ctx, line, "invalid_event", err.Error()); err != nil {
				return err
			}
			continue
		}
		if err := ft.pub.PublishAsync(ctx, ev); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		ft.t.metrics.events.WithLabelValues(ev.Status).Inc()
	}
	ft.done(line)
	return nil
}

// done records that line's events were all handed to the publisher: its
// position goes into the next checkpoint. (A line whose publish failed
// half-way is not done; it is read again.)
func (ft *fileTailer) done(line logfollow.Line) {
	ft.pendingLines++
	ft.pending[line.FileID] = line.Next
}

// deadLetter copies a line that cannot become an event to the dead-letter
// subject, with the reason. Its message id comes from the line's place, so
// a line read again is stored once.
func (ft *fileTailer) deadLetter(ctx context.Context, line logfollow.Line, reason, detail string) error {
	ft.t.metrics.deadLettered.WithLabelValues(reason).Inc()
	sum := sha256.Sum256([]byte(line.FileID + "\x00" + strconv.FormatInt(line.Offset, 10)))
	id := "dlq." + WorkerName + "." + hex.EncodeToString(sum[:12])
	hdr := nats.Header{}
	hdr.Set(bus.HeaderDeadLetterReason, reason+": "+clip(detail, 900))
	hdr.Set(bus.HeaderDeadLetterWorker, WorkerName)
	hdr.Set(bus.HeaderDeadLetterTime, time.Now().UTC().Format(time.RFC3339Nano))
	hdr.Set(HeaderLogFile, line.Path)
	hdr.Set(HeaderLogOffset, strconv.FormatInt(line.Offset, 10))
	if err := ft.pub.PublishRaw(ctx, bus.DeadLetterSubject(WorkerName), id, []byte(line.Text), hdr); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

// commit waits for JetStream to confirm every event published so far and
// then stores the checkpoint: a position is stored only after the events of
// the lines before it are.
func (ft *fileTailer) commit(ctx context.Context) error {
	if ft.pendingLines == 0 && ft.stored {
		return nil
	}
	if err := ft.pub.Flush(ctx); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	ft.lastCommit = time.Now()
	ft.pendingLines = 0
	ft.parser.Ref = ft.lastCommit // keeps the year of RFC 3164 stamps right across New Year
	if ft.fl == nil {
		clear(ft.pending)
		return nil
	}
	for _, p := range ft.pending {
		ft.fl.Handled(p)
	}
	clear(ft.pending)
	doc, err := json.Marshal(checkpoint{Path: ft.cfg.Path, Files: ft.fl.Checkpoint(), Updated: ft.lastCommit.UTC()})
	if err != nil {
		return err
	}
	if _, err := ft.kv.Put(ctx, ft.key, doc); err != nil {
		// The positions stay in memory and go out with the next commit; a
		// crash before that reads a little more again.
		ft.storeErrors.Inc()
		ft.log.Warn("cannot store the checkpoint", "error", err)
		return nil
	}
	ft.stored = true
	ft.stores.Inc()
	return nil
}

// loadCheckpoint reads the file's checkpoint; nil if there is none.
func (ft *fileTailer) loadCheckpoint(ctx context.Context) ([]logfollow.Position, error) {
	e, err := ft.kv.Get(ctx, ft.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load checkpoint: %w", err)
	}
	var cp checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		// A checkpoint we cannot read is as good as none; say so loudly.
		ft.log.Error("stored checkpoint is unreadable; starting without it", "error", err)
		return nil, nil
	}
	return cp.Files, nil
}

// idle updates the lag and rotation metrics and lets the joiner forget
// messages of a log that went quiet.
func (ft *fileTailer) idle() {
	ft.lagGauge.Set(float64(ft.src.Lag()))
	if ft.fl != nil {
		s := ft.fl.Stats()
		ft.rotations.Add(float64(s.Rotations - ft.lastStats.Rotations))
		ft.truncations.Add(float64(s.Truncations - ft.lastStats.Truncations))
		ft.lost.Add(float64(s.Lost - ft.lastStats.Lost))
		ft.lastStats = s
	}
	if now := time.Now(); now.Sub(ft.lastEvict) >= time.Minute {
		ft.joiner.Evict(now)
		ft.lastEvict = now
	}
}

// sampler lets one log line through per kind and interval.
type sampler struct {
	every time.Duration
	last  map[string]time.Time
}

func (s *sampler) due(kind string) bool {
	now := time.Now()
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	if now.Sub(s.last[kind]) < s.every {
		return false
	}
	s.last[kind] = now
	return true
}

// clip keeps logged and dead-letter texts short.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
