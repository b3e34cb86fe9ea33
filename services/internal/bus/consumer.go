package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
)

const defaultDrainTimeout = 15 * time.Second

// drainGrace is how long Consume still waits, after the drain timeout has
// cancelled the handlers' context, for handlers to notice and return.
const drainGrace = time.Second

// defaultBackoff spaces retries when neither the options nor the consumer
// configure any: quick enough for a blip, slow enough for a restart.
var defaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute}

// workerName is the kebab-case form worker names take; it is also a valid
// subject token, which the dead-letter subject needs.
var workerName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// Msg is one delivery of a stream message to a handler.
type Msg struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Deliveries counts deliveries of this message to the consumer,
	// including this one: 1 the first time.
	Deliveries uint64
	StreamSeq  uint64
	Stream     string
	Consumer   string
	// Stored is when the stream stored the message.
	Stored time.Time
}

// Handler processes one message. It returns nil once the message's side
// effects are durable; Permanent(err) when retrying cannot help; any other
// error to have the message redelivered later. Handlers must be idempotent
// by event id: a message can be delivered again after a crash or a lost ack.
type Handler func(ctx context.Context, m *Msg) error

// ConsumeOptions configures Consume.
type ConsumeOptions struct {
	// Worker is the kebab-case worker name; dead letters go to
	// mailmon.dlq.<Worker>, and metrics carry it as the worker label.
	Worker string
	// Stream and Durable name an existing durable pull consumer with explicit
	// acks. Its attempt limit (see Consume) and AckWait govern retries and
	// heartbeats.
	Stream, Durable string
	// Concurrency is the number of handlers running at once. Default 1.
	Concurrency int
	// Backoff is the redelivery delay after the n-th failed delivery; the
	// last entry repeats. Default: the consumer's own BackOff, else 1 s, 5 s,
	// 30 s, 1 min.
	Backoff []time.Duration
	// InProgressEvery is how often a handler still running tells the server
	// to wait longer. Default: the consumer's AckWait / 3.
	InProgressEvery time.Duration
	// PullMaxMessages is how many messages the client buffers ahead of the
	// handlers. Default: the client library's (500).
	PullMaxMessages int
	// DrainTimeout bounds the shutdown: handlers running when ctx ends and
	// buffered messages are finished within it; then the handlers' context
	// is cancelled and unstarted messages are returned to the server.
	// Default 15 s.
	DrainTimeout time.Duration
	// AckSync waits for the server to confirm each ack. Off by default:
	// handlers are idempotent, so a lost ack costs only a redelivery.
	AckSync bool
	// Publisher publishes dead letters. Default: a new Publisher on js.
	Publisher *Publisher
	// Logger receives dead letters (warn) and failures; nothing is logged
	// per message otherwise. Default: discard.
	Logger *slog.Logger
	// Metrics receives the mailmon_bus_* metrics; nil registers nothing.
	Metrics prometheus.Registerer
}

