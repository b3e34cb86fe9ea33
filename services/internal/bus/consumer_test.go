package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

const worker = "bus-test"

// delivery records one handler call.
type delivery struct {
	at         time.Time
	deliveries uint64
	data       []byte
}

func TestConsumeOutcomes(t *testing.T) {
	errTransient := errors.New("smtp 451 try later")
	tests := []struct {
		name       string
		maxDeliver int
		// maxAttempts, when set, declares the consumer as pipelines.Apply
		// does for max_attempts: unlimited deliveries, the limit in its
		// metadata (maxDeliver is then ignored).
		maxAttempts int
		backoff     []time.Duration
		// handle returns the handler's result for the n-th call (1-based).
		handle func(n int) error
		// wantCalls is how many times the handler runs in total.
		wantCalls int
		// wantReason is the dead letter's reason; "" means none expected.
		wantReason string
		wantMetric map[string]float64 // mailmon_bus_messages_total by outcome
	}{
		{
			name:       "nil acks",
			maxDeliver: 3,
			handle:     func(int) error { return nil },
			wantCalls:  1,
			wantMetric: map[string]float64{"acked": 1, "retried": 0, "dead_lettered": 0},
		},
		{
			name:       "transient errors retry with backoff, then success acks",
			maxDeliver: 5,
			backoff:    []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			handle: func(n int) error {
				if n < 3 {
					return errTransient
				}
				return nil
			},
			wantCalls:  3,
			wantMetric: map[string]float64{"acked": 1, "retried": 2, "dead_lettered": 0},
		},
		{
			name:       "transient errors until MaxDeliver dead-letter",
			maxDeliver: 3,
			backoff:    []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			handle:     func(int) error { return errTransient },
			wantCalls:  3,
			wantReason: "gave up after 3 deliveries: smtp 451 try later",
			wantMetric: map[string]float64{"acked": 0, "retried": 2, "dead_lettered": 1},
		},
		{
			name:        "transient errors retry under max_attempts, then success acks",
			maxAttempts: 3,
			backoff:     []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			handle: func(n int) error {
				if n < 3 {
					return errTransient
				}
				return nil
			},
			wantCalls:  3,
			wantMetric: map[string]float64{"acked": 1, "retried": 2, "dead_lettered": 0},
		},
		{
			name:        "transient errors until max_attempts dead-letter",
			maxAttempts: 3,
			backoff:     []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			handle:      func(int) error { return errTransient },
			wantCalls:   3,
			wantReason:  "gave up on delivery 3 (max_attempts 3): smtp 451 try later",
			wantMetric:  map[string]float64{"acked": 0, "retried": 2, "dead_lettered": 1},
		},
		{
			name:        "permanent error under max_attempts dead-letters at once",
			maxAttempts: 3,
			handle:      func(int) error { return bus.Permanent(errors.New("unknown event type")) },
			wantCalls:   1,
			wantReason:  "unknown event type",
			wantMetric:  map[string]float64{"acked": 0, "retried": 0, "dead_lettered": 1},
		},
		{
			name:       "permanent error dead-letters at once",
			maxDeliver: 5,
			handle:     func(int) error { return bus.Permanent(errors.New("unknown event type")) },
			wantCalls:  1,
			wantReason: "unknown event type",
			wantMetric: map[string]float64{"acked": 0, "retried": 0, "dead_lettered": 1},
		},
		{
			name:       "wrapped permanent error dead-letters at once",
			maxDeliver: 5,
			handle: func(int) error {
				return fmt.Errorf("decode: %w", bus.Permanent(errors.New("unexpected end of JSON input")))
			},
			wantCalls:  1,
			wantReason: "decode: unexpected end of JSON input",
			wantMetric: map[string]float64{"acked": 0, "retried": 0, "dead_lettered": 1},
		},
		{
			name:       "panic dead-letters with the panic text",
			maxDeliver: 5,
			handle:     func(int) error { panic("index out of range [3] with length 3") },
			wantCalls:  1,
			wantReason: "handler panic: index out of range [3] with length 3",
			wantMetric: map[string]float64{"acked": 0, "retried": 0, "dead_lettered": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, js := natstest.Start(t)
			ctx := testCtx(t)
			alerts := createAlertStream(t, js)
			dlq := createDLQStream(t, js)
			var cons jetstream.Consumer
			if tt.maxAttempts > 0 {
				cons = attemptLimitedConsumer(t, js, "notifier", tt.maxAttempts, 5*time.Second)
			} else {
				cons = createConsumer(t, js, jetstream.ConsumerConfig{
					Durable: "notifier", MaxDeliver: tt.maxDeliver, AckWait: 5 * time.Second,
				})
			}
			reg := prometheus.NewRegistry()
			pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: worker})
			ev := newAlert(t, tt.name)
			must(t, pub.Publish(ctx, ev), "publish")

			var mu sync.Mutex
			var calls []delivery
			stop := consumeInBackground(t, js, bus.ConsumeOptions{
				Worker: worker, Stream: alertStream, Durable: "notifier",
				Backoff: tt.backoff, Metrics: reg,
			}, func(ctx context.Context, m *bus.Msg) error {
				mu.Lock()
				calls = append(calls, delivery{at: time.Now(), deliveries: m.Deliveries, data: bytes.Clone(m.Data)})
				n := len(calls)
				mu.Unlock()
				return tt.handle(n)
			})
			settledOutcomes := func() float64 {
				return metricValue(t, reg, "mailmon_bus_messages_total", worker, "acked") +
					metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered")
			}
			testwait.Eventually(t, 15*time.Second, "the message to be acked or dead-lettered", func() bool { return settledOutcomes() == 1 })
			waitSettled(t, cons)
			// Give a wrong extra redelivery the chance to show up.
			time.Sleep(300 * time.Millisecond)
			must(t, stop(), "consume")

			mu.Lock()
			defer mu.Unlock()
			if len(calls) != tt.wantCalls {
				t.Fatalf("handler ran %d times, want %d", len(calls), tt.wantCalls)
			}
			for i, c := range calls {
				if c.deliveries != uint64(i+1) {
					t.Errorf("call %d saw Deliveries=%d, want %d", i+1, c.deliveries, i+1)
				}
				if i > 0 {
					want := tt.backoff[min(i, len(tt.backoff))-1]
					if gap := c.at.Sub(calls[i-1].at); gap < want {
						t.Errorf("retry %d came %s after the previous call, want at least the backoff %s", i, gap, want)
					}
				}
			}
			var handled, timed float64
			for _, outcome := range []string{"ok", "error", "permanent", "panic"} {
				handled += metricValue(t, reg, "mailmon_bus_handled_total", worker, outcome)
				timed += metricValue(t, reg, "mailmon_bus_handler_seconds", worker, outcome)
			}
			if handled != float64(tt.wantCalls) || timed != float64(tt.wantCalls) {
				t.Errorf("handled_total %v and handler_seconds count %v, want %d each", handled, timed, tt.wantCalls)
			}
			for outcome, want := range tt.wantMetric {
				if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, outcome); got != want {
					t.Errorf("mailmon_bus_messages_total{outcome=%q} = %v, want %v", outcome, got, want)
				}
			}

			stored := fetchAll(t, alerts)
			if len(stored) != 1 {
				t.Fatalf("alert stream holds %d messages, want 1", len(stored))
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
			dl := dead[0]
			if dl.Subject != bus.DeadLetterSubject(worker) {
				t.Errorf("dead letter subject %q, want %q", dl.Subject, bus.DeadLetterSubject(worker))
			}
			if !bytes.Equal(dl.Data, stored[0].Data) {
				t.Errorf("dead letter data differs from the original:\n got %s\nwant %s", dl.Data, stored[0].Data)
			}
			wantHeaders := map[string]string{
				bus.HeaderDeadLetterReason:     tt.wantReason,
				bus.HeaderDeadLetterSubject:    schemas.SubjectAlertRaised,
				bus.HeaderDeadLetterStream:     alertStream,
				bus.HeaderDeadLetterSequence:   strconv.FormatUint(stored[0].Sequence, 10),
				bus.HeaderDeadLetterDeliveries: strconv.Itoa(tt.wantCalls),
				bus.HeaderDeadLetterWorker:     worker,
				bus.HeaderDeadLetterMsgID:      ev.ID,
			}
			for k, want := range wantHeaders {
				if got := dl.Header.Get(k); got != want {
					t.Errorf("dead letter header %s = %q, want %q", k, got, want)
				}
			}
			if ts, err := time.Parse(time.RFC3339Nano, dl.Header.Get(bus.HeaderDeadLetterTime)); err != nil || time.Since(ts) > time.Minute {
				t.Errorf("dead letter time %q is not a recent RFC 3339 time (%v)", dl.Header.Get(bus.HeaderDeadLetterTime), err)
			}
		})
	}
}

