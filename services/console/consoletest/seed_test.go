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

// TestSeedDMARCFillsTheRollups seeds the reports and checks the daily
// rollups the DMARC page reads hold the messages and sessions the truth
// counts over the last eight days.
func TestSeedDMARCFillsTheRollups(t *testing.T) {
	ctx := context.Background()
	conn, _ := chtest.NewDatabase(t, server)
	now := time.Now().UTC()
	truth, err := consoletest.SeedDMARC(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	v := truth.View(now.Add(-7*24*time.Hour), now, consoletest.DMARCFilter{})
	var messages, pass, sessions, failures uint64
	for _, r := range v.Rows {
		messages, pass = messages+r.Messages, pass+r.Pass
	}
	for _, r := range v.TLS {
		sessions, failures = sessions+r.Sessions, failures+r.Failures
	}
	if messages != 3310 || pass != 2550 || sessions != 2420 || failures != 100 {
		t.Errorf("truth over 8 days: %d messages, %d passing, %d TLS sessions, %d failed; the seed says 3310, 2550, 2420, 100", messages, pass, sessions, failures)
	}
	var gotMessages, gotPass, gotSessions, gotFailures uint64
	if err := conn.QueryRow(ctx, `SELECT sumMerge(messages), sumMerge(messages_dmarc_pass) FROM dmarc_record_1d WHERE bucket >= ? AND bucket <= ?`,
		v.FirstDay, v.LastDay).Scan(&gotMessages, &gotPass); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT sumMerge(successful_sessions) + sumMerge(failed_sessions), sumMerge(failed_sessions) FROM tlsrpt_result_1d
		WHERE bucket >= ? AND bucket <= ?`, v.FirstDay, v.LastDay).Scan(&gotSessions, &gotFailures); err != nil {
		t.Fatal(err)
	}
	if gotMessages != messages || gotPass != pass || gotSessions != sessions || gotFailures != failures {
		t.Errorf("the rollups hold %d messages, %d passing, %d sessions, %d failed; the truth says %d, %d, %d, %d",
			gotMessages, gotPass, gotSessions, gotFailures, messages, pass, sessions, failures)
	}
}
