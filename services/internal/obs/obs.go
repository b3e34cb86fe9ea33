package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// DefaultLogConfig logs JSON at info level.
func DefaultLogConfig() LogConfig { return LogConfig{Level: "info", Format: "json"} }

// Validate reports a level or format that is not one of the known names.
func (c LogConfig) Validate() error {
	var check config.Check
	if _, err := parseLevel(c.Level); err != nil {
		check.Addf("level", "%v", err)
	}
	if c.Format != "json" && c.Format != "text" {
		check.Addf("format", "%q is not json or text", c.Format)
	}
	return check.Err()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the process logger. An invalid config falls back to the
// defaults, because Validate has already reported it.
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	level, err := parseLevel(c.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Health tracks readiness checks by name. The zero value is not usable; use
// NewHealth.
type Health struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

func NewHealth() *Health { return &Health{checks: map[string]func(context.Context) error{}} }

// Register adds or replaces a readiness check.
func (h *Health) Register(name string, check func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Ready runs every check and returns the failures, by name.
func (h *Health) Ready(ctx context.Context) map[string]error {
	h.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	failed := map[string]error{}
	for name, check := range checks {
		if err := check(ctx); err != nil {
			failed[name] = err
		}
	}
	return failed
}

// HTTPConfig is the listen address of the metrics and health server.
type HTTPConfig struct {
	// Addr serves /metrics, /healthz and /readyz. Loopback by default;
	// `-http.addr` overrides it. Empty disables the server.
	Addr string `yaml:"addr"`
	// Pprof adds Go's profiler under /debug/pprof/. It shows internals, so
	// it is off unless asked for.
	// Keep it off where the address is reachable by others.
	Pprof bool `yaml:"pprof"`
}

// DefaultHTTPConfig listens on loopback only; expose it deliberately.
func DefaultHTTPConfig() HTTPConfig { return HTTPConfig{Addr: "127.0.0.1:9464"} }

// Validate checks that Addr is host:port (empty disables the server).
func (c HTTPConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	var check config.Check
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		check.Addf("addr", "%q is not host:port", c.Addr)
	}
	return check.Err()
}

// Handler serves /metrics, /healthz and /readyz, and /debug/pprof/ when
// withPprof is set. A non-nil root serves every other path (the console,
// at /); those routes stay more specific, so root cannot shadow them.
func Handler(reg *prometheus.Registry, h *Health, withPprof bool, root http.Handler) http.Handler {
	mux := http.NewServeMux()
	if root != nil {
		mux.Handle("/", root)
	}
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		failed := h.Ready(ctx)
		if len(failed) == 0 {
			io.WriteString(w, "ready\n")
			return
		}
		names := make([]string, 0, len(failed))
		for name := range failed {
			names = append(names, name)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, name := range names {
			fmt.Fprintf(&b, "%s: %v\n", name, failed[name])
		}
		http.Error(w, b.String(), http.StatusServiceUnavailable)
	})
	return mux
}

// Serve runs the HTTP server on ln until ctx ends, then shuts it down.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	<-done
	return nil
}