func TestConsumeAcksEveryMessageOnce(t *testing.T) {
	for _, ackSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("AckSync=%v", ackSync), func(t *testing.T) {
			t.Parallel()
			_, _, js := natstest.Start(t)
			ctx := testCtx(t)
			createAlertStream(t, js)
			cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "sink", MaxDeliver: 3})
			pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: worker})
			const n = 500
			want := map[string]bool{}
			for i := range n {
				ev := newAlert(t, fmt.Sprint("alert ", i))
				want[ev.ID] = true
				must(t, pub.PublishAsync(ctx, ev), "publish %d", i)
			}
			must(t, pub.Flush(ctx), "flush")

			var mu sync.Mutex
			seen := map[string]int{}
			stop := consumeInBackground(t, js, bus.ConsumeOptions{
				Worker: worker, Stream: alertStream, Durable: "sink",
				Concurrency: 4, PullMaxMessages: 64, AckSync: ackSync,
			}, func(ctx context.Context, m *bus.Msg) error {
				mu.Lock()
				seen[m.Header.Get(jetstream.MsgIDHeader)]++
				mu.Unlock()
				return nil
			})
			waitSettled(t, cons)
			must(t, stop(), "consume")
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != n {
				t.Fatalf("handled %d distinct messages, want %d", len(seen), n)
			}
			for id, count := range seen {
				if !want[id] {
					t.Errorf("handled unknown message id %s", id)
				}
				if count != 1 {
					t.Errorf("message %s handled %d times, want once", id, count)
				}
			}
			if _, _, redelivered := consumerState(t, cons); redelivered != 0 {
				t.Errorf("consumer redelivered %d messages, want 0", redelivered)
			}
		})
	}
}

