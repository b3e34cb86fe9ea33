package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/worker"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Worker serves the console. It holds no state of its own: every page is
// read from ClickHouse and the KV buckets when it is asked for.
type Worker struct {
	cfg   Config
	set   worker.Settings
	log   *slog.Logger
	pages *template.Template

	// open connects to ClickHouse; replaced by tests.
	open func(ctx context.Context) (driver.Conn, error)

	mu      sync.Mutex
	conn    driver.Conn
	buckets map[string]jetstream.KeyValue

	baselines *baselineCache

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the console from its config section and the shared settings.
func New(cfg Config, s worker.Settings) (*Worker, error) {
	var check config.Check
	check.Nest("console", cfg.Validate())
	check.Nest("clickhouse", s.ClickHouse.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	pages, err := template.New("console").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	w := &Worker{cfg: cfg, set: s, log: s.Logger, pages: pages, buckets: map[string]jetstream.KeyValue{}, baselines: newBaselineCache()}
	ch := s.ClickHouse
	w.open = func(ctx context.Context) (driver.Conn, error) { return chstore.Open(ctx, ch) }
	w.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailmon_console_requests_total",
		Help: "Console requests by page and HTTP status code.",
	}, []string{"page", "code"})
	w.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mailmon_console_page_seconds",
		Help:    "Time to build a console page (queries included), by page.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"page"})
	if err := s.Metrics.Register(w.requests); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := s.Metrics.Register(w.duration); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return w, nil
}

// Run reports the console ready while ClickHouse answers and waits for
// ctx to end; the pages are served by Handler on the process's HTTP
// listener.
func (w *Worker) Run(ctx context.Context) error {
	w.set.Health.Register(WorkerName, func(ctx context.Context) error {
		conn, err := w.connection(ctx)
		if err != nil {
			return err
		}
		return conn.Ping(ctx)
	})
	<-ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	return nil
}

// connection opens the ClickHouse connection on first use, so the console
// starts while ClickHouse is down and serves once it is up.
func (w *Worker) connection(ctx context.Context) (driver.Conn, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		return w.conn, nil
	}
	conn, err := w.open(ctx)
	if err != nil {
		return nil, err
	}
	w.conn = conn
	return conn, nil
}

// bucket opens a KV bucket on first use.
func (w *Worker) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	w.mu.Lock()
	kv := w.buckets[name]
	w.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := w.set.JetStream.KeyValue(ctx, name)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.buckets[name] = kv
	w.mu.Unlock()
	return kv, nil
}

// Handler serves the console's pages under / and its assets under
// /static/; nil when the console is disabled. Every request is
// authenticated (see authorize).
func (w *Worker) Handler() http.Handler {
	if !w.cfg.Enabled {
		return nil
	}
	mux := http.NewServeMux()
	page := func(name string, build func(ctx context.Context, s source, p Params) (any, error)) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.servePage(rw, r, name, build) })
	}
	mux.Handle("GET /{$}", page("overview", func(ctx context.Context, s source, p Params) (any, error) { return s.overview(ctx, p) }))
	mux.Handle("GET /probes", page("probes", func(ctx context.Context, s source, p Params) (any, error) { return s.probes(ctx, p) }))
	mux.Handle("GET /deliveries", page("deliveries", func(ctx context.Context, s source, p Params) (any, error) { return s.deliveries(ctx, p) }))
	mux.Handle("GET /blocklists", page("blocklists", func(ctx context.Context, s source, p Params) (any, error) { return s.blocklists(ctx, p) }))
	mux.Handle("GET /complaints", page("complaints", func(ctx context.Context, s source, p Params) (any, error) { return s.complaints(ctx, p) }))
	mux.Handle("GET /alerts", page("alerts", func(ctx context.Context, s source, p Params) (any, error) { return s.alerts(ctx, p) }))
	mux.Handle("GET /trace", page("trace", func(ctx context.Context, s source, p Params) (any, error) { return s.trace(ctx, p) }))
	mux.HandleFunc("GET /suppression", func(rw http.ResponseWriter, r *http.Request) {
		address := r.URL.Query().Get("address")
		w.servePage(rw, r, "suppression", func(ctx context.Context, s source, p Params) (any, error) { return s.suppression(ctx, p, address) })
	})
	mux.Handle("GET /dmarc", page("dmarc", func(ctx context.Context, s source, p Params) (any, error) { return s.dmarc(ctx, p) }))
	mux.Handle("GET /report", page("report", func(ctx context.Context, s source, p Params) (any, error) { return s.report(ctx, p) }))
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if code := w.authorize(r); code != 0 {
			if code == http.StatusUnauthorized {
				if w.cfg.Username != "" {
					h.Set("WWW-Authenticate", `Basic realm="mailmon console", charset="UTF-8"`)
				} else {
					h.Set("WWW-Authenticate", `Bearer realm="mailmon console"`)
				}
			}
			w.requests.WithLabelValues("denied", fmt.Sprint(code)).Inc()
			http.Error(rw, http.StatusText(code), code)
			return
		}
		mux.ServeHTTP(rw, r)
	})
}

