package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// Consumers read through bus.Consume have unlimited deliveries and an
// attempt limit of the bus's own (consumer metadata mailmon_max_attempts).
// JetStream counts every delivery, failed or not: a worker that crashed
// mid-message (AckWait expiry) and a shutdown that handed a message back
// both count. With a server limit (max_deliver) such deliveries could use
// it up, and the server then stopped delivering the message: no handler
// success, no dead letter, no counter.

// attemptLimitedConsumer creates a durable consumer as pipelines.Apply
// declares one with max_attempts: unlimited deliveries, the limit in the
// metadata.
func attemptLimitedConsumer(t testing.TB, js jetstream.JetStream, durable string, maxAttempts int, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	return createConsumer(t, js, jetstream.ConsumerConfig{
		Durable: durable, MaxDeliver: -1, AckWait: ackWait,
		Metadata: map[string]string{pipelines.MetadataMaxAttempts: strconv.Itoa(maxAttempts)},
	})
}

// crashMidMessage takes the next message the way a worker does and then
// neither acks nor naks it, like a worker killed mid-handling; the server
// delivers it again once AckWait expires. It returns the delivery number.
func crashMidMessage(t testing.TB, cons jetstream.Consumer) uint64 {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	must(t, err, "fetch")
	var delivered uint64
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		must(t, err, "metadata")
		delivered = meta.NumDelivered
	}
	must(t, batch.Error(), "fetch batch")
	if delivered == 0 {
		t.Fatal("no message fetched within 10s")
	}
	return delivered
}

// shutDownMidMessage runs bus.Consume until its handler holds the message,
// then shuts it down with a handler that only stops when told to: the drain
// timeout cuts it short and the message is handed back.
func shutDownMidMessage(t testing.TB, js jetstream.JetStream, durable string, reg *prometheus.Registry) uint64 {
	t.Helper()
	got := make(chan uint64, 1)
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: durable,
		DrainTimeout: 100 * time.Millisecond, Metrics: reg,
	}, func(ctx context.Context, m *bus.Msg) error {
		got <- m.Deliveries
		<-ctx.Done()
		return ctx.Err()
	})
	var delivered uint64
	select {
	case delivered = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("the handler got no message within 15s")
	}
	must(t, stop(), "consume")
	return delivered
}

func TestDeliveriesThatWereNotFailuresNeverLoseTheMessage(t *testing.T) {
	const maxAttempts, crashes, shutdowns = 3, 3, 2
	tests := []struct {
		name string
		// last is the handler's result on the delivery after the crashes
		// and shutdowns.
		last       error
		wantReason string
		wantMetric map[string]float64
	}{
		{
			name:       "handled once the handler succeeds",
			last:       nil,
			wantMetric: map[string]float64{"acked": 1, "dead_lettered": 0, "retried": 0, "abandoned": shutdowns},
		},
		{
			// Past the limit already, the first failure is the last.
			name:       "dead-lettered on its first failure past the limit",
			last:       errors.New("smtp 451 try later"),
			wantReason: "gave up on delivery %d (max_attempts 3): smtp 451 try later",
			wantMetric: map[string]float64{"acked": 0, "dead_lettered": 1, "retried": 0, "abandoned": shutdowns},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, js := natstest.Start(t)
			ctx := testCtx(t)
			createAlertStream(t, js)
			dlq := createDLQStream(t, js)
			cons := attemptLimitedConsumer(t, js, "notifier", maxAttempts, 500*time.Millisecond)
			ev := newAlert(t, tt.name)
			must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, ev), "publish")

			reg := prometheus.NewRegistry()
			var seen uint64
			for range crashes {
				seen = crashMidMessage(t, cons)
			}
			for range shutdowns {
				seen = shutDownMidMessage(t, js, "notifier", reg)
			}
			if seen <= maxAttempts {
				t.Fatalf("setup: the message reached delivery %d only, want past the limit of %d", seen, maxAttempts)
			}

			var mu sync.Mutex
			var calls []uint64
			stop := consumeInBackground(t, js, bus.ConsumeOptions{
				Worker: worker, Stream: alertStream, Durable: "notifier",
				Backoff: []time.Duration{50 * time.Millisecond}, Metrics: reg,
			}, func(ctx context.Context, m *bus.Msg) error {
				mu.Lock()
				calls = append(calls, m.Deliveries)
				mu.Unlock()
				return tt.last
			})
			testwait.Eventually(t, 20*time.Second, "the message to be acked or dead-lettered", func() bool {
				return metricValue(t, reg, "mailmon_bus_messages_total", worker, "acked")+
					metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered") == 1
			})
			waitSettled(t, cons)
			must(t, stop(), "consume")

			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 || calls[0] <= seen {
				t.Fatalf("handler calls at deliveries %v after %d deliveries that were not failures, want one call", calls, seen)
			}
			for outcome, want := range tt.wantMetric {
				if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, outcome); got != want {
					t.Errorf("mailmon_bus_messages_total{outcome=%q} = %v, want %v", outcome, got, want)
				}
			}
			dead := fetchAll(t, dlq)
			if tt.wantReason == "" {
				if len(dead) != 0 {
					t.Fatalf("DLQ holds %d messages, want none", len(dead))
				}
				return
			}
			if len(dead) != 1 {
				t.Fatalf("DLQ holds %d messages, want 1", len(dead))
			}
			wantReason := fmt.Sprintf(tt.wantReason, calls[0])
			if got := dead[0].Header.Get(bus.HeaderDeadLetterReason); got != wantReason {
				t.Errorf("reason %q, want %q", got, wantReason)
			}
			if got := dead[0].Header.Get(bus.HeaderDeadLetterMsgID); got != ev.ID {
				t.Errorf("dead letter of event %q, want %q", got, ev.ID)
			}
		})
	}
}