func TestSlowHandlerIsKeptAliveByInProgress(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	const ackWait = 600 * time.Millisecond
	cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "slow", MaxDeliver: 5, AckWait: ackWait})
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, newAlert(t, "slow")), "publish")

	var calls atomic.Int32
	var maxDeliveries atomic.Uint64
	finished := make(chan struct{})
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "slow", Concurrency: 2,
	}, func(ctx context.Context, m *bus.Msg) error {
		if calls.Add(1) == 1 {
			defer close(finished)
		}
		maxDeliveries.Store(max(maxDeliveries.Load(), m.Deliveries))
		time.Sleep(4 * ackWait)
		return nil
	})
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		t.Fatal("handler did not finish")
	}
	waitSettled(t, cons)
	// A redelivery would have reached the second idle handler slot by now.
	time.Sleep(ackWait)
	must(t, stop(), "consume")
	if got := calls.Load(); got != 1 {
		t.Fatalf("handler ran %d times for one message, want 1 (AckWait expired mid-handler)", got)
	}
	if got := maxDeliveries.Load(); got != 1 {
		t.Fatalf("message delivered %d times, want 1", got)
	}
	if _, _, redelivered := consumerState(t, cons); redelivered != 0 {
		t.Fatalf("consumer redelivered %d messages, want 0", redelivered)
	}
}

