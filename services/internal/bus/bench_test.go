package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// benchPayloadBytes is the size of one encoded event, typical of mailmon's
// delivery and probe events.
const benchPayloadBytes = 300

// BenchmarkBusVsRaw compares the bus with nats.go used directly, on one
// embedded server over TCP loopback with file storage. It publishes and
// consumes b.N 300-byte events each way, publishing and consuming at the
// same time, from a fresh stream per round: raw js.PublishAsync (4000
// pending, msg id set) with cons.Consume and explicit acks, and the bus's
// PublishAsync+Flush with Consume and a no-op handler. Rounds of at most
// benchRound events alternate between the two (and which goes first), so a
// load change on the machine hits both alike. It reports both rates and
// ours/raw.
//
//	go test -run '^$' -bench BusVsRaw -benchtime 300000x ./services/internal/bus/
func BenchmarkBusVsRaw(b *testing.B) {
	_, _, js := natstest.Start(b)
	events := benchEvents(b, b.N)
	b.ResetTimer()
	var raw, ours time.Duration
	for round, start := 0, 0; start < len(events); round, start = round+1, start+benchRound {
		chunk := events[start:min(start+benchRound, len(events))]
		if round%2 == 0 {
			raw += benchRaw(b, js, chunk)
			ours += benchOurs(b, js, chunk)
		} else {
			ours += benchOurs(b, js, chunk)
			raw += benchRaw(b, js, chunk)
		}
	}
	b.StopTimer()
	rawRate := float64(len(events)) / raw.Seconds()
	oursRate := float64(len(events)) / ours.Seconds()
	b.ReportMetric(rawRate, "raw_msgs_per_s")
	b.ReportMetric(oursRate, "ours_msgs_per_s")
	b.ReportMetric(oursRate/rawRate, "ratio")
}

// benchRound is the number of events per alternating round.
const benchRound = 50_000

// benchEvents returns n stamped events whose JSON is benchPayloadBytes long.
func benchEvents(b *testing.B, n int) []*schemas.AlertRaised {
	events := make([]*schemas.AlertRaised, n)
	for i := range events {
		ev := &schemas.AlertRaised{
			Rule: "complaint_rate", Severity: "warning", Subject: "customer:acme",
			DedupeKey: "complaint_rate:acme", Customer: "acme", SourceIP: "192.0.2.10", Provider: "gmail",
		}
		if err := schemas.Stamp(ev, schemas.Source{Worker: "bench", Host: "localhost"}, time.Now()); err != nil {
			b.Fatal(err)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		if pad := benchPayloadBytes - len(data); pad > 0 {
			ev.Summary = strings.Repeat("x", pad)
		}
		events[i] = ev
	}
	return events
}

// freshStream deletes name if it exists and creates it empty with one
// durable pull consumer, so each run starts from the same state.
func freshStream(b testing.TB, js jetstream.JetStream, name, subject string) jetstream.Consumer {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, name)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		b.Fatalf("create stream %s: %v", name, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 5,
	})
	if err != nil {
		b.Fatalf("create consumer on %s: %v", name, err)
	}
	return cons
}

func benchRaw(b *testing.B, js jetstream.JetStream, events []*schemas.AlertRaised) time.Duration {
	const subject = "bench.raw"
	cons := freshStream(b, js, "BENCH_RAW", subject)
	payloads := make([][]byte, len(events))
	for i, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		payloads[i] = data
	}
	rawJS, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	var consumed atomic.Int64
	allConsumed := make(chan struct{})
	begin := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			b.Errorf("ack: %v", err)
		}
		if consumed.Add(1) == int64(len(events)) {
			close(allConsumed)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	for i, data := range payloads {
		if _, err := rawJS.PublishAsync(subject, data, jetstream.WithMsgID(events[i].ID), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatalf("raw publish: %v", err)
		}
	}
	select {
	case <-rawJS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw publishes not acknowledged within a minute")
	}
	waitAll(b, allConsumed, &consumed, len(events))
	return time.Since(begin)
}

func benchOurs(b *testing.B, js jetstream.JetStream, events []*schemas.AlertRaised) time.Duration {
	freshStream(b, js, "BENCH_OURS", schemas.SubjectAlertRaised)
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "bench"})
	var consumed atomic.Int64
	allConsumed := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	consumeDone := make(chan error, 1)
	begin := time.Now()
	go func() {
		consumeDone <- bus.Consume(ctx, js, bus.ConsumeOptions{Worker: "bench", Stream: "BENCH_OURS", Durable: "bench"},
			func(context.Context, *bus.Msg) error {
				if consumed.Add(1) == int64(len(events)) {
					close(allConsumed)
				}
				return nil
			})
	}()
	for _, ev := range events {
		if err := pub.PublishAsync(ctx, ev); err != nil {
			b.Fatalf("bus publish: %v", err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatalf("bus flush: %v", err)
	}
	waitAll(b, allConsumed, &consumed, len(events))
	took := time.Since(begin)
	cancel()
	if err := <-consumeDone; err != nil {
		b.Fatalf("bus consume: %v", err)
	}
	return took
}

func waitAll(b *testing.B, done <-chan struct{}, consumed *atomic.Int64, want int) {
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal(fmt.Sprintf("consumed %d of %d messages within two minutes", consumed.Load(), want))
	}
}
