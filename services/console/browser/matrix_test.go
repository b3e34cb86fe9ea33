package browser

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
)

// matrixCell is traffic of one more IP × provider, for customer
// matrixCustomer (who is under no decision), beyond consoletest's.
type matrixCell struct {
	ip, provider            string
	sent, deferred, bounced int
	category                string // of the deferrals and bounces
	placement               string // of the one probe: inbox, spam, missing; "" for none
	latencyMs               int64
}

const matrixCustomer = "gamma"

// matrixCells fill a 3 × 3 matrix with consoletest's two cells: one cell
// stays empty, and the signals run from ok to bad.
var matrixCells = []matrixCell{
	{ip: consoletest.SourceIP, provider: "outlook", sent: 480, deferred: 20, category: "rate_limited", placement: schemas.PlacementInbox, latencyMs: 1800},
	{ip: consoletest.CleanIP, provider: consoletest.Provider, sent: 588, deferred: 12, category: "rate_limited", placement: schemas.PlacementSpam, latencyMs: 5200},
	{ip: consoletest.CleanIP, provider: "outlook", sent: 250, placement: schemas.PlacementInbox, latencyMs: 900},
	{ip: "192.0.2.12", provider: consoletest.Provider, sent: 190, bounced: 10, category: "blocked_ip_or_blocklist", placement: "missing"},
	{ip: "192.0.2.12", provider: consoletest.CleanProvider, sent: 400, placement: schemas.PlacementInbox, latencyMs: 1500},
	{ip: "192.0.2.12", provider: "outlook", sent: 320, deferred: 8, category: "rate_limited"},
}

// checkMatrix opens the overview of three IPs × three providers
// (consoletest's events and more, in a console of their own) and checks
// every cell, in the page and in its JSON; its screenshot is the one in
// the README.
func checkMatrix(t *testing.T, b *browser) {
	c := startConsole(t, insertMatrix)
	b.open(c.page("/"))

	want := []consoletest.Cell{c.truth.Cell, c.truth.CleanCell}
	for _, m := range matrixCells {
		want = append(want, m.want())
	}
	for _, cell := range want {
		checkCell(t, b, cell)
	}
	if got := b.texts("table.matrix thead th[scope=col]"); fmt.Sprint(got) != "[gmail outlook yahoo]" {
		t.Errorf("providers %q, want gmail outlook yahoo", got)
	}
	if got := b.texts("table.matrix tbody th[scope=row]"); fmt.Sprint(got) != "[192.0.2.10 192.0.2.11 192.0.2.12]" {
		t.Errorf("rows %q, want 192.0.2.10 192.0.2.11 192.0.2.12", got)
	}
	if got := b.count("td.cell.none"); got != 1 {
		t.Errorf("%d empty cells, want 1 (%s × %s)", got, consoletest.SourceIP, consoletest.CleanProvider)
	}
	b.screenshot("overview-matrix")

	var o console.Overview
	fetchJSON(t, c.page("/"), &o)
	if len(o.Cells) != len(want) {
		t.Errorf("JSON: %d cells, want %d", len(o.Cells), len(want))
	}
	for _, cell := range want {
		same(t, "JSON cell "+cell.Row+" × "+cell.Provider, cellOf(o, cell.Row, cell.Provider), cell)
	}
}

// want is what the overview shows for the cell: its last hour is the
// whole of its traffic, no baseline, no complaints, the seeded listing on
// consoletest.SourceIP.
func (m matrixCell) want() consoletest.Cell {
	attempts := uint64(m.sent + m.deferred + m.bounced)
	c := consoletest.Cell{
		Row: m.ip, Provider: m.provider,
		Attempts: attempts, Sent: uint64(m.sent), Deferred: uint64(m.deferred), Failed: uint64(m.bounced),
		DeliveredPct:   100 * float64(m.sent) / float64(attempts),
		DeferredPct:    100 * float64(m.deferred) / float64(attempts),
		LastPlacement:  m.placement,
		ComplaintLevel: "ok",
		Signal:         "ok",
	}
	if m.deferred+m.bounced > 0 {
		c.TopRejection = m.category
	}
	if m.placement != "missing" {
		c.LastLatencyMs = float64(m.latencyMs)
	}
	if m.placement == schemas.PlacementSpam {
		c.Signal = "warn"
	}
	if m.ip == consoletest.SourceIP {
		c.Listings = []string{consoletest.ListedZone}
	}
	if m.placement == "missing" || len(c.Listings) > 0 {
		c.Signal = "bad"
	}
	return c
}

