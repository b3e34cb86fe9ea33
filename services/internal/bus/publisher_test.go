package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

func TestPublishStoresEventWithItsID(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	st := createAlertStream(t, js)
	ev := newAlert(t, "stored")
	must(t, bus.NewPublisher(js, bus.PublisherOptions{}).Publish(ctx, ev), "publish")

	msgs := fetchAll(t, st)
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != schemas.SubjectAlertRaised {
		t.Errorf("subject %q, want %q", m.Subject, schemas.SubjectAlertRaised)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Errorf("Nats-Msg-Id %q, want the event id %q", got, ev.ID)
	}
	var back schemas.AlertRaised
	must(t, json.Unmarshal(m.Data, &back), "decode stored event")
	if back.ID != ev.ID || back.Type != schemas.TypeAlertRaised || back.Summary != ev.Summary || !back.Time.Equal(ev.Time) {
		t.Errorf("stored event %+v, want %+v", back, *ev)
	}
}

func TestDuplicatePublishIsStoredOnce(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	st := createAlertStream(t, js)
	reg := prometheus.NewRegistry()
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: worker, Metrics: reg})
	ev := newAlert(t, "twice")
	must(t, pub.Publish(ctx, ev), "first publish")
	must(t, pub.Publish(ctx, ev), "second publish")
	must(t, pub.PublishAsync(ctx, ev), "async publish")
	must(t, pub.Flush(ctx), "flush")
	must(t, pub.PublishRaw(ctx, schemas.SubjectAlertRaised, ev.ID, []byte(`{}`), nil), "raw publish with the same id")

	if msgs := fetchAll(t, st); len(msgs) != 1 {
		t.Fatalf("stream holds %d messages after four publishes of one id, want 1", len(msgs))
	}
	want := bus.PublisherStats{Confirmed: 4, Duplicates: 3}
	if got := pub.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if got := metricValue(t, reg, "mailmon_bus_publish_total", worker, "duplicate"); got != 3 {
		t.Fatalf("duplicate metric %v, want 3", got)
	}
	if got := metricValue(t, reg, "mailmon_bus_publish_total", worker, "ok"); got != 1 {
		t.Fatalf("ok metric %v, want 1", got)
	}
}

func TestPublishRejectsBadEvents(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	pub := bus.NewPublisher(js, bus.PublisherOptions{})
	wrongType := newAlert(t, "wrong type")
	wrongType.Type = "mailmon.alert.v9.raised"
	var typedNil *schemas.AlertRaised
	tests := []struct {
		name string
		ev   schemas.Event
		want string
	}{
		{"nil", nil, "nil event"},
		{"typed nil", typedNil, "nil *schemas.AlertRaised"},
		{"not stamped", &schemas.AlertRaised{Summary: "x"}, "has no id"},
		{"wrong type", wrongType, `want "mailmon.alert.v1.raised"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, publish := range map[string]func(context.Context, schemas.Event) error{
				"Publish": pub.Publish, "PublishAsync": pub.PublishAsync,
			} {
				err := publish(testCtx(t), tt.ev)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s error = %v, want one containing %q", name, err, tt.want)
				}
			}
		})
	}
	if err := pub.PublishRaw(testCtx(t), "", "id", nil, nil); err == nil {
		t.Error("PublishRaw accepted an empty subject")
	}
}

func TestFlushReportsFailedPublishes(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	st := createAlertStream(t, js)
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: worker})
	for i := range 50 {
		must(t, pub.PublishAsync(ctx, newAlert(t, fmt.Sprint("ok ", i))), "publish")
	}
	must(t, pub.Flush(ctx), "flush of good publishes")
	if got := len(fetchAll(t, st)); got != 50 {
		t.Fatalf("stream holds %d messages, want 50", got)
	}

	// With the stream gone, nothing answers on the subject.
	must(t, js.DeleteStream(ctx, alertStream), "delete stream")
	var lost []string
	for i := range 3 {
		ev := newAlert(t, fmt.Sprint("lost ", i))
		lost = append(lost, ev.ID)
		must(t, pub.PublishAsync(ctx, ev), "publish")
	}
	err := pub.Flush(ctx)
	if err == nil {
		t.Fatal("Flush returned nil although no stream stored the messages")
	}
	var failed []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *bus.PublishError
		if !errors.As(e, &pe) {
			t.Fatalf("Flush error part %v is not a *bus.PublishError", e)
		}
		if pe.Subject != schemas.SubjectAlertRaised {
			t.Errorf("failed subject %q, want %q", pe.Subject, schemas.SubjectAlertRaised)
		}
		failed = append(failed, pe.ID)
	}
	slices.Sort(failed)
	slices.Sort(lost)
	if !slices.Equal(failed, lost) {
		t.Fatalf("Flush reported ids %v, want %v", failed, lost)
	}
	if got := pub.Stats(); got.Failed != 3 || got.Confirmed != 50 {
		t.Fatalf("stats %+v, want 50 confirmed and 3 failed", got)
	}
	// Failures are reported once.
	must(t, pub.Flush(ctx), "second flush")
}

func TestPublishAsyncBlocksAtMaxPending(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	// No stream: every PubAck takes the client's no-responders retries
	// (about half a second) to fail, so publishes stay outstanding.
	pub := bus.NewPublisher(js, bus.PublisherOptions{MaxPending: 2})
	ctx := testCtx(t)
	must(t, pub.PublishAsync(ctx, newAlert(t, "one")), "first publish")
	must(t, pub.PublishAsync(ctx, newAlert(t, "two")), "second publish")

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := pub.PublishAsync(short, newAlert(t, "three"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third publish with 2 outstanding returned %v after %s, want a deadline error", err, time.Since(begin))
	}
	err = pub.Flush(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with an expired context returned %v, want a deadline error", err)
	}
	// The third was never sent, so only two failures are reported.
	err = pub.Flush(ctx)
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Fatalf("Flush reported %d failures (%v), want 2", n, err)
	}
}

func TestPublishRawKeepsCallerHeader(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := testCtx(t)
	st := createDLQStream(t, js)
	hdr := nats.Header{"X-Origin": []string{"test"}}
	pub := bus.NewPublisher(js, bus.PublisherOptions{})
	must(t, pub.PublishRaw(ctx, bus.DeadLetterSubject("notifier"), "dl-1", []byte("raw"), hdr), "publish raw")
	if len(hdr) != 1 {
		t.Fatalf("PublishRaw modified the caller's header: %v", hdr)
	}
	msgs := fetchAll(t, st)
	if len(msgs) != 1 || string(msgs[0].Data) != "raw" || msgs[0].Header.Get("X-Origin") != "test" ||
		msgs[0].Header.Get(jetstream.MsgIDHeader) != "dl-1" {
		t.Fatalf("stored %+v", msgs)
	}
}
