package mtalogtailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the tailer's subcommand, log name and dead-letter suffix.
const WorkerName = "mta-log-tailer"

// Bucket is the KV bucket that holds the checkpoints (declared in
// pipelines/topology.yaml).
const Bucket = "tailer_offsets"

// Tailer is the mta-log-tailer worker. Build it with New and start it with
// Run.
type Tailer struct {
	cfg       Config
	track     worker.Tracking
	set       worker.Settings
	log       *slog.Logger
	metrics   *metrics
	zone      *time.Location
	providers *providers
	sourceIPs sourceIPs
	host      string
	kind      schemas.Kind

	// stdin is what a "-" file reads; os.Stdin unless a test sets it.
	stdin io.Reader
	// crashOnCancel makes Run return at cancellation without confirming
	// publishes or storing checkpoints, as a killed process would (tests).
	crashOnCancel bool

	mu      sync.Mutex
	failing map[string]error // file → error of its last failed session
}

// New checks the configuration and builds a tailer; nothing is read until
// Run.
func New(cfg Config, s worker.Settings) (*Tailer, error) {
	var check config.Check
	check.Nest("mta_log_tailer", cfg.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	zone, _ := loadZone(cfg.TimeZone) // checked by Validate
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	kind, err := schemas.KindOf(&schemas.DeliveryAttempted{})
	if err != nil {
		return nil, err
	}
	t := &Tailer{
		cfg:       cfg,
		track:     s.Tracking,
		set:       s,
		log:       s.Logger,
		metrics:   m,
		zone:      zone,
		providers: newProviders(cfg.Providers),
		sourceIPs: sourceIPs{cfg: cfg.SourceIPs},
		host:      s.Source.Host,
		kind:      kind,
		stdin:     os.Stdin,
		failing:   map[string]error{},
	}
	return t, nil
}

// Run follows every configured file until ctx ends (or, for standard
// input, until its end), publishing one delivery.attempted per delivery
// attempt. At cancellation it waits for JetStream to confirm what was
// published, stores the checkpoints and returns nil. Errors reading a file
// or publishing are retried from the file's last checkpoint; Run returns an
// error only when the checkpoint bucket is missing.
func (t *Tailer) Run(ctx context.Context) error {
	if t.track.Keyring == nil {
		t.log.Warn("no tracking key configured: tracking headers cannot be verified and are ignored")
	}
	var kv jetstream.KeyValue
	for _, f := range t.cfg.Files {
		if f.Path == "-" {
			continue
		}
		var err error
		if kv, err = t.set.JetStream.KeyValue(ctx, Bucket); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("key-value bucket %s (apply the pipelines first): %w", Bucket, err)
		}
		break
	}
	t.set.Health.Register(WorkerName, t.ready)
	var wg sync.WaitGroup
	for _, f := range t.cfg.Files {
		ft := t.newFileTailer(f, kv)
		wg.Go(func() { ft.run(ctx) })
	}
	wg.Wait()
	return nil
}

// ready fails while some file's last attempt failed.
func (t *Tailer) ready(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for path, err := range t.failing {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return errors.Join(errs...)
}

func (t *Tailer) setFailing(path string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		delete(t.failing, path)
	} else {
		t.failing[path] = err
	}
}

// checkpointKey is a file's key in the bucket: KV keys allow few
// characters, so the path is hashed (the document inside names it).
func checkpointKey(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "file." + hex.EncodeToString(sum[:12])
}

// newPublisher gives each file its own publisher, so that the failures a
// Flush reports are that file's own and a file checkpoints only what was
// confirmed for it.
func (t *Tailer) newPublisher() *bus.Publisher {
	return bus.NewPublisher(t.set.JetStream, bus.PublisherOptions{Worker: WorkerName, Metrics: t.set.Metrics})
}