// insertMatrix inserts the raw events of matrixCells within the last
// hour before now.
func insertMatrix(ctx context.Context, conn driver.Conn, now time.Time) error {
	var deliveries [][]any
	add := func(m matrixCell, status, dsn string, code uint16, reply, reason, category string) {
		n := len(deliveries)
		domain := m.provider + ".example"
		deliveries = append(deliveries, []any{fmt.Sprintf("matrix-%05d", n), schemas.TypeDeliveryAttempted, now.Add(-time.Duration(1+n%50) * time.Minute),
			fmt.Sprintf("trk-matrix-%05d", n), matrixCustomer, m.ip, m.provider, domain, fmt.Sprintf("MATRIXQ%05d", n),
			fmt.Sprintf("user%d@%s", n, domain), status, dsn, code, reply, reason, category, category + "-" + dsn})
	}
	for _, m := range matrixCells {
		for range m.sent {
			add(m, schemas.StatusSent, "2.0.0", 250, "250 2.0.0 OK", "delivered", "other")
		}
		for range m.deferred {
			add(m, schemas.StatusDeferred, "4.7.0", 421, "421 4.7.0 Try again later", "speeding", m.category)
		}
		for range m.bounced {
			add(m, schemas.StatusBounced, "5.7.1", 550, "550 5.7.1 Blocked", "blocked", m.category)
		}
	}

	var sent, received, missing [][]any
	for i, m := range matrixCells {
		if m.placement == "" {
			continue
		}
		id := fmt.Sprintf("probe-matrix-%d", i)
		domain := m.provider + ".example"
		seed := "seed@" + domain
		arrived := now.Add(-15 * time.Minute)
		sentAt := arrived.Add(-time.Duration(m.latencyMs) * time.Millisecond)
		if m.placement == "missing" {
			sentAt = arrived.Add(-15 * time.Minute)
			missing = append(missing, []any{id + "-missing", schemas.TypeProbeMissing, arrived, id, "trk-" + id, m.ip, m.provider, domain, seed, sentAt, int64(15 * 60 * 1000)})
		} else {
			received = append(received, []any{id + "-received", schemas.TypeProbeReceived, arrived, id, "trk-" + id, m.ip, m.provider, domain, seed,
				m.placement, "INBOX", sentAt, arrived, m.latencyMs})
		}
		sent = append(sent, []any{id + "-sent", schemas.TypeProbeSent, sentAt, id, "trk-" + id, m.ip, m.provider, domain, seed, schemas.OutcomeAccepted, "Q" + id})
	}

	for _, b := range []struct {
		statement string
		rows      [][]any
	}{
		{"INSERT INTO delivery_attempted (id, type, time, tracking_id, customer, source_ip, provider, recipient_domain, queue_id, recipient, status, dsn, reply_code, reply, reason, category, signature)", deliveries},
		{"INSERT INTO probe_sent (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, outcome, queue_id)", sent},
		{"INSERT INTO probe_received (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, placement, folder, sent_at, arrived_at, latency_ms)", received},
		{"INSERT INTO probe_missing (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, sent_at, deadline_ms)", missing},
	} {
		batch, err := conn.PrepareBatch(ctx, b.statement)
		if err != nil {
			return err
		}
		for _, row := range b.rows {
			if err := batch.Append(row...); err != nil {
				batch.Abort()
				return fmt.Errorf("%s: %w", b.statement, err)
			}
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("%s: %w", b.statement, err)
		}
	}
	return nil
}
