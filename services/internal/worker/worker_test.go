package worker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

func TestCompleteRequiresJetStreamAndFillsTheRest(t *testing.T) {
	if _, err := (worker.Settings{}).Complete("probe-sender"); !errors.Is(err, worker.ErrNoJetStream) {
		t.Fatalf("Complete without JetStream = %v, want ErrNoJetStream", err)
	}
	_, _, js := natstest.Start(t)
	s, err := worker.Settings{JetStream: js}.Complete("probe-sender")
	if err != nil {
		t.Fatal(err)
	}
	if s.Logger == nil || s.Metrics == nil || s.Health == nil || s.Publisher == nil || s.Now == nil {
		t.Fatalf("Complete left a shared service empty: %+v", s)
	}
	if s.Source.Worker != "probe-sender" || s.Source.Host == "" {
		t.Fatalf("Source = %+v, want the worker's name and this host", s.Source)
	}
	given := worker.Settings{JetStream: js, Now: func() time.Time { return time.Unix(1, 0) }}
	given.Source.Worker, given.Source.Host = "custom", "h"
	s, err = given.Complete("probe-sender")
	if err != nil {
		t.Fatal(err)
	}
	if s.Now().Unix() != 1 || s.Source.Worker != "custom" || s.Source.Host != "h" {
		t.Fatalf("Complete replaced what the caller gave: now %v, source %+v", s.Now(), s.Source)
	}
}

func TestTrackingVerify(t *testing.T) {
	ring := tracking.Keyring{Current: tracking.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}
	sent := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	header, err := ring.Sign(tracking.Fields{Customer: "acme", Source: "192.0.2.1", MessageID: "m1", Time: sent})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (worker.Tracking{}).Verify(header, sent); !errors.Is(err, worker.ErrNoTrackingKey) {
		t.Fatalf("Verify without a keyring = %v, want ErrNoTrackingKey", err)
	}
	track := worker.Tracking{Keyring: &ring, MaxAge: time.Hour}
	if f, err := track.Verify(header, sent.Add(time.Minute)); err != nil || f.Customer != "acme" {
		t.Fatalf("Verify = %+v, %v", f, err)
	}
	if _, err := track.Verify(header, sent.Add(2*time.Hour)); err == nil {
		t.Fatal("a header older than MaxAge verified")
	}
}
