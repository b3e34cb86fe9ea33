package complaintevaluator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the evaluator's subcommand and log name.
const WorkerName = "complaint-evaluator"

// drainTimeout bounds carrying out queued decisions at shutdown.
const drainTimeout = 10 * time.Second

// signalSubjects are the event subjects the rules read.
var signalSubjects = []string{
	schemas.SubjectComplaintReceived,
	schemas.SubjectDeliveryAttempted,
	schemas.SubjectDNSBLListed,
	schemas.SubjectDNSBLDelisted,
	schemas.SubjectDNSAudit,
	schemas.SubjectProbeMissing,
	schemas.SubjectProbeSent,
	schemas.SubjectProbeReceived,
	schemas.SubjectProbeLate,
	schemas.SubjectDMARCRecord,
	schemas.SubjectTLSRPTResult,
}

// Evaluator is the complaint-evaluator worker.
type Evaluator struct {
	cfg     Config
	js      jetstream.JetStream
	pub     *eventPublisher
	log     *slog.Logger
	set     worker.Settings
	metrics *metrics
	now     func() time.Time
	streams map[string]string // subject → stream

	// silences marks the alerts raised during a silence; nil when they
	// cannot be read.
	silences *silence.Store

	mu     sync.Mutex
	engine *Engine
	queue  chan Output
	ready  chan struct{}
	// seqs is the stream sequence of the last message fed to the engine,
	// by stream; inflight counts the outputs judged but not yet carried
	// out. A checkpoint is taken only when inflight is 0, so it never holds
	// a decision or alert that was not stored and published.
	seqs     map[string]uint64
	inflight int
	// ckpt is nil when checkpoints are off or the bucket is missing;
	// created is each stream's creation time (unix ns), and resumed says
	// the state came from a checkpoint.
	ckpt    *checkpointStore
	created map[string]int64
	resumed bool
}

