// Package worker holds what every mailmon worker receives from the runtime
// and what it must provide. A worker package exports Config, DefaultConfig,
// Validate and New(Config, Settings) (*Worker, error); the value New
// returns is a Runner: Run blocks until ctx ends, drains (finishes and
// acknowledges in-flight work), and returns nil on a clean shutdown.
//
// Errors: a worker never names itself in the errors it returns; the
// runtime prefixes each with the worker's name, once. Configuration
// problems are returned as config.Problems (built with config.Check), so
// callers can still take them apart with errors.As.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/obs"
)

// Settings are the shared services a worker is built with. They are not
// the worker's configuration: the runtime creates them once per process
// from the shared config sections and fills every field; tests may leave
// out all but JetStream (see Complete).
type Settings struct {
	// Logger already carries the worker's name as the "worker" attribute.
	Logger *slog.Logger
	// Metrics is where the worker registers its mailmon_<worker>_* metrics.
	Metrics prometheus.Registerer
	// Health takes the worker's readiness checks.
	Health *obs.Health
	// JetStream is connected as the worker's own NATS user, and the
	// topology is applied.
	JetStream jetstream.JetStream
	// Publisher publishes events with their id as the message id.
	Publisher *bus.Publisher
	// Source is stamped on every event the worker publishes.
	Source schemas.Source
	// Tracking signs and verifies the X-Mailmon-Track header.
	Tracking Tracking
	// Now is the clock: time.Now, or a test's clock that steps time.
	Now func() time.Time
	// ClickHouse is the shared `clickhouse` section, with the address of
	// the local server when the runtime started one. Workers that store or
	// read events connect with it themselves, so they can wait out an
	// outage instead of failing at start.
	ClickHouse chstore.Config
}

// Tracking is the `tracking` section made ready for use.
type Tracking struct {
	// Keyring is nil when the config names no tracking key: a worker that
	// has something to sign or verify reports that when it is built.
	Keyring *tracking.Keyring
	// MaxAge is the oldest a header may be and still verify; 0 accepts any
	// age.
	MaxAge time.Duration
}

// Verify checks a tracking header with the keyring and the age limit.
func (t Tracking) Verify(header string, now time.Time) (tracking.Fields, error) {
	if t.Keyring == nil {
		return tracking.Fields{}, ErrNoTrackingKey
	}
	return t.Keyring.Verify(header, now, t.MaxAge)
}

// ErrNoTrackingKey: the config names no tracking key.
var ErrNoTrackingKey = errors.New("no tracking key configured (tracking.key)")

// ErrNoJetStream is Complete's answer to Settings without a connection.
var ErrNoJetStream = errors.New("settings: JetStream is required")

// Complete checks that s has what every worker needs and fills what a
// caller may leave out: a discarding logger, a private metrics registry and
// health registry, a publisher on s.JetStream, and name and host in Source.
// The runtime fills all of these; tests build Settings by hand. Every
// worker's New calls it first.
func (s Settings) Complete(name string) (Settings, error) {
	if s.JetStream == nil {
		return s, ErrNoJetStream
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Metrics == nil {
		s.Metrics = prometheus.NewRegistry()
	}
	if s.Health == nil {
		s.Health = obs.NewHealth()
	}
	if s.Publisher == nil {
		s.Publisher = bus.NewPublisher(s.JetStream, bus.PublisherOptions{Worker: name, Metrics: s.Metrics})
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Source.Worker == "" {
		s.Source.Worker = name
	}
	if s.Source.Host == "" {
		s.Source.Host, _ = os.Hostname()
	}
	return s, nil
}

// Runner is a built worker.
type Runner interface {
	Run(ctx context.Context) error
}

// HTTPHandler is a Runner that serves pages on the process's HTTP
// listener (http.addr) at /, next to /metrics, /healthz and /readyz. A nil
// Handler serves nothing.
type HTTPHandler interface {
	Handler() http.Handler
}