func (o *ConsumeOptions) validate() error {
	var problems []error
	if !workerName.MatchString(o.Worker) {
		problems = append(problems, fmt.Errorf("worker %q is not a kebab-case name", o.Worker))
	}
	if o.Stream == "" {
		problems = append(problems, errors.New("stream is required"))
	}
	if o.Durable == "" {
		problems = append(problems, errors.New("durable is required"))
	}
	if o.Concurrency < 0 {
		problems = append(problems, fmt.Errorf("concurrency %d is negative", o.Concurrency))
	}
	if o.PullMaxMessages < 0 {
		problems = append(problems, fmt.Errorf("pull max messages %d is negative", o.PullMaxMessages))
	}
	if o.InProgressEvery < 0 {
		problems = append(problems, fmt.Errorf("in-progress interval %s is negative", o.InProgressEvery))
	}
	if o.DrainTimeout < 0 {
		problems = append(problems, fmt.Errorf("drain timeout %s is negative", o.DrainTimeout))
	}
	for i, d := range o.Backoff {
		if d < 0 {
			problems = append(problems, fmt.Errorf("backoff[%d] %s is negative", i, d))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bus: consume options: %w", errors.Join(problems...))
	}
	return nil
}

// consumer is one running Consume call.
type consumer struct {
	worker      string
	handler     Handler
	cons        jetstream.Consumer
	publisher   *Publisher
	log         *slog.Logger
	metrics     *consumeMetrics
	concurrency int
	pullMax     int
	backoff     []time.Duration
	// maxDeliver is the consumer's MaxDeliver; 0 means unlimited. Past it
	// the server never delivers a message again, whatever made it count.
	maxDeliver uint64
	// maxAttempts is the delivery from which a failing handler has the
	// message dead-lettered; 0 means never (retried until it succeeds). It
	// is the consumer's mailmon_max_attempts metadata, or its MaxDeliver.
	maxAttempts     uint64
	inProgressEvery time.Duration
	drainTimeout    time.Duration
	ackSync         bool
}

// Consume runs h for every message of an existing durable pull consumer until
// ctx ends, then drains: it stops pulling, lets running handlers and the
// messages already buffered finish (bounded by DrainTimeout) and returns nil.
// It returns an error if the consumer cannot be bound, or if consumption
// stops on its own (connection closed, consumer deleted).
//
// Outcomes: nil acks the message. Permanent errors and panics copy it to
// mailmon.dlq.<worker> and terminate it. Other errors nak it with the backoff
// delay, unless the delivery has reached the consumer's attempt limit: then
// the message is dead-lettered. The limit is the consumer's metadata
// pipelines.MetadataMaxAttempts on a consumer with unlimited deliveries (a
// nak, a shutdown or an AckWait expiry then never loses a message), or else
// its MaxDeliver. If the dead-letter publish fails the message is kept (nak
// while it has attempts left, else retried in place), never terminated.
func Consume(ctx context.Context, js jetstream.JetStream, opts ConsumeOptions, h Handler) error {
	if js == nil {
		return errors.New("bus: consume: nil JetStream")
	}
	if h == nil {
		return errors.New("bus: consume: nil handler")
	}
	if err := opts.validate(); err != nil {
		return err
	}
	c, err := bind(ctx, js, opts, h)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	return c.run(ctx)
}

func bind(ctx context.Context, js jetstream.JetStream, opts ConsumeOptions, h Handler) (*consumer, error) {
	cons, err := js.Consumer(ctx, opts.Stream, opts.Durable)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("bus: consumer %s on stream %s does not exist (apply the pipelines first): %w", opts.Durable, opts.Stream, err)
		}
		return nil, fmt.Errorf("bus: bind consumer %s on stream %s: %w", opts.Durable, opts.Stream, err)
	}
	cfg := cons.CachedInfo().Config
	if cfg.AckPolicy != jetstream.AckExplicitPolicy {
		return nil, fmt.Errorf("bus: consumer %s on stream %s has ack policy %s; the bus needs explicit acks", opts.Durable, opts.Stream, cfg.AckPolicy)
	}
	ackWait := cfg.AckWait
	if ackWait <= 0 {
		ackWait = 30 * time.Second // the server's default
	}
	c := &consumer{
		worker:          opts.Worker,
		handler:         h,
		cons:            cons,
		publisher:       opts.Publisher,
		log:             opts.Logger,
		concurrency:     max(opts.Concurrency, 1),
		pullMax:         opts.PullMaxMessages,
		backoff:         opts.Backoff,
		inProgressEvery: opts.InProgressEvery,
		drainTimeout:    opts.DrainTimeout,
		ackSync:         opts.AckSync,
	}
	if cfg.MaxDeliver > 0 {
		c.maxDeliver = uint64(cfg.MaxDeliver)
	}
	c.maxAttempts, err = attemptLimit(cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on stream %s: %w", opts.Durable, opts.Stream, err)
	}
	if len(c.backoff) == 0 {
		c.backoff = cfg.BackOff
	}
	if len(c.backoff) == 0 {
		c.backoff = defaultBackoff
	}
	if c.inProgressEvery == 0 {
		c.inProgressEvery = ackWait / 3
	}
	if c.inProgressEvery >= ackWait {
		return nil, fmt.Errorf("bus: in-progress interval %s must be shorter than the consumer's ack wait %s", c.inProgressEvery, ackWait)
	}
	if c.drainTimeout == 0 {
		c.drainTimeout = defaultDrainTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.publisher == nil {
		c.publisher = NewPublisher(js, PublisherOptions{Worker: opts.Worker, Metrics: opts.Metrics})
	}
	collectors, err := newBusCollectors(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("bus: register metrics: %w", err)
	}
	c.metrics = newConsumeMetrics(collectors, opts.Worker)
	if c.maxDeliver > 0 {
		c.log.Warn("bus: consumer has a delivery limit: a message that shutdowns or AckWait expiries bring to it is dropped by the server with no dead letter; declare max_deliver -1 and max_attempts",
			"stream", opts.Stream, "consumer", opts.Durable, "max_deliver", c.maxDeliver)
	}
	return c, nil
}

