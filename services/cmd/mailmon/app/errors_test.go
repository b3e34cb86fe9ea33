package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/probesender"
)

// runWorker runs one worker until it fails (or a minute passes) and
// returns Run's error.
func runWorker(t *testing.T, cfg Config, name string) error {
	t.Helper()
	defs, err := SelectWorkers(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), RunOptions{Workers: defs})
}

// A worker's error reaches the log with the worker's name in front, once:
// the runtime adds it, the worker never does.
func TestWorkerErrorsArePrefixedOnce(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		cfg := natsOnlyConfig(t)
		cfg.PolicyService.Listen = taken.Addr().String()
		err = runWorker(t, cfg, "policy-service")
		if err == nil || !strings.HasPrefix(err.Error(), "policy-service: listen: ") || strings.Count(err.Error(), "policy-service") != 1 {
			t.Fatalf("Run = %v, want one error starting \"policy-service: listen: \" that names the worker once", err)
		}
	})
	t.Run("build", func(t *testing.T) {
		cfg := natsOnlyConfig(t)
		cfg.ProbeSender.From = "probe@sender.test"
		cfg.ProbeSender.Sources = []probesender.Source{{Name: "relay", Type: probesender.SourceSMTP, Addr: "127.0.0.1:25"}}
		cfg.ProbeSender.Targets = []probesender.Target{{Name: "seed", Provider: "gmail", Address: "seed@inbox.test"}}
		err := runWorker(t, cfg, "probe-sender")
		if err == nil || err.Error() != "probe-sender: tracking.key: required to sign probes" {
			t.Fatalf("Run = %v, want \"probe-sender: tracking.key: required to sign probes\"", err)
		}
		var problems config.Problems
		if !errors.As(err, &problems) || len(problems) != 1 || problems[0].Path != "tracking.key" {
			t.Fatalf("the configuration problem is not a config.Problems with its path: %#v", err)
		}
	})
}