func TestCancelDrainsInFlightMessages(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "drain", MaxDeliver: 5, AckWait: 5 * time.Second})
	pub := bus.NewPublisher(js, bus.PublisherOptions{})
	const total, concurrency = 200, 8
	for i := range total {
		must(t, pub.PublishAsync(ctx, newAlert(t, fmt.Sprint("drain ", i))), "publish")
	}
	must(t, pub.Flush(ctx), "flush")

	var mu sync.Mutex
	handled := map[uint64]int{}
	started := make(chan struct{}, total)
	release := make(chan struct{})
	handler := func(ctx context.Context, m *bus.Msg) error {
		started <- struct{}{}
		<-release
		mu.Lock()
		handled[m.StreamSeq]++
		mu.Unlock()
		return nil
	}
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "drain",
		Concurrency: concurrency, PullMaxMessages: 16,
	}, handler)
	for range concurrency {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("handlers did not start")
		}
	}
	// Cancel while every handler is mid-message, then let them finish.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case err := <-stopped:
		must(t, err, "consume")
	case <-time.After(20 * time.Second):
		t.Fatal("Consume did not return after cancel")
	}

	mu.Lock()
	first := len(handled)
	mu.Unlock()
	if first < concurrency {
		t.Fatalf("only %d messages handled before shutdown, want at least the %d in flight", first, concurrency)
	}
	if first == total {
		t.Fatalf("all %d messages handled after cancel: the consumer kept pulling", total)
	}
	// Messages the server was already sending for the last pull request
	// when the iterator drained never reach a handler; they stay unacked
	// until AckWait (5 s) and are then redelivered. That window is narrow,
	// but a loaded machine widens it, so it is allowed for, bounded by one
	// pull's worth.
	testwait.Eventually(t, 20*time.Second, "acks of the drained messages", func() bool {
		_, ackPending, _ := consumerState(t, cons)
		return ackPending == 0
	})
	pending, _, redelivered := consumerState(t, cons)
	if int(pending)+int(redelivered) != total-first {
		t.Errorf("consumer has %d messages pending and %d to redeliver, want %d in all (total %d - handled %d)", pending, redelivered, total-first, total, first)
	}
	if redelivered > 16 {
		t.Errorf("consumer redelivered %d messages, want at most the 16 of one pull in transit at the drain", redelivered)
	}

	// A restarted worker gets exactly the rest.
	stop = consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "drain", Concurrency: concurrency,
	}, handler)
	waitSettled(t, cons)
	time.Sleep(200 * time.Millisecond)
	must(t, stop(), "second consume")
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != total {
		t.Fatalf("handled %d distinct messages over both runs, want %d", len(handled), total)
	}
	for seq, n := range handled {
		if n != 1 {
			t.Errorf("stream sequence %d handled %d times, want once", seq, n)
		}
	}
}

func TestDrainTimeoutHandsUnfinishedMessageBack(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "stuck", MaxDeliver: 5, AckWait: 30 * time.Second})
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, newAlert(t, "stuck")), "publish")

	reg := prometheus.NewRegistry()
	started := make(chan struct{})
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "stuck",
		DrainTimeout: 200 * time.Millisecond, Metrics: reg,
	}, func(ctx context.Context, m *bus.Msg) error {
		close(started)
		<-ctx.Done() // a handler that only stops when told to
		return ctx.Err()
	})
	<-started
	begin := time.Now()
	must(t, stop(), "consume")
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("Consume took %s to return with a 200ms drain timeout", took)
	}
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "abandoned"); got != 1 {
		t.Fatalf("abandoned = %v, want 1", got)
	}

	// Handed back at once (not after AckWait): the next worker gets it now.
	redelivered := make(chan uint64, 1)
	stop = consumeInBackground(t, js, bus.ConsumeOptions{Worker: worker, Stream: alertStream, Durable: "stuck"},
		func(ctx context.Context, m *bus.Msg) error {
			redelivered <- m.Deliveries
			return nil
		})
	select {
	case d := <-redelivered:
		if d != 2 {
			t.Fatalf("redelivery has Deliveries=%d, want 2", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("abandoned message was not redelivered promptly")
	}
	waitSettled(t, cons)
	must(t, stop(), "second consume")
}

func TestDeadLetterPublishFailureKeepsMessage(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	// MaxDeliver 2: the first failure naks, the second happens on the last
	// delivery, where only retrying in place keeps the message.
	cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "nodlq", MaxDeliver: 2, AckWait: 2 * time.Second})
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, newAlert(t, "no dlq yet")), "publish")

	reg := prometheus.NewRegistry()
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "nodlq",
		Backoff: []time.Duration{50 * time.Millisecond}, Metrics: reg,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{AckTimeout: time.Second}),
	}, func(ctx context.Context, m *bus.Msg) error {
		return bus.Permanent(errors.New("schema violation"))
	})
	testwait.Eventually(t, 20*time.Second, "dead-letter publishes failing on both deliveries and in place", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_letter_failed") >= 3
	})
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered"); got != 0 {
		t.Fatalf("dead_lettered = %v without a DLQ stream", got)
	}
	dlq := createDLQStream(t, js)
	testwait.Eventually(t, 20*time.Second, "the dead letter", func() bool {
		return metricValue(t, reg, "mailmon_bus_messages_total", worker, "dead_lettered") == 1
	})
	waitSettled(t, cons)
	must(t, stop(), "consume")
	dead := fetchAll(t, dlq)
	if len(dead) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dead))
	}
	if got := dead[0].Header.Get(bus.HeaderDeadLetterDeliveries); got != "2" {
		t.Fatalf("dead letter from delivery %s, want 2 (the last)", got)
	}
	if got := dead[0].Header.Get(bus.HeaderDeadLetterReason); got != "schema violation" {
		t.Fatalf("reason %q, want %q", got, "schema violation")
	}
}