// New checks the configuration and builds the worker; nothing is
// connected until Run.
func New(cfg Config, s worker.Settings) (*Evaluator, error) {
	var check config.Check
	check.Nest("complaint_evaluator", cfg.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	top, err := pipelines.Default()
	if err != nil {
		return nil, err
	}
	streams := map[string]string{}
	for _, subj := range append(signalSubjects, "mailmon.decision.>", schemas.SubjectAlertRaised) {
		st, ok := top.StreamFor(subj)
		if !ok {
			return nil, fmt.Errorf("no stream captures %s", subj)
		}
		streams[subj] = st.Name
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	e := &Evaluator{
		cfg:     cfg,
		js:      s.JetStream,
		log:     s.Logger,
		set:     s,
		metrics: m,
		now:     s.Now,
		streams: streams,
		queue:   make(chan Output, 4096),
		ready:   make(chan struct{}),
		seqs:    map[string]uint64{},
		created: map[string]int64{},
	}
	e.engine = NewEngine(cfg, s.Source)
	e.pub = &eventPublisher{settings: s}
	return e, nil
}

// Ready is closed once the state is rebuilt and the worker judges live
// events.
func (e *Evaluator) Ready() <-chan struct{} { return e.ready }

// Run rebuilds the state from the streams, then judges events as they
// arrive until ctx ends. Decisions, releases and alerts are carried out in
// order by one loop that retries each until it succeeds.
func (e *Evaluator) Run(ctx context.Context) error {
	kv, err := e.js.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("bucket %s (apply the pipelines first): %w", enforcement.Bucket, err)
	}
	if err := e.checkServerRetention(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	e.silences = silence.OpenForStamping(ctx, e.js, e.log)
	if e.silences != nil {
		defer e.silences.Close()
	}
	e.set.Health.Register(WorkerName, func(context.Context) error {
		select {
		case <-e.ready:
			return nil
		default:
			return errors.New("rebuilding state from the streams")
		}
	})
	began := time.Now()
	resume := e.loadCheckpoint(ctx)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()

	// The effector outlives ctx by a bounded drain, so the decisions,
	// releases and alerts already judged are carried out at shutdown
	// (what is not done in time is judged again at the next start).
	effects := &effector{e: e, kv: kv}
	effCtx, effCancel := context.WithCancel(context.WithoutCancel(ctx))
	effDone := make(chan struct{})
	go func() { effects.run(effCtx, ctx.Done()); close(effDone) }()
	defer func() {
		cancel(nil)
		wg.Wait() // the readers stopped: nothing more is queued
		t := time.AfterFunc(drainTimeout, effCancel)
		<-effDone
		t.Stop()
		effCancel()
		e.finalCheckpoint()
	}()

	started := e.now()
	e.mu.Lock()
	e.engine.Replaying = true
	e.mu.Unlock()

	// 1. Decisions: offences within the memory window, what is in force.
	decisionsCaught := make(chan struct{})
	wg.Go(func() {
		start := started.Add(-e.cfg.Decisions.Memory.Std())
		after := resume[e.streams["mailmon.decision.>"]]
		if err := e.follow(ctx, []string{"mailmon.decision.>"}, start, after, decisionsCaught, false); err != nil {
			cancel(err)
		}
	})
	// 1b. Our own alerts, the whole ALERT stream, up to now: what the
	// alert rules last published per dedupe key (what is firing), which
	// the replay below is compared with. Not followed live: the engine
	// knows what it publishes from then on.
	alertsCaught := make(chan struct{})
	wg.Go(func() {
		after := resume[e.streams[schemas.SubjectAlertRaised]]
		if err := e.follow(ctx, []string{schemas.SubjectAlertRaised}, time.Time{}, after, alertsCaught, true); err != nil {
			cancel(err)
		}
	})
	if !waitAll(ctx, decisionsCaught, alertsCaught) {
		return e.stopCause(ctx)
	}
	// 2. The bucket: a decision stored but whose event never went out is
	// republished; a lifted decision whose key survived is removed.
	if err := e.reconcile(ctx, kv); err != nil {
		if ctx.Err() != nil {
			return e.stopCause(ctx)
		}
		return fmt.Errorf("reconcile with bucket: %w", err)
	}
	// 3. Signals over the longest window, counted after each subject's
	// last decision. One consumer per stream, so the events of one stream
	// are judged in the order it holds them (a delisting after its
	// listing, a received probe after the missing ones before it).
	// The DNS stream is read whole: listings and their delistings are few,
	// and a listing alert read back from ALERT (which keeps as long) must
	// find its delisting however old the listing is.
	start := started.Add(-e.cfg.longestWindow())
	var caught []chan struct{}
	for _, subjects := range e.signalsByStream() {
		done := make(chan struct{})
		caught = append(caught, done)
		from := start
		if slices.Contains(subjects, schemas.SubjectDNSBLDelisted) {
			from = time.Time{}
		}
		after := resume[e.streams[subjects[0]]]
		wg.Go(func() {
			if err := e.follow(ctx, subjects, from, after, done, false); err != nil {
				cancel(err)
			}
		})
	}
	if !waitAll(ctx, caught...) {
		return e.stopCause(ctx)
	}
	// 4. Live: judge what the replay found, then every new event.
	e.mu.Lock()
	e.engine.Replaying = false
	now := e.now()
	out := append(e.engine.EvaluateAll(now), e.engine.Tick(now)...)
	e.inflight += len(out)
	stats := e.engine.Stats()
	subjects := e.engine.Subjects()
	e.mu.Unlock()
	// Outside the lock: the effector may need it to adopt a decision.
	e.enqueue(ctx, out)
	e.metrics.replaySeconds.Set(time.Since(began).Seconds())
	e.log.Info("state rebuilt", "seconds", time.Since(began).Seconds(), "from_checkpoint", e.resumed, "subjects", subjects,
		"complaints", stats.Complaints, "deliveries", stats.Deliveries, "partition", e.cfg.Partition, "partitions", e.cfg.Partitions)
	close(e.ready)

	tick := time.NewTicker(e.cfg.Tick.Std())
	defer tick.Stop()
	nextCheckpoint := time.Now().Add(e.cfg.Checkpoint.Interval.Std())
	for {
		select {
		case <-ctx.Done():
			return e.stopCause(ctx)
		case <-tick.C:
			e.mu.Lock()
			out := e.engine.Tick(e.now())
			e.inflight += len(out)
			e.metrics.subjects.Set(float64(e.engine.Subjects()))
			e.mu.Unlock()
			e.enqueue(ctx, out)
			if e.ckpt != nil && !time.Now().Before(nextCheckpoint) {
				// Busy (outputs not yet carried out): try at the next tick.
				if err := e.saveCheckpoint(ctx); !errors.Is(err, errCheckpointBusy) {
					nextCheckpoint = time.Now().Add(e.cfg.Checkpoint.Interval.Std())
				}
			}
		}
	}
}

// stopCause returns nil on a clean shutdown and the failure otherwise.
func (e *Evaluator) stopCause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func waitAll(ctx context.Context, chans ...chan struct{}) bool {
	for _, c := range chans {
		select {
		case <-c:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (e *Evaluator) enqueue(ctx context.Context, out []Output) {
	for _, o := range out {
		select {
		case e.queue <- o:
		case <-ctx.Done():
			return
		}
	}
}

// signalsByStream groups signalSubjects by the stream that holds them, in
// the order they are listed.
func (e *Evaluator) signalsByStream() [][]string {
	var groups [][]string
	index := map[string]int{}
	for _, subj := range signalSubjects {
		stream := e.streams[subj]
		i, ok := index[stream]
		if !ok {
			i = len(groups)
			index[stream] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], subj)
	}
	return groups
}

// follow reads subjects, all of one stream, from start (zero: the whole
// stream) with an ordered consumer (no durable state: every start reads
// the windows again) and feeds the engine. It closes caught when it has
// read what the stream held when it started, and returns then if
// untilCaught.
func (e *Evaluator) follow(ctx context.Context, subjects []string, start time.Time, after uint64, caught chan struct{}, untilCaught bool) error {
	stream := e.streams[subjects[0]]
	subject := strings.Join(subjects, ",") // for errors
	consCfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case after > 0: // the state holds everything up to after (a checkpoint)
		consCfg.DeliverPolicy, consCfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	case !start.IsZero():
		consCfg.DeliverPolicy, consCfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := e.js.OrderedConsumer(ctx, stream, consCfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read %s from %s: %w", subject, stream, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read %s from %s: %w", subject, stream, err)
	}
	stop := context.AfterFunc(ctx, iter.Stop)
	defer stop()
	backlog := true
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		backlog = false
		close(caught)
		if untilCaught {
			iter.Stop()
			return nil
		}
	}
	isDecision := slices.Contains(subjects, "mailmon.decision.>")
	isDelivery := slices.Contains(subjects, schemas.SubjectDeliveryAttempted)
	// Alerts read back on top of a checkpoint only say what was published:
	// the rules' memory is in the checkpoint and the replay.
	publishedOnly := e.resumed && slices.Contains(subjects, schemas.SubjectAlertRaised)
	for {
		msg, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read %s from %s: %w", subject, stream, err)
		}
		pending, seq := uint64(1), uint64(0)
		if md, err := msg.Metadata(); err == nil {
			pending, seq = md.NumPending, md.Sequence.Stream
		}
		ev, err := schemas.Decode(msg.Data())
		if err == nil {
			err = schemas.Validate(ev)
		}
		if err != nil {
			// The sink dead-letters malformed events; here they are skipped.
			e.metrics.events.WithLabelValues("invalid").Inc()
			e.mu.Lock()
			e.seqs[stream] = max(e.seqs[stream], seq)
			e.mu.Unlock()
		} else {
			e.metrics.events.WithLabelValues(ev.EventHeader().Type).Inc()
			e.mu.Lock()
			now := e.now()
			var out []Output
			if a, ok := ev.(*schemas.AlertRaised); ok && publishedOnly {
				e.engine.alertPublished(a)
			} else {
				out = e.engine.Observe(ev, now, isDecision && backlog)
			}
			if isDelivery && !e.engine.Replaying {
				out = append(out, e.holdWhileLagging(pending, now)...)
			}
			e.inflight += len(out)
			e.seqs[stream] = max(e.seqs[stream], seq)
			e.mu.Unlock()
			e.enqueue(ctx, out)
		}
		if backlog && pending == 0 {
			backlog = false
			close(caught)
			if untilCaught {
				iter.Stop()
				return nil
			}
		}
	}
}

// holdWhileLagging defers complaint judgments while the delivery reader
// is more than max_delivery_lag messages behind, and judges every subject
// once it has caught up. Called with e.mu held.
func (e *Evaluator) holdWhileLagging(pending uint64, now time.Time) []Output {
	limit := uint64(e.cfg.MaxDeliveryLag)
	switch {
	case limit == 0:
	case !e.engine.Hold && pending > limit:
		e.engine.Hold = true
		e.metrics.holds.Inc()
		e.log.Warn("deliveries lag behind; complaint judgments deferred", "pending", pending)
	case e.engine.Hold && pending == 0:
		e.engine.Hold = false
		e.log.Info("deliveries caught up; judging deferred complaints")
		return e.engine.EvaluateAll(now)
	}
	return nil
}

// reconcile compares the bucket with the decisions read from the stream.
func (e *Evaluator) reconcile(ctx context.Context, kv jetstream.KeyValue) error {
	now := e.now()
	records, err := enforcement.List(ctx, kv, time.Time{})
	if err != nil && records == nil {
		return err
	}
	if err != nil {
		e.log.Warn("undecodable entries in the enforcement bucket", "error", err)
	}
	inBucket := map[string]bool{}
	e.mu.Lock()
	var out []Output
	for _, r := range records {
		inBucket[r.DecisionID] = true
		out = append(out, e.engine.Adopt(r, now)...)
	}
	for _, r := range e.engine.ActiveRecords() {
		if inBucket[r.DecisionID] || !r.Active(now) {
			continue // present, or expired: Tick releases it
		}
		// In force by the stream, but gone from the bucket without a lift
		// event: deleted by hand. Nothing enforces it any more.
		e.log.Warn("decision missing from the bucket; treating it as lifted", "subject", r.Subject, "decision_id", r.DecisionID)
		out = append(out, e.engine.Forget(r, now)...)
	}
	e.inflight += len(out)
	e.mu.Unlock()
	e.enqueue(ctx, out)
	return nil
}

// effector carries out outputs in order, retrying each until it succeeds.
type effector struct {
	e  *Evaluator
	kv jetstream.KeyValue
}

// run carries out queued outputs until stop is closed, then what is still
// queued, until ctx ends.
func (f *effector) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-f.e.queue:
			if !f.applyWithRetry(ctx, o) {
				return
			}
			f.e.done()
		case <-stop:
			for {
				select {
				case o := <-f.e.queue:
					if !f.applyWithRetry(ctx, o) {
						f.e.log.Warn("shutdown: enforcement steps left undone; the next start judges again", "left", len(f.e.queue)+1)
						return
					}
					f.e.done()
				default:
					return
				}
			}
		}
	}
}

