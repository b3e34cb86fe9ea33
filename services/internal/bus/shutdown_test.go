package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// Messages still buffered when the drain timeout passes are handed back,
// except those on their last allowed delivery: the server would never
// deliver those again, so a nak would drop them with no dead letter.
// They are dead-lettered instead, and nothing is lost.
func TestShutdownDeadLettersMessagesOnTheirLastDelivery(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	createAlertStream(t, js)
	dlq := createDLQStream(t, js)
	// MaxDeliver 1: every delivery is the last.
	cons := createConsumer(t, js, jetstream.ConsumerConfig{Durable: "last", MaxDeliver: 1, AckWait: 30 * time.Second})
	pub := bus.NewPublisher(js, bus.PublisherOptions{})
	for _, s := range []string{"first", "second", "third"} {
		must(t, pub.Publish(ctx, newAlert(t, s)), "publish")
	}

	reg := prometheus.NewRegistry()
	started := make(chan struct{})
	stop := consumeInBackground(t, js, bus.ConsumeOptions{
		Worker: worker, Stream: alertStream, Durable: "last",
		DrainTimeout: 200 * time.Millisecond, Metrics: reg,
	}, func(ctx context.Context, m *bus.Msg) error {
		select {
		case <-started:
		default:
			close(started)
		}
		<-ctx.Done() // a handler that only stops when told to
		return ctx.Err()
	})
	<-started
	testwait.Eventually(t, 10*time.Second, "all three messages delivered to the worker", func() bool {
		_, ackPending, _ := consumerState(t, cons)
		return ackPending == 3
	})
	must(t, stop(), "consume")

	dead := fetchAll(t, dlq)
	if len(dead) != 3 {
		t.Fatalf("DLQ holds %d messages, want all 3 (1 interrupted, 2 never started)", len(dead))
	}
	unstarted := 0
	for _, d := range dead {
		if strings.HasPrefix(d.Header.Get(bus.HeaderDeadLetterReason), "not handled before shutdown on delivery 1 of 1") {
			unstarted++
		}
	}
	if unstarted != 2 {
		t.Errorf("%d dead letters say they were not handled before shutdown, want 2", unstarted)
	}
	if got := metricValue(t, reg, "mailmon_bus_messages_total", worker, "abandoned"); got != 0 {
		t.Errorf("abandoned = %v, want 0: nothing on its last delivery may be nakked", got)
	}
}
