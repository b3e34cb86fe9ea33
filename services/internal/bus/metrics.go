package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

// Outcome label values. Handler outcomes say what the handler returned;
// message outcomes say what the bus told JetStream; publish outcomes say
// what JetStream answered.
const (
	messageAcked            = "acked"
	messageRetried          = "retried"
	messageDeadLettered     = "dead_lettered"
	messageDeadLetterFailed = "dead_letter_failed"
	messageAckFailed        = "ack_failed"
	messageAbandoned        = "abandoned"

	publishOK        = "ok"
	publishDuplicate = "duplicate"
	publishError     = "error"
)

// handlerOutcome is what a handler returned, as an index into per-outcome
// metric children.
type handlerOutcome int

const (
	handlerOK handlerOutcome = iota
	handlerError
	handlerPermanent
	handlerPanic
	handlerOutcomes // number of outcomes
)

var handlerOutcomeNames = [handlerOutcomes]string{"ok", "error", "permanent", "panic"}

func (o handlerOutcome) String() string { return handlerOutcomeNames[o] }

// busCollectors are shared by every publisher and consumer registered with
// the same Registerer; the worker label tells them apart.
type busCollectors struct {
	handled  *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	messages *prometheus.CounterVec
	publish  *prometheus.CounterVec
}

func newBusCollectors(reg prometheus.Registerer) (*busCollectors, error) {
	c := &busCollectors{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailmon_bus_handled_total",
			Help: "Messages passed to a handler, by what the handler returned (ok, error, permanent, panic).",
		}, []string{"worker", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailmon_bus_handler_seconds",
			Help:    "Time spent in message handlers, by what the handler returned.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"worker", "outcome"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailmon_bus_messages_total",
			Help: "Messages settled with JetStream: acked, retried (nak with delay), dead_lettered (copied to the DLQ and terminated), dead_letter_failed (DLQ publish failed, kept for retry), ack_failed, abandoned (nak at shutdown).",
		}, []string{"worker", "outcome"}),
		publish: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailmon_bus_publish_total",
			Help: "Publishes confirmed by JetStream (ok), dropped as duplicates by the stream's window (duplicate) or failed (error).",
		}, []string{"worker", "outcome"}),
	}
	r := obs.NewRegistrar(reg)
	c.handled = obs.Register(r, c.handled)
	c.seconds = obs.Register(r, c.seconds)
	c.messages = obs.Register(r, c.messages)
	c.publish = obs.Register(r, c.publish)
	return c, r.Err()
}

// consumeMetrics holds the label children one consumer uses, resolved once
// so the per-message cost is an atomic add.
type consumeMetrics struct {
	handled [handlerOutcomes]prometheus.Counter
	seconds [handlerOutcomes]prometheus.Observer

	acked, retried, deadLettered, deadLetterFailed, ackFailed, abandoned prometheus.Counter
}

func newConsumeMetrics(c *busCollectors, worker string) *consumeMetrics {
	m := &consumeMetrics{}
	for o := range handlerOutcomes {
		m.handled[o] = c.handled.WithLabelValues(worker, o.String())
		m.seconds[o] = c.seconds.WithLabelValues(worker, o.String())
	}
	m.acked = c.messages.WithLabelValues(worker, messageAcked)
	m.retried = c.messages.WithLabelValues(worker, messageRetried)
	m.deadLettered = c.messages.WithLabelValues(worker, messageDeadLettered)
	m.deadLetterFailed = c.messages.WithLabelValues(worker, messageDeadLetterFailed)
	m.ackFailed = c.messages.WithLabelValues(worker, messageAckFailed)
	m.abandoned = c.messages.WithLabelValues(worker, messageAbandoned)
	return m
}

type publishMetrics struct {
	ok, duplicate, failed prometheus.Counter
}

func newPublishMetrics(c *busCollectors, worker string) *publishMetrics {
	return &publishMetrics{
		ok:        c.publish.WithLabelValues(worker, publishOK),
		duplicate: c.publish.WithLabelValues(worker, publishDuplicate),
		failed:    c.publish.WithLabelValues(worker, publishError),
	}
}
