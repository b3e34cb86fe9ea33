package consoletest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

var server *chstore.LocalServer

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }

// TestSeedFillsTheRollups seeds a database and checks the rollups the
// console reads hold the seeded counts, and that the KV state goes in.
func TestSeedFillsTheRollups(t *testing.T) {
	ctx := context.Background()
	conn, _ := chtest.NewDatabase(t, server)
	truth, err := consoletest.Seed(ctx, conn, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if truth.Cell.Sent != 970 || truth.Cell.Deferred != 20 || truth.Cell.Failed != 10 || truth.Cell.DeliveredPct != 97 {
		t.Errorf("cell = %+v, want 970 sent, 20 deferred, 10 failed, 97 %% delivered", truth.Cell)
	}
	var sent uint64
	if err := conn.QueryRow(ctx, `SELECT countMerge(attempts) FROM delivery_status_5m
		WHERE source_ip = ? AND provider = ? AND status = 'sent' AND bucket >= ? AND bucket <= ?`,
		consoletest.SourceIP, consoletest.Provider, truth.From, truth.To).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if sent != truth.Cell.Sent {
		t.Errorf("delivery_status_5m holds %d sent in the range, Truth says %d", sent, truth.Cell.Sent)
	}
	var q []float64
	if err := conn.QueryRow(ctx, `SELECT quantilesMerge(0.5, 0.95)(latency_ms) FROM probe_received_5m WHERE source_ip = ? AND provider = ?`,
		consoletest.SourceIP, consoletest.Provider).Scan(&q); err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q[0] != truth.Probes[0].LatencyP50Ms || q[1] != truth.Probes[0].LatencyP95Ms {
		t.Errorf("latency quantiles = %v, Truth says p50 %v p95 %v", q, truth.Probes[0].LatencyP50Ms, truth.Probes[0].LatencyP95Ms)
	}
	_, _, js := natstest.Start(t)
	if err := consoletest.SeedKV(ctx, js, truth); err != nil {
		t.Fatal(err)
	}
}