// applyWithRetry carries out o, retrying with backoff; false when ctx
// ended first.
func (f *effector) applyWithRetry(ctx context.Context, o Output) bool {
	delay := f.e.cfg.RetryMin.Std()
	for {
		err := f.apply(ctx, o)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.e.metrics.effectErrors.WithLabelValues(o.Kind.String()).Inc()
		f.e.log.Warn("enforcement step failed; retrying", "step", o.Kind.String(), "subject", subjectOf(o), "error", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return false
		}
		delay = min(delay*2, f.e.cfg.RetryMax.Std())
	}
}

func subjectOf(o Output) string {
	if o.Record != nil {
		return o.Record.Subject
	}
	if o.Alert != nil {
		return o.Alert.Subject
	}
	return ""
}

func (f *effector) apply(ctx context.Context, o Output) error {
	switch o.Kind {
	case OutDecide:
		adopted, err := f.store(ctx, *o.Record)
		if err != nil {
			return err
		}
		if adopted {
			return nil // another copy decided first; its events are its own
		}
		if err := f.e.pub.publish(ctx, o.Record.Event()); err != nil {
			return err
		}
		f.e.metrics.decisions.WithLabelValues(o.Record.Action, o.Record.Rule).Inc()
		f.e.log.Info("decision", "subject", o.Record.Subject, "action", o.Record.Action, "rule", o.Record.Rule,
			"offence", o.Record.Offence, "until", o.Record.Until, "decision_id", o.Record.DecisionID)
		// The decision is stored; only the alert is left, so a failure
		// from here on must not store the decision again.
		o.Kind = OutAlert
		return f.alertWithRetry(ctx, o)
	case OutRepublish:
		if err := f.e.pub.publish(ctx, o.Record.Event()); err != nil {
			return err
		}
		return f.publishAlert(ctx, o.Alert)
	case OutAlert:
		return f.publishAlert(ctx, o.Alert)
	case OutRelease:
		if err := f.remove(ctx, *o.Record); err != nil {
			return err
		}
		if err := f.e.pub.publish(ctx, o.Release); err != nil {
			return err
		}
		f.e.metrics.releases.Inc()
		f.e.log.Info("released", "subject", o.Record.Subject, "decision_id", o.Record.DecisionID)
		return f.publishAlert(ctx, o.Alert)
	case OutLifted:
		if err := f.remove(ctx, *o.Record); err != nil {
			return err
		}
		if o.Alert == nil {
			return nil
		}
		return f.publishAlert(ctx, o.Alert)
	}
	return nil
}

