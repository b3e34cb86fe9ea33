package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
)

const (
	defaultMaxPending = 4000
	defaultAckTimeout = 5 * time.Second
	// maxListedFailures caps the errors Flush lists one by one, so a stream
	// outage does not build a multi-megabyte error; the rest are counted.
	maxListedFailures = 100
)

// errAckTimeout is the failure recorded for an async publish whose PubAck
// did not arrive within AckTimeout. The message may still have been stored;
// republishing it with the same id is safe because the stream drops the copy.
var errAckTimeout = errors.New("no PubAck within the ack timeout")

var errNoJetStream = errors.New("bus: publisher created without a JetStream handle")

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// Worker names the publishing worker in metrics (kebab-case).
	Worker string
	// MaxPending bounds the async publishes awaiting their PubAck; PublishAsync
	// blocks while this many are outstanding. Default 4000.
	MaxPending int
	// AckTimeout bounds the wait for one PubAck. Default 5 s.
	AckTimeout time.Duration
	// Metrics receives mailmon_bus_publish_total; nil registers nothing. A
	// registration conflict with an unrelated collector leaves the metrics
	// unregistered rather than failing the publisher.
	Metrics prometheus.Registerer
}

// PublishError reports one message JetStream did not confirm.
type PublishError struct {
	ID      string // the message id (the event id for events)
	Subject string
	Err     error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("bus: publish %s (id %s): %v", e.Subject, e.ID, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// PublisherStats counts PubAcks since the publisher was created.
type PublisherStats struct {
	Confirmed  uint64 // stored, including duplicates
	Duplicates uint64 // already in the stream's duplicate window, not stored again
	Failed     uint64 // not confirmed: error or ack timeout
}

// Publisher publishes events to JetStream with the event id as the message
// id, so a republished event is stored once. It is safe for concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	ackTimeout time.Duration
	metrics    *publishMetrics

	// lock guards everything below. It is a channel rather than a mutex so
	// that a caller waiting for it can give up when its context ends.
	lock chan struct{}
	// pending is a ring of async publishes in the order they were sent; the
	// server acknowledges in roughly that order, so the oldest is the one to
	// wait for.
	pending      []pendingPublish
	pendingHead  int
	pendingCount int
	timer        *time.Timer
	// failures since the last Flush: the first maxListedFailures, and the total.
	failures    []error
	failedSince int

	confirmed, duplicates, failed atomic.Uint64
}

type pendingPublish struct {
	id, subject string
	future      jetstream.PubAckFuture
	sentAt      time.Time
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream, opts PublisherOptions) *Publisher {
	if opts.MaxPending <= 0 {
		opts.MaxPending = defaultMaxPending
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = defaultAckTimeout
	}
	collectors, err := newBusCollectors(opts.Metrics)
	if err != nil {
		collectors, _ = newBusCollectors(nil)
	}
	return &Publisher{
		js:         js,
		ackTimeout: opts.AckTimeout,
		metrics:    newPublishMetrics(collectors, opts.Worker),
		lock:       make(chan struct{}, 1),
		pending:    make([]pendingPublish, opts.MaxPending),
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Confirmed:  p.confirmed.Load(),
		Duplicates: p.duplicates.Load(),
		Failed:     p.failed.Load(),
	}
}

// Publish publishes ev on its kind's subject and waits until JetStream has
// stored it (or recognised it as a duplicate, which is success).
func (p *Publisher) Publish(ctx context.Context, ev schemas.Event) error {
	msg, id, err := eventMessage(ev)
	if err != nil {
		return err
	}
	return p.publishSync(ctx, msg, id)
}

// PublishRaw publishes data that is not an event, such as a dead letter, and
// waits for the PubAck. A non-empty msgID makes the stream drop a copy
// published again within its duplicate window. hdr is copied, not modified.
func (p *Publisher) PublishRaw(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header) error {
	if subject == "" {
		return errors.New("bus: publish: empty subject")
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: make(nats.Header, len(hdr)+1)}
	for k, v := range hdr {
		msg.Header[k] = append([]string(nil), v...)
	}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return p.publishSync(ctx, msg, msgID)
}

func (p *Publisher) publishSync(ctx context.Context, msg *nats.Msg, id string) error {
	if p.js == nil {
		return errNoJetStream
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.ackTimeout)
		defer cancel()
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	return p.record(id, msg.Subject, ack, err)
}

// PublishAsync sends ev without waiting for its PubAck. It blocks while
// MaxPending publishes are unconfirmed, and returns ctx's error if ctx ends
// first (ev was then not sent). An error returned here means ev was not sent;
// a failure JetStream reports later is returned by Flush.
func (p *Publisher) PublishAsync(ctx context.Context, ev schemas.Event) error {
	if p.js == nil {
		return errNoJetStream
	}
	msg, id, err := eventMessage(ev)
	if err != nil {
		return err
	}
	if err := p.acquire(ctx); err != nil {
		return err
	}
	defer p.release()
	if p.pendingCount == len(p.pending) {
		p.reapSettled()
		for p.pendingCount == len(p.pending) {
			if err := p.waitOldest(ctx); err != nil {
				return err
			}
		}
	}
	future, err := p.sendAsync(ctx, msg)
	if err != nil {
		return p.record(id, msg.Subject, nil, err)
	}
	tail := (p.pendingHead + p.pendingCount) % len(p.pending)
	p.pending[tail] = pendingPublish{id: id, subject: msg.Subject, future: future, sentAt: time.Now()}
	p.pendingCount++
	return nil
}

// sendAsync hands msg to the client. Our own bound normally keeps the
// client's bound from being reached, but the JetStream handle may have been
// created with a smaller one; the client then gives up after a short stall,
// and we try again until ctx ends.
func (p *Publisher) sendAsync(ctx context.Context, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		future, err := p.js.PublishMsgAsync(msg)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return future, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// Flush waits until every async publish is confirmed or failed, and returns
// the failures since the previous Flush joined into one error (each a
// *PublishError), or nil. A caller commits its own progress (a log offset,
// an SMTP reply) only after Flush returned nil; after a failure it publishes
// the same events again, and the stream drops those that were stored.
func (p *Publisher) Flush(ctx context.Context) error {
	if err := p.acquire(ctx); err != nil {
		return err
	}
	defer p.release()
	for p.pendingCount > 0 {
		p.reapSettled()
		if p.pendingCount > 0 {
			if err := p.waitOldest(ctx); err != nil {
				return err
			}
		}
	}
	if p.failedSince == 0 {
		return nil
	}
	errs := p.failures
	if more := p.failedSince - len(p.failures); more > 0 {
		errs = append(errs, fmt.Errorf("bus: %d more publishes failed", more))
	}
	p.failures, p.failedSince = nil, 0
	return errors.Join(errs...)
}

func (p *Publisher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Publisher) release() { <-p.lock }

// reapSettled removes the confirmed or failed publishes at the head of the
// ring without blocking.
func (p *Publisher) reapSettled() {
	for p.pendingCount > 0 {
		head := &p.pending[p.pendingHead]
		select {
		case ack := <-head.future.Ok():
			p.settleOldest(ack, nil)
			continue
		default:
		}
		select {
		case err := <-head.future.Err():
			p.settleOldest(nil, err)
			continue
		default:
		}
		return
	}
}

// waitOldest blocks until the oldest pending publish is confirmed, fails, or
// exceeds the ack timeout, or ctx ends.
func (p *Publisher) waitOldest(ctx context.Context) error {
	head := &p.pending[p.pendingHead]
	wait := time.Until(head.sentAt.Add(p.ackTimeout))
	if p.timer == nil {
		p.timer = time.NewTimer(wait)
	} else {
		p.timer.Reset(wait)
	}
	defer p.timer.Stop()
	select {
	case ack := <-head.future.Ok():
		p.settleOldest(ack, nil)
	case err := <-head.future.Err():
		p.settleOldest(nil, err)
	case <-p.timer.C:
		// The ack may have arrived just as the timer fired.
		before := p.pendingCount
		p.reapSettled()
		if p.pendingCount == before {
			p.settleOldest(nil, errAckTimeout)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (p *Publisher) settleOldest(ack *jetstream.PubAck, err error) {
	head := p.pending[p.pendingHead]
	p.pending[p.pendingHead] = pendingPublish{}
	p.pendingHead = (p.pendingHead + 1) % len(p.pending)
	p.pendingCount--
	if perr := p.record(head.id, head.subject, ack, err); perr != nil {
		if len(p.failures) < maxListedFailures {
			p.failures = append(p.failures, perr)
		}
		p.failedSince++
	}
}

// record counts one publish outcome and returns it as a *PublishError.
func (p *Publisher) record(id, subject string, ack *jetstream.PubAck, err error) error {
	if err != nil {
		p.failed.Add(1)
		p.metrics.failed.Inc()
		return &PublishError{ID: id, Subject: subject, Err: err}
	}
	p.confirmed.Add(1)
	if ack != nil && ack.Duplicate {
		p.duplicates.Add(1)
		p.metrics.duplicate.Inc()
		return nil
	}
	p.metrics.ok.Inc()
	return nil
}

// eventMessage checks ev's header against its registered kind and encodes
// it as the message published on the kind's subject.
func eventMessage(ev schemas.Event) (*nats.Msg, string, error) {
	if ev == nil {
		return nil, "", errors.New("bus: nil event")
	}
	if v := reflect.ValueOf(ev); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, "", fmt.Errorf("bus: nil %T event", ev)
	}
	kind, err := schemas.KindOf(ev)
	if err != nil {
		return nil, "", fmt.Errorf("bus: %w", err)
	}
	h := ev.EventHeader()
	if h.ID == "" {
		return nil, "", fmt.Errorf("bus: %s event has no id (stamp it with schemas.Stamp)", kind.Type)
	}
	if h.Type != kind.Type {
		return nil, "", fmt.Errorf("bus: event %s has type %q, want %q", h.ID, h.Type, kind.Type)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, "", fmt.Errorf("bus: encode %s event %s: %w", kind.Type, h.ID, err)
	}
	msg := &nats.Msg{
		Subject: kind.Subject,
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{h.ID}},
	}
	return msg, h.ID, nil
}