// authorize returns 0 when the request may be served, else the status to
// answer. Without auth configured only loopback clients are served (403
// for others); with auth configured every request must carry the bearer
// token or the basic credentials, whatever its address (401). Secrets are
// compared in constant time (as SHA-256 digests, so their length does
// not show either).
func (w *Worker) authorize(r *http.Request) int {
	if !w.cfg.HasAuth() {
		if loopbackClient(r.RemoteAddr) {
			return 0
		}
		return http.StatusForbidden
	}
	auth := r.Header.Get("Authorization")
	if w.cfg.Token != "" {
		if token, ok := strings.CutPrefix(auth, "Bearer "); ok && equalSecret(strings.TrimSpace(token), w.cfg.Token.Reveal()) {
			return 0
		}
	}
	if w.cfg.Username != "" {
		if user, pass, ok := r.BasicAuth(); ok {
			userOK := equalSecret(user, w.cfg.Username)
			passOK := equalSecret(pass, w.cfg.Password.Reveal())
			if userOK && passOK {
				return 0
			}
		}
	}
	return http.StatusUnauthorized
}

func equalSecret(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func loopbackClient(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// wantsJSON reports whether the client asked for JSON.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if t, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && t == "application/json" {
			return true
		}
	}
	return false
}

// servePage parses the parameters, builds the page within the query
// timeout and writes it as HTML or JSON.
func (w *Worker) servePage(rw http.ResponseWriter, r *http.Request, name string, build func(ctx context.Context, s source, p Params) (any, error)) {
	start := time.Now()
	asJSON := wantsJSON(r)
	code := http.StatusOK
	defer func() {
		w.requests.WithLabelValues(name, fmt.Sprint(code)).Inc()
		w.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	}()
	fail := func(status int, err error) {
		code = status
		if asJSON {
			writeJSON(rw, status, map[string]string{"error": err.Error()})
			return
		}
		http.Error(rw, err.Error(), status)
	}
	now := w.set.Now().UTC().Truncate(time.Second)
	p, err := parseParams(r.URL.Query(), now, w.cfg.MaxRange.Std())
	if err != nil {
		fail(http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.QueryTimeout.Std())
	defer cancel()
	conn, err := w.connection(ctx)
	if err != nil {
		w.log.Warn("clickhouse not reachable", "error", err)
		fail(http.StatusServiceUnavailable, fmt.Errorf("clickhouse not reachable: %w", err))
		return
	}
	data, err := build(ctx, source{conn: conn, kv: w.bucket, cfg: w.cfg, now: now, cache: w.baselines}, p)
	if err != nil {
		w.log.Error("console page failed", "page", name, "error", err)
		status := http.StatusInternalServerError
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		fail(status, err)
		return
	}
	if asJSON {
		writeJSON(rw, http.StatusOK, data)
		return
	}
	var buf bytes.Buffer
	if err := w.pages.ExecuteTemplate(&buf, name, data); err != nil {
		w.log.Error("console page render failed", "page", name, "error", err)
		fail(http.StatusInternalServerError, fmt.Errorf("render: %w", err))
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Write(buf.Bytes())
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