// A message whose handler always fails is dead-lettered after max_attempts
// failures, with the handler's error as the reason; a consumer declared
// through the pipelines carries the limit to bus.Consume.
func TestDeclaredMaxAttemptsDeadLetterAnAlwaysFailingMessage(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	top, err := pipelines.Parse([]byte(`
streams:
  - {name: ALERTS, subjects: ["mailmon.alert.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}
  - {name: DLQ, subjects: ["mailmon.dlq.>"], max_age: 1h, max_bytes: 1MiB, duplicate_window: 1m}
consumers:
  - {stream: ALERTS, durable: notifier, ack_wait: 5s, max_deliver: -1, max_attempts: 4, max_ack_pending: 10}
`))
	must(t, err, "parse topology")
	must(t, top.Apply(ctx, js, pipelines.ApplyOptions{}), "apply topology")
	cons, err := js.Consumer(ctx, alertStream, "notifier")
	must(t, err, "consumer")
	dlq, err := js.Stream(ctx, dlqStream)
	must(t, err, "DLQ stream")
	ev := newAlert(t, "always failing")
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, ev), "publish")

	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	var calls []uint64
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "notifier",
		Backoff: []time.Duration{50 * time.Millisecond}, Metrics: reg,
	}, func(ctx context.Context, m *bus.Msg) error {
		mu.Lock()
		calls = append(calls, m.Deliveries)
		mu.Unlock()
		return errors.New("webhook answered 503")
	})
	testwait.Eventually(t, 20*time.Second, "the dead letter", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered") == 1
	})
	waitSettled(t, cons)
	time.Sleep(300 * time.Millisecond) // room for a wrong extra delivery
	must(t, stop(), "consume")

	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(calls) != "[1 2 3 4]" {
		t.Fatalf("handler called at deliveries %v, want [1 2 3 4]", calls)
	}
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "retried"); got != 3 {
		t.Errorf("retried = %v, want 3", got)
	}
	dead := fetchAll(t, dlq)
	if len(dead) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dead))
	}
	for k, want := range map[string]string{
		bus.HeaderDeadLetterReason:     "gave up on delivery 4 (max_attempts 4): webhook answered 503",
		bus.HeaderDeadLetterDeliveries: "4",
		bus.HeaderDeadLetterMsgID:      ev.ID,
	} {
		if got := dead[0].Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
}