// publishAlert publishes a and counts it by rule and status.
func (f *effector) publishAlert(ctx context.Context, a *schemas.AlertRaised) error {
	f.e.silences.Stamp(a, f.e.now())
	if err := f.e.pub.publish(ctx, a); err != nil {
		return err
	}
	f.e.metrics.alerts.WithLabelValues(a.Rule, a.Status).Inc()
	return nil
}

// alertWithRetry publishes the alert of a stored decision, retrying here
// so the caller's retry loop never stores the decision twice.
func (f *effector) alertWithRetry(ctx context.Context, o Output) error {
	delay := f.e.cfg.RetryMin.Std()
	for {
		err := f.publishAlert(ctx, o.Alert)
		if err == nil || ctx.Err() != nil {
			return err
		}
		f.e.metrics.effectErrors.WithLabelValues("alert").Inc()
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(delay*2, f.e.cfg.RetryMax.Std())
	}
}

// store creates the decision's key with its TTL. If the key holds another
// decision in force (made by another copy or an earlier run), that one is
// adopted and adopted is true.
func (f *effector) store(ctx context.Context, rec enforcement.Record) (adopted bool, err error) {
	key := rec.SubjectOf().Key()
	var opts []jetstream.KVCreateOpt
	if !rec.Until.IsZero() {
		ttl := rec.Until.Sub(f.e.now())
		// The server keeps whole seconds; round up so the key never goes
		// before Until (readers check Until themselves).
		ttl = max((ttl+time.Second-1)/time.Second*time.Second, time.Second)
		opts = append(opts, jetstream.KeyTTL(ttl))
	}
	_, err = f.kv.Create(ctx, key, rec.Marshal(), opts...)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("store %s: %w", key, err)
	}
	entry, gerr := f.kv.Get(ctx, key)
	if gerr != nil {
		return false, fmt.Errorf("store %s: exists, but reading it failed: %w", key, gerr)
	}
	existing, derr := enforcement.Unmarshal(entry.Value())
	switch {
	case derr == nil && existing.DecisionID == rec.DecisionID:
		return false, nil // stored by an earlier attempt
	case derr == nil && existing.Active(f.e.now()):
		f.e.mu.Lock()
		f.e.engine.Replace(rec, existing)
		f.e.mu.Unlock()
		return true, nil
	}
	// Expired (not yet removed by the server) or unreadable: replace it.
	if err := f.kv.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil {
		return false, fmt.Errorf("store %s: remove stale entry: %w", key, err)
	}
	return f.store(ctx, rec)
}

