package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

const (
	alertStream = "ALERTS"
	dlqStream   = "DLQ"
)

// testCtx bounds every server call a test makes.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAlert(t testing.TB, summary string) *schemas.AlertRaised {
	t.Helper()
	ev := &schemas.AlertRaised{
		Rule: "complaint_rate", Severity: "warning", Subject: "customer:acme",
		Summary: summary, DedupeKey: "complaint_rate:acme", Customer: "acme",
	}
	if err := schemas.Stamp(ev, schemas.Source{Worker: "bus-test", Host: "localhost"}, time.Now()); err != nil {
		t.Fatalf("stamp: %v", err)
	}
	return ev
}

func createAlertStream(t testing.TB, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	st, err := js.CreateOrUpdateStream(testCtx(t), jetstream.StreamConfig{
		Name: alertStream, Subjects: []string{schemas.SubjectAlertRaised},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream %s: %v", alertStream, err)
	}
	return st
}

func createDLQStream(t testing.TB, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	st, err := js.CreateOrUpdateStream(testCtx(t), jetstream.StreamConfig{
		Name: dlqStream, Subjects: []string{schemas.SubjectDeadLetterPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream %s: %v", dlqStream, err)
	}
	return st
}

func createConsumer(t testing.TB, js jetstream.JetStream, cfg jetstream.ConsumerConfig) jetstream.Consumer {
	t.Helper()
	if cfg.AckPolicy == jetstream.AckNonePolicy {
		cfg.AckPolicy = jetstream.AckExplicitPolicy
	}
	cons, err := js.CreateOrUpdateConsumer(testCtx(t), alertStream, cfg)
	if err != nil {
		t.Fatalf("create consumer %s: %v", cfg.Durable, err)
	}
	return cons
}

// consumeInBackground runs bus.Consume until the returned stop function is
// called; stop returns Consume's result.
func consumeInBackground(t testing.TB, js jetstream.JetStream, opts bus.ConsumeOptions, h bus.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(ctx, js, opts, h) }()
	var result error
	stopped := false
	stop = func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(30 * time.Second):
			result = errors.New("Consume did not return within 30s of cancel")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// metricValue returns the value of the counter (or histogram count) name
// with the given worker and outcome labels, 0 if absent.
func metricValue(t testing.TB, reg *prometheus.Registry, name, worker, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["worker"] != worker || labels["outcome"] != outcome {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
		}
	}
	return 0
}

// consumerState returns the consumer's pending and ack-pending counts.
func consumerState(t testing.TB, cons jetstream.Consumer) (pending uint64, ackPending, redelivered int) {
	t.Helper()
	info, err := cons.Info(testCtx(t))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info.NumPending, info.NumAckPending, info.NumRedelivered
}

// waitSettled waits until the consumer has nothing pending and nothing
// awaiting an ack (plain acks are not confirmed, so they land a moment later).
func waitSettled(t testing.TB, cons jetstream.Consumer) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, "consumer to settle", func() bool {
		pending, ackPending, _ := consumerState(t, cons)
		return pending == 0 && ackPending == 0
	})
}

func fetchAll(t testing.TB, st jetstream.Stream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var msgs []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			t.Fatalf("get message %d: %v", seq, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
