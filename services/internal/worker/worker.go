// Package worker holds what every mailmon worker receives from the runtime
// and what it must provide. A worker package exports Config, DefaultConfig,
// Validate and New(Config, Settings); the value New returns is a Runner:
// Run blocks until ctx ends, drains (finishes and acknowledges in-flight
// work), and returns nil on a clean shutdown.
package worker

import (
	"context"
	"log/slog"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Settings are the shared services a worker is built with. They are not
// configuration: the runtime creates them once per process.
type Settings struct {
	// Logger already carries the worker's name as the "worker" attribute.
	Logger *slog.Logger
	// Metrics is where the worker registers its mailmon_<worker>_* metrics.
	Metrics prometheus.Registerer
	// Health takes the worker's readiness checks.
	Health *obs.Health
	// JetStream is connected, and the topology is applied.
	JetStream jetstream.JetStream
	// Publisher publishes events with their id as the message id.
	Publisher *bus.Publisher
	// Source is stamped on every event the worker publishes.
	Source schemas.Source
}

// Runner is a built worker.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

func (f RunFunc) Run(ctx context.Context) error { return f(ctx) }