func TestConsumeRejectsBadSetup(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	createAlertStream(t, js)
	createConsumer(t, js, jetstream.ConsumerConfig{Durable: "good", AckWait: time.Second})
	_, err := js.CreateOrUpdateConsumer(testCtx(t), alertStream, jetstream.ConsumerConfig{Durable: "noacks", AckPolicy: jetstream.AckNonePolicy})
	must(t, err, "create consumer")
	ok := func(context.Context, *bus.Msg) error { return nil }
	valid := bus.ConsumeOptions{Worker: worker, Stream: alertStream, Durable: "good"}
	tests := []struct {
		name    string
		opts    func(o *bus.ConsumeOptions)
		handler bus.Handler
		want    string
	}{
		{"missing consumer", func(o *bus.ConsumeOptions) { o.Durable = "absent" }, ok, "does not exist"},
		{"missing stream", func(o *bus.ConsumeOptions) { o.Stream = "ABSENT" }, ok, "does not exist"},
		{"ack none consumer", func(o *bus.ConsumeOptions) { o.Durable = "noacks" }, ok, "explicit acks"},
		{"worker not kebab-case", func(o *bus.ConsumeOptions) { o.Worker = "Clickhouse_Sink" }, ok, "kebab-case"},
		{"worker with a subject wildcard", func(o *bus.ConsumeOptions) { o.Worker = "sink.>" }, ok, "kebab-case"},
		{"no stream and no durable", func(o *bus.ConsumeOptions) { o.Stream, o.Durable = "", "" }, ok, "durable is required"},
		{"negative backoff", func(o *bus.ConsumeOptions) { o.Backoff = []time.Duration{time.Second, -1} }, ok, "backoff[1]"},
		{"heartbeat slower than AckWait", func(o *bus.ConsumeOptions) { o.InProgressEvery = 2 * time.Second }, ok, "shorter than"},
		{"nil handler", func(*bus.ConsumeOptions) {}, nil, "nil handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.opts(&opts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := bus.Consume(ctx, js, opts, tt.handler)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Consume error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestConsumeReturnsErrorWhenConsumerDeleted(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	createAlertStream(t, js)
	createConsumer(t, js, jetstream.ConsumerConfig{Durable: "doomed"})
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(context.Background(), js, bus.ConsumeOptions{Worker: worker, Stream: alertStream, Durable: "doomed"},
			func(context.Context, *bus.Msg) error { return nil })
	}()
	time.Sleep(200 * time.Millisecond)
	must(t, js.DeleteConsumer(testCtx(t), alertStream, "doomed"), "delete consumer")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Consume returned nil after its consumer was deleted")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Consume kept running after its consumer was deleted")
	}
}
