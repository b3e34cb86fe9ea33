package suppressor

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

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the subcommand, log name, dead-letter suffix and durable.
const WorkerName = "suppressor"

// Durable is the suppressor's consumer on each of its streams.
const Durable = "suppressor"

// Streams are the streams the suppressor consumes, each through Durable.
var Streams = []string{"BOUNCE", "DELIVERY", "COMPLAINT"}

// Config is the shared `suppression` section.
type Config = suppression.Config

// DefaultConfig is the suppression section's default.
func DefaultConfig() Config { return suppression.DefaultConfig() }

const (
	// changeRetries is how often a write that lost a race with another
	// writer of the same key is tried again before the message is retried.
	changeRetries = 5
	// listTimeout bounds listing the keys of one address.
	listTimeout = 30 * time.Second
	// maxKeysPerAddress bounds the entries one delivery may clear: one
	// per customer and the global one.
	maxKeysPerAddress = 100_000
	// sweepIdle is how long a pass waits for the next entry before it
	// gives up (the server stopped answering).
	sweepIdle = 30 * time.Second
	// concurrency is the handlers per stream.
	concurrency = 4
)

// The stream behind the bucket, and the subject prefix of its keys.
const (
	kvStreamName    = "KV_" + suppression.Bucket
	kvSubjectPrefix = "$KV." + suppression.Bucket + "."
)

// Worker is the suppressor.
type Worker struct {
	cfg     Config
	rules   *Rules
	js      jetstream.JetStream
	pub     *bus.Publisher
	log     *slog.Logger
	source  schemas.Source
	metrics *metrics
	set     worker.Settings
	now     func() time.Time

	kv       jetstream.KeyValue
	kvStream jetstream.Stream
	writer   suppression.Writer
}

// New checks the configuration and builds the worker.
func New(cfg Config, s worker.Settings) (*Worker, error) {
	var check config.Check
	check.Nest("suppression", cfg.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	return &Worker{
		cfg: cfg, rules: NewRules(cfg), js: s.JetStream, pub: s.Publisher, log: s.Logger,
		source: s.Source, metrics: m, set: s, now: s.Now,
	}, nil
}

// Run consumes bounces, deliveries and complaints and sweeps expired
// entries until ctx ends; it then drains the consumers and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	kv, err := w.js.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("KV bucket %s (apply the pipelines first): %w", suppression.Bucket, err)
	}
	w.kv = kv
	if w.kvStream, err = w.js.Stream(ctx, kvStreamName); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("stream of KV bucket %s: %w", suppression.Bucket, err)
	}
	w.writer = suppression.Writer{KV: kv, Pub: w.pub, Source: w.source}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(Streams))
	for i, stream := range Streams {
		wg.Go(func() {
			errs[i] = bus.Consume(ctx, w.js, bus.ConsumeOptions{
				Worker: WorkerName, Stream: stream, Durable: Durable, Concurrency: concurrency,
				Publisher: w.pub, Logger: w.log, Metrics: w.set.Metrics,
			}, w.handle)
			if errs[i] != nil {
				cancel() // one consumer failing stops the worker
			}
		})
	}
	wg.Go(func() { w.sweepLoop(ctx) })
	wg.Wait()
	return errors.Join(errs...)
}

// handle applies one event. It returns nil only once every entry it adds
// or removes is stored with its event, so the bus acks only then.
func (w *Worker) handle(ctx context.Context, m *bus.Msg) error {
	k, ok := schemas.KindBySubject(m.Subject)
	if !ok {
		w.metrics.ignored.WithLabelValues(WhyOtherKind).Inc()
		return nil
	}
	var plan func(schemas.Event) Plan
	switch k.Type {
	case schemas.TypeBounceReceived:
		plan = func(ev schemas.Event) Plan { return w.rules.Bounce(ev.(*schemas.BounceReceived)) }
	case schemas.TypeDeliveryAttempted:
		plan = func(ev schemas.Event) Plan { return w.rules.Delivery(ev.(*schemas.DeliveryAttempted)) }
	case schemas.TypeComplaintReceived:
		plan = func(ev schemas.Event) Plan { return w.rules.Complaint(ev.(*schemas.ComplaintReceived)) }
	default:
		w.metrics.ignored.WithLabelValues(WhyOtherKind).Inc()
		return nil
	}
	ev, err := schemas.DecodeAs(k, m.Data)
	if err != nil {
		return bus.Permanent(err)
	}
	return w.apply(ctx, plan(ev))
}

// apply carries out a plan.
func (w *Worker) apply(ctx context.Context, p Plan) error {
	for _, why := range p.Ignored {
		w.metrics.ignored.WithLabelValues(why).Inc()
	}
	now := w.now()
	for _, e := range p.Adds {
		added, err := w.add(ctx, e, now)
		if err != nil {
			return err
		}
		if added {
			w.metrics.added.WithLabelValues(e.Reason).Inc()
		} else {
			w.metrics.ignored.WithLabelValues(WhyKept).Inc()
		}
	}
	w.rules.Stored(p)
	w.metrics.soft.Set(float64(w.rules.SoftTracked()))
	if p.Clear != nil {
		return w.clear(ctx, *p.Clear)
	}
	return nil
}

func (w *Worker) add(ctx context.Context, e suppression.Entry, now time.Time) (bool, error) {
	replace := func(old suppression.Entry) bool { return Replaces(e, old, now) }
	for attempt := 1; ; attempt++ {
		added, err := w.writer.Add(ctx, e, replace)
		if errors.Is(err, suppression.ErrChanged) && attempt < changeRetries {
			continue
		}
		return added, err
	}
}

// clear removes the bounce entries of one address, under every owner.
func (w *Worker) clear(ctx context.Context, c Clear) error {
	keys, err := w.keysOf(ctx, c.Digest)
	if err != nil {
		return err
	}
	for _, key := range keys {
		for attempt := 1; ; attempt++ {
			_, ok, err := w.writer.Remove(ctx, key, schemas.UnsuppressDelivered, c.EventID, c.At,
				[]string{c.EventID}, "", "", c.Keeps)
			if errors.Is(err, suppression.ErrChanged) && attempt < changeRetries {
				continue
			}
			if err != nil {
				return err
			}
			if ok {
				w.metrics.removed.WithLabelValues(schemas.UnsuppressDelivered).Inc()
			}
			break
		}
	}
	return nil
}

// keysOf lists the recipient keys of one address digest, under every
// owner: the subjects of the bucket's stream that match the key filter,
// from one stream info request. (A KV key listing, an ordered consumer
// created and deleted per call, cost 9 times a KV get per delivery in
// BenchmarkSentDelivery; this costs about one.) A key whose last message
// is a delete marker is listed too; removing it finds nothing.
func (w *Worker) keysOf(ctx context.Context, digest string) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	info, err := w.kvStream.Info(lctx, jetstream.WithSubjectFilter(kvSubjectPrefix+suppression.RecipientFilter(digest)))
	if err != nil {
		return nil, fmt.Errorf("list entries of %s: %w", digest, err)
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		if key, ok := strings.CutPrefix(subject, kvSubjectPrefix); ok && len(keys) < maxKeysPerAddress {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}