// remove deletes the decision's key if it still holds this decision.
func (f *effector) remove(ctx context.Context, rec enforcement.Record) error {
	key := rec.SubjectOf().Key()
	entry, err := f.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	if cur, err := enforcement.Unmarshal(entry.Value()); err == nil && cur.DecisionID != rec.DecisionID {
		return nil // a newer decision holds the key
	}
	err = f.kv.Delete(ctx, key, jetstream.LastRevision(entry.Revision()))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	return nil
}

// eventPublisher publishes through the worker's Publisher, or a new one.
type eventPublisher struct {
	settings worker.Settings
	once     sync.Once
	p        interface {
		Publish(context.Context, schemas.Event) error
	}
}

func (p *eventPublisher) publish(ctx context.Context, ev schemas.Event) error {
	p.once.Do(func() {
		if p.settings.Publisher != nil {
			p.p = p.settings.Publisher
		}
	})
	if p.p == nil {
		return errors.New("no publisher")
	}
	if err := schemas.Validate(ev); err != nil {
		return fmt.Errorf("refusing to publish an invalid event: %w", err)
	}
	return p.p.Publish(ctx, ev)
}

type metrics struct {
	events        *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	releases      prometheus.Counter
	effectErrors  *prometheus.CounterVec
	subjects      prometheus.Gauge
	replaySeconds prometheus.Gauge
	holds         prometheus.Counter
	alerts        *prometheus.CounterVec
	// checkpoints
	checkpointUsed    prometheus.Gauge
	checkpointBytes   prometheus.Gauge
	checkpointSeconds prometheus.Gauge
	checkpointErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "complaint_evaluator"
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "events_total", Help: "Events read from the streams, by type (invalid: could not be decoded)."}, []string{"type"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "decisions_total", Help: "Decisions stored and published, by action and rule."}, []string{"action", "rule"}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "releases_total", Help: "Decisions released on expiry."}),
		effectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "effect_errors_total", Help: "KV writes and publishes that failed and are retried, by step."}, []string{"step"}),
		subjects: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "subjects", Help: "Subjects (customers, IPs, customer × provider) this copy holds state for."}),
		replaySeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "replay_seconds", Help: "How long rebuilding the state from the streams took at start."}),
		holds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "judgment_holds_total", Help: "Times complaint judgments were deferred because deliveries lagged more than max_delivery_lag."}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "alerts_total", Help: "Alerts published, by rule and status (firing, resolved)."}, []string{"rule", "status"}),
		checkpointUsed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "checkpoint_used", Help: "1 when the state at start came from a checkpoint, 0 when it was rebuilt from the streams."}),
		checkpointBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "checkpoint_bytes", Help: "Size of the last checkpoint saved."}),
		checkpointSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "checkpoint_seconds", Help: "How long saving the last checkpoint took."}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "checkpoint_errors_total", Help: "Checkpoints that could not be saved."}),
	}
	r := obs.NewRegistrar(reg)
	m.events = obs.Register(r, m.events)
	m.decisions = obs.Register(r, m.decisions)
	m.releases = obs.Register(r, m.releases)
	m.effectErrors = obs.Register(r, m.effectErrors)
	m.subjects = obs.Register(r, m.subjects)
	m.replaySeconds = obs.Register(r, m.replaySeconds)
	m.holds = obs.Register(r, m.holds)
	m.alerts = obs.Register(r, m.alerts)
	m.checkpointUsed = obs.Register(r, m.checkpointUsed)
	m.checkpointBytes = obs.Register(r, m.checkpointBytes)
	m.checkpointSeconds = obs.Register(r, m.checkpointSeconds)
	m.checkpointErrors = obs.Register(r, m.checkpointErrors)
	return m, r.Err()
}

// checkServerRetention holds the windows against what the server's streams
// keep. Validate checks them against the declared topology, but a server
// whose topology was not applied by this release (an external NATS, the
// admin elsewhere) may keep less, and the rebuild would then judge over
// truncated data.
func (e *Evaluator) checkServerRetention(ctx context.Context) error {
	top, err := pipelines.Default()
	if err != nil {
		return err
	}
	var check config.Check
	for _, w := range e.cfg.rebuildWindows() {
		for _, subject := range rebuiltFrom[w.key] {
			declared, ok := top.StreamFor(subject)
			if !ok {
				continue // Validate refused it
			}
			stream, err := e.js.Stream(ctx, declared.Name)
			if err != nil {
				return fmt.Errorf("stream %s: %w", declared.Name, err)
			}
			if keeps := stream.CachedInfo().Config.MaxAge; !fitsRetention(w.window, keeps) {
				check.Addf(w.path, "%s does not fit in what the server's %s stream keeps (max_age %s; the topology declares %s): apply the pipelines (mailmon pipelines apply) or shorten the window",
					w.window, declared.Name, config.Duration(keeps), config.Duration(time.Duration(declared.MaxAge)))
			}
		}
	}
	return check.Err()
}
