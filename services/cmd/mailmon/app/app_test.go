package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
)

// testConfig is the local default, moved into a temp dir on free ports.
func testConfig(t *testing.T, dataDir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.Embedded.Listen = "127.0.0.1:0"
	cfg.ClickHouse.Local.Enabled = true
	cfg.ClickHouse.Local.Dir = filepath.Join(dataDir, "clickhouse")
	cfg.ClickHouse.Local.TCPPort = freePort(t)
	cfg.ClickHouse.Local.HTTPPort = freePort(t)
	cfg.ClickHouse.Addr = fmt.Sprintf("127.0.0.1:%d", cfg.ClickHouse.Local.TCPPort)
	// Listeners on free ports: a mailmon run elsewhere on the machine
	// holds the default ones.
	cfg.PolicyService.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runUntilReady runs mailmon, calls check once everything is up, then
// cancels and returns what Run returned.
func runUntilReady(t *testing.T, cfg Config, check func(*Runtime)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := false
	err := Run(ctx, cfg, logger, RunOptions{ClickHouse: true, Ready: func(rt *Runtime) {
		ready = true
		check(rt)
		cancel()
	}})
	if !ready {
		t.Fatalf("mailmon never became ready: %v", err)
	}
	return err
}

func TestRunLocalDefaultStartsEverythingAndSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	var published *schemas.AlertRaised

	err = runUntilReady(t, cfg, func(rt *Runtime) {
		ctx := context.Background()
		for _, s := range top.Streams {
			if _, err := rt.JetStream.Stream(ctx, s.Name); err != nil {
				t.Errorf("stream %s not applied: %v", s.Name, err)
			}
		}
		for _, k := range schemas.Kinds() {
			var n uint64
			q := "SELECT count() FROM system.tables WHERE database = ? AND name = ?"
			if err := rt.ClickHouse.QueryRow(ctx, q, cfg.ClickHouse.Database, k.Table).Scan(&n); err != nil || n != 1 {
				t.Errorf("table %s: count %d, err %v", k.Table, n, err)
			}
		}
		if failed := rt.Health.Ready(ctx); len(failed) > 0 {
			t.Errorf("not ready: %v", failed)
		}
		published = &schemas.AlertRaised{Rule: "test", Severity: "info", Subject: "ip:192.0.2.1", Summary: "restart test", DedupeKey: "t"}
		if err := schemas.Stamp(published, schemas.Source{Worker: "test", Host: "h"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := bus.NewPublisher(rt.JetStream, bus.PublisherOptions{}).Publish(ctx, published); err != nil {
			t.Errorf("publish: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}

	// The second start finds the stream data and the tables it left.
	err = runUntilReady(t, cfg, func(rt *Runtime) {
		st, err := rt.JetStream.Stream(context.Background(), "ALERT")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := st.GetLastMsgForSubject(context.Background(), schemas.SubjectAlertRaised)
		if err != nil {
			t.Fatalf("event published before the restart is gone: %v", err)
		}
		if got := msg.Header.Get("Nats-Msg-Id"); got != published.ID {
			t.Errorf("stored message id %q, want the event id %q", got, published.ID)
		}
	})
	if err != nil {
		t.Fatalf("second Run returned %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSelectWorkers(t *testing.T) {
	var every []string
	for _, d := range definitions {
		every = append(every, d.Name)
	}
	valid := []struct {
		spec string
		want []string
	}{
		{"all", every},
		{"", every},
		{"notifier", []string{"notifier"}},
		// The flag's order is kept, not the registry's.
		{"policy-service,clickhouse-sink", []string{"policy-service", "clickhouse-sink"}},
		// Spaces around names are ignored; a repeated name runs once.
		{" notifier , dns-sweeper,notifier ", []string{"notifier", "dns-sweeper"}},
	}
	for _, tc := range valid {
		defs, err := SelectWorkers(tc.spec)
		if err != nil {
			t.Errorf("SelectWorkers(%q): %v", tc.spec, err)
			continue
		}
		var got []string
		for _, d := range defs {
			got = append(got, d.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("SelectWorkers(%q) = %q, want %q", tc.spec, got, tc.want)
		}
	}

	known := "known: all, " + strings.Join(every, ", ")
	invalid := []struct {
		spec    string
		unknown string
	}{
		{"no-such-worker", "no-such-worker"},
		{"notifier,bogus,dns-sweeper,other", "bogus, other"},
		{"all,notifier", "all"}, // "all" stands alone
	}
	for _, tc := range invalid {
		defs, err := SelectWorkers(tc.spec)
		if err == nil {
			t.Errorf("SelectWorkers(%q) accepted: %d workers", tc.spec, len(defs))
			continue
		}
		want := "unknown worker(s) " + tc.unknown + "; " + known
		if err.Error() != want {
			t.Errorf("SelectWorkers(%q) error:\n got %q\nwant %q", tc.spec, err, want)
		}
	}
}
