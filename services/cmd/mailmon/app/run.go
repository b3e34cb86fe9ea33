package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// RunOptions are the command-line choices of `mailmon run`.
type RunOptions struct {
	Workers []Definition
	// ClickHouse forces the ClickHouse connection and migrations even when
	// no selected worker needs them (`mailmon run` does this so the local
	// default always has its tables).
	ClickHouse bool
	// Ready, when set, is called once everything is started: tests wait on
	// it instead of polling.
	Ready func(*Runtime)
}

// Run starts the runtime, the HTTP server and the chosen workers, and
// blocks until ctx ends or a worker fails. It then stops every worker
// (each drains its in-flight work) and closes the runtime.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, opts RunOptions) error {
	needCH := opts.ClickHouse
	natsMayBeDown := len(opts.Workers) > 0
	for _, d := range opts.Workers {
		needCH = needCH || (d.NeedsClickHouse != nil && d.NeedsClickHouse(cfg))
		natsMayBeDown = natsMayBeDown && d.StartsWithoutNATS
	}
	rt, err := Start(ctx, cfg, logger, StartOptions{ClickHouse: needCH, NATSMayBeDown: natsMayBeDown})
	if err != nil {
		return err
	}
	defer rt.Close()

	host, _ := os.Hostname()
	track, err := TrackingSettings(cfg.Tracking)
	if err != nil {
		return err
	}
	runners := make([]worker.Runner, 0, len(opts.Workers))
	for _, d := range opts.Workers {
		log := logger.With("worker", d.Name)
		// Each worker on its own connection as its own user, so it can do
		// on NATS only what pipelines/access.yaml grants it.
		_, js, err := rt.Connect(d.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
		r, err := d.Build(cfg, worker.Settings{
			Logger:     log,
			Metrics:    rt.Metrics,
			Health:     rt.Health,
			JetStream:  js,
			Publisher:  bus.NewPublisher(js, bus.PublisherOptions{Worker: d.Name, Metrics: rt.Metrics}),
			Source:     schemas.Source{Worker: d.Name, Host: host},
			Tracking:   track,
			ClickHouse: rt.ClickHouseConfig(),
		})
		if err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
		runners = append(runners, r)
	}

	// A worker with pages (the console) serves them at / on the HTTP
	// listener; only one may.
	var root http.Handler
	for i, r := range runners {
		if hh, ok := r.(worker.HTTPHandler); ok {
			if h := hh.Handler(); h != nil {
				if root != nil {
					return fmt.Errorf("%s: another worker already serves / on http.addr", opts.Workers[i].Name)
				}
				root = h
			}
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if cfg.HTTP.Addr != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("http.addr: %w", err)
		}
		logger.Info("http listening", "addr", ln.Addr().String())
		wg.Go(func() {
			if err := obs.Serve(ctx, ln, obs.Handler(rt.Metrics, rt.Health, cfg.HTTP.Pprof, root)); err != nil {
				cancel(err)
			}
		})
	}
	var errsMu sync.Mutex
	var errs []error
	for i, r := range runners {
		name := opts.Workers[i].Name
		wg.Go(func() {
			err := r.Run(ctx)
			if err != nil {
				errsMu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				errsMu.Unlock()
				// One failed worker stops the process, so a supervisor
				// restarts it whole instead of running it half-alive.
				cancel(fmt.Errorf("worker %s failed", name))
			}
		})
	}
	names := make([]string, 0, len(opts.Workers))
	for _, d := range opts.Workers {
		names = append(names, d.Name)
	}
	logger.Info("mailmon running", "workers", names)
	if opts.Ready != nil {
		opts.Ready(rt)
	}
	<-ctx.Done()
	logger.Info("mailmon stopping", "cause", context.Cause(ctx))
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// TrackingSettings builds the keyring once for every worker; without a key
// configured it is nil, and the workers that need one say so.
func TrackingSettings(c TrackingConfig) (worker.Tracking, error) {
	track := worker.Tracking{MaxAge: c.MaxAge.Std()}
	if c.Key.ID == "" {
		return track, nil
	}
	ring, err := c.Keyring()
	if err != nil {
		return worker.Tracking{}, fmt.Errorf("tracking: %w", err)
	}
	track.Keyring = &ring
	return track, nil
}