// attemptLimit reads the consumer's attempt limit: its max-attempts
// metadata when it has one, which needs unlimited deliveries, else its
// MaxDeliver (the server's limit, which every delivery counts towards), else
// none.
func attemptLimit(cfg jetstream.ConsumerConfig) (uint64, error) {
	text, ok := cfg.Metadata[pipelines.MetadataMaxAttempts]
	if !ok {
		return uint64(max(cfg.MaxDeliver, 0)), nil
	}
	limit, err := strconv.ParseUint(text, 10, 64)
	if err != nil || limit == 0 {
		return 0, fmt.Errorf("metadata %s %q is not a positive integer", pipelines.MetadataMaxAttempts, text)
	}
	if cfg.MaxDeliver > 0 {
		return 0, fmt.Errorf("metadata %s needs unlimited deliveries, but max_deliver is %d (apply the pipelines)", pipelines.MetadataMaxAttempts, cfg.MaxDeliver)
	}
	return limit, nil
}

// serverGivesUp reports whether the server would never deliver a message
// again after this delivery, so that a nak would lose it.
func (c *consumer) serverGivesUp(deliveries uint64) bool {
	return c.maxDeliver > 0 && deliveries >= c.maxDeliver
}

// outOfAttempts reports whether a failure on this delivery dead-letters the
// message.
func (c *consumer) outOfAttempts(deliveries uint64) bool {
	return c.maxAttempts > 0 && deliveries >= c.maxAttempts
}

// PullExpiry is how long one pull request lives on the server. The server
// keeps a request after its subscriber has gone (a drain, a crash) and
// sends it messages until it expires; each is stranded until AckWait and
// then sent to the dead request again. A short expiry bounds that, and
// re-arms a subscription the server dropped (a paused consumer, a leader
// change) within seconds.
const PullExpiry = 5 * time.Second

func (c *consumer) run(ctx context.Context) error {
	pullOpts := []jetstream.PullMessagesOpt{jetstream.PullExpiry(PullExpiry)}
	if c.pullMax > 0 {
		pullOpts = append(pullOpts, jetstream.PullMaxMessages(c.pullMax))
	}
	iter, err := c.cons.Messages(pullOpts...)
	if err != nil {
		return fmt.Errorf("bus: start pulling: %w", err)
	}
	defer iter.Stop()

	// Handlers keep running through the drain, so their context is not ctx;
	// it ends only when the drain timeout passes.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	abandon := make(chan struct{})
	slots := make([]inflight, c.concurrency)
	stopErrs := make(chan error, c.concurrency)

	var workers sync.WaitGroup
	for i := range slots {
		workers.Go(func() { c.work(handlerCtx, iter, &slots[i], abandon, stopErrs) })
	}
	workersDone := make(chan struct{})
	go func() {
		workers.Wait()
		close(workersDone)
	}()
	stopHeartbeats := make(chan struct{})
	heartbeatsDone := make(chan struct{})
	go func() {
		defer close(heartbeatsDone)
		c.heartbeat(slots, stopHeartbeats)
	}()
	defer func() {
		close(stopHeartbeats)
		<-heartbeatsDone
	}()

	select {
	case <-workersDone:
		// The iterator closed although nobody asked it to.
		if ctx.Err() != nil {
			return nil
		}
		select {
		case err := <-stopErrs:
			return fmt.Errorf("bus: consumer %s on stream %s stopped: %w", c.cons.CachedInfo().Name, c.cons.CachedInfo().Stream, err)
		default:
			return fmt.Errorf("bus: consumer %s on stream %s stopped unexpectedly", c.cons.CachedInfo().Name, c.cons.CachedInfo().Stream)
		}
	case <-ctx.Done():
	}

	// Stop pulling; the iterator still hands out what is already buffered.
	iter.Drain()
	drainTimer := time.NewTimer(c.drainTimeout)
	defer drainTimer.Stop()
	select {
	case <-workersDone:
		return nil
	case <-drainTimer.C:
	}
	close(abandon)
	cancelHandlers()
	graceTimer := time.NewTimer(drainGrace)
	defer graceTimer.Stop()
	select {
	case <-workersDone:
		return nil
	case <-graceTimer.C:
		return fmt.Errorf("bus: %s: handlers still running %s after the %s drain timeout", c.worker, drainGrace, c.drainTimeout)
	}
}

// work takes messages from the iterator until it is closed.
func (c *consumer) work(ctx context.Context, iter jetstream.MessagesContext, slot *inflight, abandon <-chan struct{}, stopErrs chan<- error) {
	for {
		raw, err := iter.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
				select {
				case stopErrs <- err:
				default:
				}
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Any other error from Next is terminal (consumer deleted, bad
			// request); the iterator is stopped and the next call says so.
			continue
		}
		select {
		case <-abandon:
			c.abandon(ctx, raw)
			continue
		default:
		}
		c.process(ctx, raw, slot)
	}
}