// At shutdown a consumer with unlimited deliveries hands every message back,
// even past its attempt limit (max_attempts 1 here: every delivery is past
// it): a nak cannot lose it, and a shutdown is not the message's fault, so
// nothing is dead-lettered either. The next run handles all of them.
func TestShutdownHandsBackMessagesPastTheirAttemptLimit(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	dlq := createDLQStream(t, js)
	cons := attemptLimitedConsumer(t, js, "last", 1, 30*time.Second)
	pub := bus.NewPublisher(js, bus.PublisherOptions{})
	for _, s := range []string{"first", "second", "third"} {
		must(t, pub.Publish(ctx, newAlert(t, s)), "publish")
	}

	reg := prometheus.NewRegistry()
	started := make(chan struct{})
	var once sync.Once
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "last",
		DrainTimeout: 200 * time.Millisecond, Metrics: reg,
	}, func(ctx context.Context, m *bus.Msg) error {
		once.Do(func() { close(started) })
		<-ctx.Done() // a handler that only stops when told to
		return ctx.Err()
	})
	<-started
	testwait.Eventually(t, 10*time.Second, "all three messages delivered to the worker", func() bool {
		_, ackPending, _ := consumerState(t, cons)
		return ackPending == 3
	})
	must(t, stop(), "consume")
	// The bus counts what it took: the interrupted one, and those of the
	// other two that had reached the client when the pull stopped (on a
	// loaded machine one may still be on its way then). Every one is
	// handed back all the same: the restart below handles all three well
	// within AckWait (30 s), which a message left delivered would wait out.
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "abandoned"); got < 1 || got > 3 {
		t.Errorf("abandoned = %v, want 1 to 3 (1 interrupted, up to 2 never started)", got)
	}
	if dead := fetchAll(t, dlq); len(dead) != 0 {
		t.Fatalf("DLQ holds %d messages after a shutdown, want none", len(dead))
	}

	var mu sync.Mutex
	handled := map[uint64]uint64{}
	stop = consumeInBackground(t, js, bus.ConsumeOptions{Worker: worker, Stream: alertStream, Durable: "last"},
		func(ctx context.Context, m *bus.Msg) error {
			mu.Lock()
			handled[m.StreamSeq] = m.Deliveries
			mu.Unlock()
			return nil
		})
	waitSettled(t, cons)
	must(t, stop(), "second consume")
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 3 {
		t.Fatalf("handled %d of the 3 messages after the restart", len(handled))
	}
	if dead := fetchAll(t, dlq); len(dead) != 0 {
		t.Fatalf("DLQ holds %d messages, want none", len(dead))
	}
}

// A dead letter that cannot be stored: while the message has attempts left
// it is nakked (its next delivery tries again); once it has none, the
// publish is retried in place with the message held by in-progress signals,
// not redelivered.
func TestDeadLetterPublishFailurePastTheAttemptLimitIsRetriedInPlace(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	const ackWait = time.Second
	cons := attemptLimitedConsumer(t, js, "nodlq", 2, ackWait)
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, newAlert(t, "no dlq yet")), "publish")

	reg := prometheus.NewRegistry()
	var calls sync.Map
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "nodlq",
		Backoff: []time.Duration{50 * time.Millisecond, 500 * time.Millisecond}, Metrics: reg,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{AckTimeout: time.Second}),
	}, func(ctx context.Context, m *bus.Msg) error {
		calls.Store(m.Deliveries, true)
		return bus.Permanent(errors.New("schema violation"))
	})
	// One failure on delivery 1 (nak), then in place on delivery 2, with
	// retries 50 ms, 500 ms, 500 ms, ... apart: six failures hold the
	// message well past its AckWait.
	testwait.Eventually(t, 30*time.Second, "dead-letter publishes failing on delivery 1 and in place on delivery 2", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_letter_failed") >= 6
	})
	dlq := createDLQStream(t, js)
	testwait.Eventually(t, 20*time.Second, "the dead letter", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered") == 1
	})
	waitSettled(t, cons)
	must(t, stop(), "consume")
	var deliveries []uint64
	calls.Range(func(k, _ any) bool { deliveries = append(deliveries, k.(uint64)); return true })
	if len(deliveries) != 2 {
		t.Errorf("handler saw deliveries %v, want 1 and 2 only (the retry in place holds the message)", deliveries)
	}
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "retried") +
		metricValue(t, reg, "mailmon_bus_messages_total", worker, "abandoned"); got != 0 {
		t.Errorf("retried + abandoned = %v, want 0 (the first nak is the dead letter's, counted as dead_letter_failed)", got)
	}
	dead := fetchAll(t, dlq)
	if len(dead) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dead))
	}
	if got := dead[0].Header.Get(bus.HeaderDeadLetterDeliveries); got != "2" {
		t.Errorf("dead letter from delivery %s, want 2", got)
	}
	if got := dead[0].Header.Get(bus.HeaderDeadLetterReason); got != "schema violation" {
		t.Errorf("reason %q, want %q", got, "schema violation")
	}
}

