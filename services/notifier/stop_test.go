package notifier

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// A notifier stopped before it finished starting (its state bucket and
// silences not yet open) returns nil: a restart right after a start is a
// stop, and mailmon run would otherwise exit with an error.
func TestStopWhileStartingIsNotAFailure(t *testing.T) {
	_, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := New(testConfig(), worker.Settings{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: prometheus.NewRegistry(), JetStream: js, Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"}),
		Source: schemas.Source{Worker: WorkerName, Host: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil {
		t.Errorf("Run stopped while starting returned %v, want nil", err)
	}
}