// abandon settles a message taken past the drain timeout without running
// the handler: it is handed back at once so another copy of the worker
// takes it, except on a consumer with a delivery limit, on its last allowed
// delivery, where the server would never deliver it again and a nak would
// drop it; that one is dead-lettered, to be replayed.
func (c *consumer) abandon(ctx context.Context, raw jetstream.Msg) {
	if meta, err := raw.Metadata(); err == nil && c.serverGivesUp(meta.NumDelivered) {
		m := msgOf(raw, meta)
		c.deadLetter(ctx, raw, m, fmt.Errorf("not handled before shutdown on delivery %d of %d", m.Deliveries, c.maxDeliver))
		return
	}
	if err := raw.Nak(); err != nil {
		c.metrics.ackFailed.Inc()
		return
	}
	c.metrics.abandoned.Inc()
}

// msgOf describes one delivery for a handler.
func msgOf(raw jetstream.Msg, meta *jetstream.MsgMetadata) *Msg {
	return &Msg{
		Subject:    raw.Subject(),
		Data:       raw.Data(),
		Header:     raw.Headers(),
		Deliveries: meta.NumDelivered,
		StreamSeq:  meta.Sequence.Stream,
		Stream:     meta.Stream,
		Consumer:   meta.Consumer,
		Stored:     meta.Timestamp,
	}
}

func (c *consumer) process(ctx context.Context, raw jetstream.Msg, slot *inflight) {
	meta, err := raw.Metadata()
	if err != nil {
		// Not a JetStream delivery; nothing to settle it against.
		c.metrics.ackFailed.Inc()
		return
	}
	m := msgOf(raw, meta)
	start := time.Now()
	slot.begin(raw, start)
	defer slot.end()

	outcome, err := c.call(ctx, m)
	c.metrics.handled[outcome].Inc()
	c.metrics.seconds[outcome].Observe(time.Since(start).Seconds())

	switch {
	case err == nil:
		c.ack(ctx, raw)
	case outcome == handlerPermanent || outcome == handlerPanic:
		c.deadLetter(ctx, raw, m, err)
	case ctx.Err() != nil && c.serverGivesUp(m.Deliveries):
		// The drain timeout cut the handler short on the message's last
		// delivery; the server would not deliver it again, so keep it in
		// the dead-letter stream.
		c.deadLetter(ctx, raw, m, fmt.Errorf("interrupted by shutdown on delivery %d of %d: %w", m.Deliveries, c.maxDeliver, err))
	case ctx.Err() != nil:
		// Cut short by the drain timeout: not the message's fault, so hand
		// it back at once instead of after a backoff, even past its attempt
		// limit (the server delivers it again).
		c.handBack(raw)
	case c.outOfAttempts(m.Deliveries) && c.maxDeliver > 0:
		c.deadLetter(ctx, raw, m, fmt.Errorf("gave up after %d deliveries: %w", m.Deliveries, err))
	case c.outOfAttempts(m.Deliveries):
		// Deliveries that were not failures (shutdowns, AckWait expiries)
		// count too, so this can come before max_attempts failures; never
		// later.
		c.deadLetter(ctx, raw, m, fmt.Errorf("gave up on delivery %d (max_attempts %d): %w", m.Deliveries, c.maxAttempts, err))
	default:
		if err := raw.NakWithDelay(c.retryDelay(m.Deliveries)); err != nil {
			c.metrics.ackFailed.Inc()
			return
		}
		c.metrics.retried.Inc()
	}
}