// A shutdown while a dead letter is retried in place hands the message back
// (deliveries are unlimited, so the server delivers it again) instead of
// giving it up; the next run dead-letters it once the DLQ takes it.
func TestShutdownDuringDeadLetterRetryHandsTheMessageBack(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	cons := attemptLimitedConsumer(t, js, "nodlq", 1, 2*time.Second)
	ev := newAlert(t, "dlq down at shutdown")
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, ev), "publish")

	permanent := func(ctx context.Context, m *bus.Msg) error {
		return bus.Permanent(errors.New("schema violation"))
	}
	reg := prometheus.NewRegistry()
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "nodlq",
		Backoff: []time.Duration{50 * time.Millisecond}, DrainTimeout: 200 * time.Millisecond, Metrics: reg,
	}, permanent)
	testwait.Eventually(t, 20*time.Second, "dead-letter publishes failing in place", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_letter_failed") >= 2
	})
	must(t, stop(), "consume")
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "abandoned"); got != 1 {
		t.Fatalf("abandoned = %v, want 1: the message is handed back at shutdown", got)
	}
	// Neither acked nor terminated: waiting for a delivery, or already sent
	// to the stopped run's pull request, which the server keeps until it
	// expires (AckWait then brings it back).
	if pending, ackPending, _ := consumerState(t, cons); pending+uint64(ackPending) != 1 {
		t.Fatalf("consumer holds %d pending and %d unacked messages, want the one handed back", pending, ackPending)
	}

	dlq := createDLQStream(t, js)
	reg = prometheus.NewRegistry()
	stop = consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "nodlq", Metrics: reg,
	}, permanent)
	testwait.Eventually(t, 20*time.Second, "the dead letter after the restart", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered") == 1
	})
	waitSettled(t, cons)
	must(t, stop(), "second consume")
	dead := fetchAll(t, dlq)
	if len(dead) != 1 || dead[0].Header.Get(bus.HeaderDeadLetterMsgID) != ev.ID {
		t.Fatalf("DLQ holds %d messages, want the one of event %s", len(dead), ev.ID)
	}
}

// A consumer whose attempt limit cannot be honoured is refused with a clear
// error rather than consumed with a limit nobody meant.
func TestConsumeRejectsBadAttemptLimits(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	createAlertStream(t, js)
	tests := []struct {
		name       string
		maxDeliver int
		limit      string
		want       string
	}{
		{"not a number", -1, "ten", `"ten" is not a positive integer`},
		{"zero", -1, "0", `"0" is not a positive integer`},
		{"negative", -1, "-3", `"-3" is not a positive integer`},
		{"with a server delivery limit", 5, "3", "needs unlimited deliveries, but max_deliver is 5"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			durable := fmt.Sprint("bad-", i)
			createConsumer(t, js, jetstream.ConsumerConfig{
				Durable: durable, MaxDeliver: tt.maxDeliver,
				Metadata: map[string]string{pipelines.MetadataMaxAttempts: tt.limit},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := bus.Consume(ctx, js, bus.ConsumeOptions{Worker: worker, Stream: alertStream, Durable: durable},
				func(context.Context, *bus.Msg) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), durable) {
				t.Fatalf("Consume error = %v, want one naming %s and containing %q", err, durable, tt.want)
			}
		})
	}
}
