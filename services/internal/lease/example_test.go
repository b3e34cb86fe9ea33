package lease_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/lease"
)

// A worker that must run once however many copies are started leads only
// while it holds its lease; doWork must stop when its context ends.
func ExampleLease_Run() {
	var js jetstream.JetStream // connected, with the pipelines applied
	ctx := context.Background()
	l, err := lease.New(ctx, js, "my-worker", lease.Options{TTL: 15 * time.Second, Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	doWork := func(ctx context.Context) error {
		<-ctx.Done() // lost the lease, or shutting down
		return nil
	}
	// Returns when ctx ends, after releasing the lease if held.
	_ = l.Run(ctx, doWork)
}
