package fblingester

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the ingester's subcommand, log name and dead-letter suffix.
const WorkerName = "fbl-ingester"

// Ingester is the fbl-ingester worker. Build it with New and start it with
// Run.
type Ingester struct {
	cfg       Config
	set       worker.Settings
	log       *slog.Logger
	m         *metrics
	pub       *bus.Publisher
	tracer    *tracer
	trust     *trustPolicy
	providers *providers
	source    schemas.Source
	now       func() time.Time
	window    unmatchedWindow
	tls       *tls.Config

	addrs   map[string]bool
	domains map[string]bool

	// listening is closed once the SMTP listener is bound (or known to be
	// off); listenAddr is then its address.
	listening  chan struct{}
	listenAddr string

	// silences marks the alerts raised during a silence; nil when they
	// cannot be read (and in `mailmon fbl import`, which raises none).
	silences *silence.Store

	mu      sync.Mutex
	failing map[string]error // input name → its last pull's error
}

// New checks the configuration and builds an ingester; nothing listens or
// is read until Run.
func New(cfg Config, s worker.Settings) (*Ingester, error) {
	var check config.Check
	check.Nest("fbl_ingester", cfg.Validate())
	var tlsCfg *tls.Config
	if cfg.SMTP.TLSCertFile != "" && cfg.SMTP.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTP.TLSCertFile, cfg.SMTP.TLSKeyFile)
		if err != nil {
			check.Addf("fbl_ingester.smtp.tls_cert_file", "%v", err)
		} else {
			tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	in := &Ingester{
		cfg:       cfg,
		set:       s,
		log:       s.Logger,
		m:         m,
		providers: newProviders(cfg.Providers),
		source:    s.Source,
		now:       s.Now,
		tls:       tlsCfg,
		addrs:     map[string]bool{},
		domains:   map[string]bool{},
		listening: make(chan struct{}),
		failing:   map[string]error{},
	}
	in.tracer = newTracer(cfg.Trace, s.Tracking, func() time.Time { return in.now() })
	in.trust = newTrustPolicy(cfg.Trust)
	// A publisher of our own: its AckTimeout is the publish timeout, so a
	// sender waiting on DATA hears 451 in bounded time when NATS is away.
	in.pub = bus.NewPublisher(s.JetStream, bus.PublisherOptions{Worker: WorkerName, AckTimeout: cfg.PublishTimeout.Std(), Metrics: s.Metrics})
	for _, a := range cfg.SMTP.Addresses {
		in.addrs[strings.ToLower(strings.TrimSpace(a))] = true
	}
	for _, d := range cfg.SMTP.Domains {
		in.domains[strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")] = true
	}
	return in, nil
}

// smtpEnabled says whether the listener runs: it needs an address to
// listen on and at least one recipient to accept.
func (in *Ingester) smtpEnabled() bool {
	return in.cfg.SMTP.Listen != "" && (len(in.addrs) > 0 || len(in.domains) > 0)
}

// Run listens, pulls and imports until ctx ends, then drains: the SMTP
// listener stops accepting, sessions in progress finish (bounded by
// drain_timeout), pulls and imports finish the message in hand. It returns
// nil on a clean shutdown and an error when the listener cannot start.
func (in *Ingester) Run(ctx context.Context) error {
	if in.tracer.track.Keyring == nil {
		in.log.Warn("no tracking key configured: tracking headers cannot be verified and are ignored")
	}
	in.set.Health.Register(WorkerName, in.ready)
	in.silences = silence.OpenForStamping(ctx, in.set.JetStream, in.log)
	if in.silences != nil {
		defer in.silences.Close()
	}
	var wg sync.WaitGroup
	var srv *smtp.Server
	var lim *limitListener
	if in.smtpEnabled() {
		ln, err := net.Listen("tcp", in.cfg.SMTP.Listen)
		if err != nil {
			close(in.listening)
			return fmt.Errorf("smtp listen: %w", err)
		}
		in.listenAddr = ln.Addr().String()
		srv = in.newSMTPServer()
		lim = newLimitListener(ln, in.cfg.SMTP.MaxConnections, in.cfg.SMTP.SessionTimeout.Std(),
			func() { in.m.smtpRefused.WithLabelValues("connections").Inc() },
			func() { in.m.smtpRefused.WithLabelValues("session_timeout").Inc() })
		wg.Go(func() {
			if err := srv.Serve(lim); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				in.log.Error("smtp listener stopped", "error", err)
			}
		})
		in.log.Info("smtp listener started", "addr", in.listenAddr, "starttls", in.tls != nil)
	} else if in.cfg.SMTP.Listen != "" {
		in.log.Info("smtp listener off: no smtp.addresses or smtp.domains configured")
	}
	close(in.listening)
	for _, a := range in.cfg.IMAP.Accounts {
		wg.Go(func() { in.runIMAP(ctx, a) })
	}
	for _, d := range in.cfg.Files.Dirs {
		wg.Go(func() { in.runDir(ctx, d, false) })
	}
	for _, d := range in.cfg.Files.TrustedDirs {
		wg.Go(func() { in.runDir(ctx, d, true) })
	}
	<-ctx.Done()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.DrainTimeout.Std())
		if err := srv.Shutdown(sctx); err != nil {
			in.log.Warn("smtp sessions cut at the end of the drain timeout", "error", err)
			srv.Close()
		}
		cancel()
		// Shutdown closes the listeners Serve has registered; one whose
		// Serve had not started yet (a stop right after the start) would
		// be missed and Serve would wait in Accept for ever.
		_ = lim.Close()
	}
	wg.Wait()
	return nil
}

// Addr returns the SMTP listener's address once Run has bound it, or ""
// when the listener is off (or ctx ends first).
func (in *Ingester) Addr(ctx context.Context) string {
	select {
	case <-in.listening:
		return in.listenAddr
	case <-ctx.Done():
		return ""
	}
}

// ready fails while some mailbox or directory's last pull failed.
func (in *Ingester) ready(context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	var errs []error
	for name, err := range in.failing {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return errors.Join(errs...)
}

func (in *Ingester) setFailing(name string, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err == nil {
		delete(in.failing, name)
	} else {
		in.failing[name] = err
	}
}