// call runs the handler, turning a panic into a permanent error: a bug that
// one message triggers must not take the worker, and every message after
// it, down.
func (c *consumer) call(ctx context.Context, m *Msg) (outcome handlerOutcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			outcome, err = handlerPanic, Permanent(fmt.Errorf("handler panic: %v", r))
			c.log.Error("bus: handler panicked", "subject", m.Subject, "stream", m.Stream,
				"stream_seq", m.StreamSeq, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	err = c.handler(ctx, m)
	switch {
	case err == nil:
		return handlerOK, nil
	case IsPermanent(err):
		return handlerPermanent, err
	default:
		return handlerError, err
	}
}

// handBack returns a message to the server for immediate redelivery.
func (c *consumer) handBack(raw jetstream.Msg) {
	if err := raw.Nak(); err != nil {
		c.metrics.ackFailed.Inc()
		return
	}
	c.metrics.abandoned.Inc()
}

func (c *consumer) ack(ctx context.Context, raw jetstream.Msg) {
	var err error
	if c.ackSync {
		err = raw.DoubleAck(ctx)
	} else {
		err = raw.Ack()
	}
	if err != nil {
		c.metrics.ackFailed.Inc()
		return
	}
	c.metrics.acked.Inc()
}

// deadLetter copies the message to the worker's dead-letter subject and then
// terminates it. The copy must be stored before the Term: a terminated
// message is gone from the consumer for good.
func (c *consumer) deadLetter(ctx context.Context, raw jetstream.Msg, m *Msg, cause error) {
	reason := headerSafe(cause.Error(), maxReasonBytes)
	subject := DeadLetterSubject(c.worker)
	id := deadLetterMsgID(c.worker, m.Stream, m.StreamSeq)
	// The publish must not inherit the handlers' cancellation: a message cut
	// short at shutdown on its last delivery still has to reach the DLQ.
	// The publisher bounds it with its ack timeout.
	publishCtx := context.WithoutCancel(ctx)
	for attempt := uint64(1); ; attempt++ {
		err := c.publisher.PublishRaw(publishCtx, subject, id, m.Data, deadLetterHeader(c.worker, m, reason, time.Now()))
		if err == nil {
			break
		}
		c.metrics.deadLetterFailed.Inc()
		c.log.Error("bus: dead letter not stored; message kept for retry", "subject", m.Subject,
			"stream", m.Stream, "stream_seq", m.StreamSeq, "dead_letter_subject", subject, "error", err)
		if !c.outOfAttempts(m.Deliveries) && !c.serverGivesUp(m.Deliveries) {
			// The message has attempts left: its next delivery tries again.
			if err := raw.NakWithDelay(c.retryDelay(m.Deliveries)); err != nil {
				c.metrics.ackFailed.Inc()
			}
			return
		}
		// Out of attempts: a redelivery would only be dead-lettered again,
		// and on a consumer with a delivery limit the server may never
		// deliver it again. Retry here, with the in-progress heartbeat
		// holding the message.
		select {
		case <-time.After(c.retryDelay(attempt)):
		case <-ctx.Done():
			if !c.serverGivesUp(m.Deliveries) {
				// Shutdown: hand it back. Its next delivery, in this
				// process or another, runs the handler again, and a
				// failure there dead-letters it at once.
				c.handBack(raw)
				return
			}
			c.log.Error("bus: gave up storing a dead letter at shutdown; the message stays in the stream but this consumer will not deliver it again",
				"subject", m.Subject, "stream", m.Stream, "stream_seq", m.StreamSeq)
			return
		}
	}
	if err := raw.Term(); err != nil {
		// The dead letter is stored; a redelivery will dead-letter again and
		// the DLQ stream drops the copy.
		c.metrics.ackFailed.Inc()
	}
	c.metrics.deadLettered.Inc()
	c.log.Warn("bus: message dead-lettered", "subject", m.Subject, "stream", m.Stream,
		"stream_seq", m.StreamSeq, "deliveries", m.Deliveries, "dead_letter_subject", subject, "reason", reason)
}

// retryDelay is the backoff after the n-th failed attempt (n >= 1).
func (c *consumer) retryDelay(n uint64) time.Duration {
	n = max(n, 1)
	return c.backoff[min(n, uint64(len(c.backoff)))-1]
}

// heartbeat tells the server, for every handler running longer than
// inProgressEvery, that its message is still being worked on, so AckWait
// does not expire and redeliver it to another worker mid-flight. One loop
// serves all handlers, so a fast message costs no timer.
func (c *consumer) heartbeat(slots []inflight, stop <-chan struct{}) {
	ticker := time.NewTicker(max(c.inProgressEvery/2, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-ticker.C:
			for i := range slots {
				slots[i].beatIfDue(now, c.inProgressEvery)
			}
		}
	}
}

// inflight is the message one handler goroutine is working on.
type inflight struct {
	mu       sync.Mutex
	msg      jetstream.Msg
	lastBeat time.Time
}

func (s *inflight) begin(m jetstream.Msg, now time.Time) {
	s.mu.Lock()
	s.msg, s.lastBeat = m, now
	s.mu.Unlock()
}

func (s *inflight) end() {
	s.mu.Lock()
	s.msg = nil
	s.mu.Unlock()
}

func (s *inflight) beatIfDue(now time.Time, every time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msg == nil || now.Sub(s.lastBeat) < every {
		return
	}
	// An error means the connection is gone; the message will be
	// redelivered after AckWait, which is all a heartbeat could prevent.
	_ = s.msg.InProgress()
	s.lastBeat = now
}
