package chstore_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// TestCountRollupsMatchTheRawTables inserts raw events spread over two
// days into every source of the console's count rollups and checks each
// rollup, read as the console reads it (countMerge, GROUP BY), against the
// same count from the raw table, and the DMARC and TLS report rollups'
// sums of messages and sessions against the raw sums; then the fixed-size
// states beside the counts: latency quantiles, a sample reply, the latest
// listing and decision times.
func TestCountRollupsMatchTheRawTables(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate(schemas.Migrations): %v", err)
	}
	insertCountRollupSources(t, conn, func(table string) string { return table })
	checkCountRollups(t, conn)
}

// countRollupStart is the time of the first row insertCountRollupSources
// writes; row i is 7 minutes after row i-1, so the rows span two days.
var countRollupStart = time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)

func countRollupAt(i int) time.Time { return countRollupStart.Add(time.Duration(i) * 7 * time.Minute) }

// insertCountRollupSources writes 40 rows into every source of the count
// rollups, into the table into(name) names: the table itself on one
// server, its local table on a cluster.
func insertCountRollupSources(t *testing.T, conn driver.Conn, into func(table string) string) {
	t.Helper()
	at := countRollupAt
	providers := []string{"gmail", "yahoo", "microsoft"}
	ips := []string{"192.0.2.1", "192.0.2.2"}
	statuses := []string{"sent", "sent", "sent", "deferred", "bounced"}
	placements := []string{"inbox", "inbox", "spam"}

	var deliveries, probesSent, probesReceived, missing, complaints, listed, delisted, cutoffs, reroutes, dmarcRecords, tlsResults [][]any
	verdicts := []string{"pass", "fail"}
	dispositions := []string{"none", "none", "quarantine", "reject"}
	reporters := []string{"google.com", "yahoo.com", "outlook.com"}
	for i := range 40 {
		p, ip, st := providers[i%3], ips[i%2], statuses[i%5]
		category, reply, signature := "", "250 2.0.0 OK", "250 ok"
		if st != "sent" {
			category, reply, signature = "policy", fmt.Sprintf("550 5.7.1 blocked ref %d", i), "550 5.7.1 blocked ref #"
		}
		deliveries = append(deliveries, []any{fmt.Sprintf("d%d", i), at(i), p, ip, "acme", "example.org", st, category, reply, signature})
		probesSent = append(probesSent, []any{fmt.Sprintf("ps%d", i), at(i), p, ip, []string{"sent", "failed"}[min(i%7, 1)]})
		probesReceived = append(probesReceived, []any{fmt.Sprintf("pr%d", i), at(i), p, ip, placements[i%3], int64(1000 * (i%4 + 1))})
		missing = append(missing, []any{fmt.Sprintf("pm%d", i), at(i), p, ip})
		complaints = append(complaints, []any{fmt.Sprintf("c%d", i), at(i), p, ip, "acme", "abuse", uint8(i % 2), uint8(1 - i%3/2)})
		listed = append(listed, []any{fmt.Sprintf("l%d", i), at(i), "zen.example", ip, "ip", ip})
		delisted = append(delisted, []any{fmt.Sprintf("u%d", i), at(i), "zen.example", ip, "ip", ip})
		decision := []any{fmt.Sprintf("x%d", i), at(i), "customer", "acme", "acme", p, ip, float64(i) / 1000, at(i).Add(time.Hour)}
		cutoffs = append(cutoffs, decision)
		reroutes = append(reroutes, slices.Clone(decision))
		// A report row stands for count messages: the rollups sum them.
		dmarcRecords = append(dmarcRecords, []any{fmt.Sprintf("r%d", i), at(i), []string{"acme.example", "beta.example"}[i%2], uint8(i % 3 / 2),
			ips[i%2], reporters[i%3], "acme", uint64(10*i + 1), verdicts[i%2], verdicts[i%3/2], verdicts[i%5/4], dispositions[i%4]})
		tlsResults = append(tlsResults, []any{fmt.Sprintf("t%d", i), at(i), []string{"acme.example", "beta.example"}[i%2], reporters[i%3],
			[]string{"sts", "no-policy-found"}[i%5/4], uint64(100 * i), uint64(i % 7)})
	}
	insertRows(t, conn, "INSERT INTO "+into("delivery_attempted")+" (id, time, provider, source_ip, customer, recipient_domain, status, category, reply, signature)", deliveries)
	insertRows(t, conn, "INSERT INTO "+into("probe_sent")+" (id, time, provider, source_ip, outcome)", probesSent)
	insertRows(t, conn, "INSERT INTO "+into("probe_received")+" (id, time, provider, source_ip, placement, latency_ms)", probesReceived)
	insertRows(t, conn, "INSERT INTO "+into("probe_missing")+" (id, time, provider, source_ip)", missing)
	insertRows(t, conn, "INSERT INTO "+into("complaint_received")+" (id, time, provider, source_ip, customer, feedback_type, counted, trusted)", complaints)
	insertRows(t, conn, "INSERT INTO "+into("dnsbl_listed")+" (id, time, zone, target, target_kind, source_ip)", listed)
	insertRows(t, conn, "INSERT INTO "+into("dnsbl_delisted")+" (id, time, zone, target, target_kind, source_ip)", delisted)
	const decisionColumns = "(id, time, scope, subject, customer, provider, source_ip, rate, until)"
	insertRows(t, conn, "INSERT INTO "+into("decision_cutoff")+" "+decisionColumns, cutoffs)
	insertRows(t, conn, "INSERT INTO "+into("decision_reroute")+" "+decisionColumns, reroutes)
	insertRows(t, conn, "INSERT INTO "+into("dmarc_record")+" (id, time, domain, our_source, source_ip, org_name, customer, count, dmarc, dkim, spf, disposition)", dmarcRecords)
	insertRows(t, conn, "INSERT INTO "+into("tlsrpt_result")+" (id, time, policy_domain, organization, policy_type, success, failure)", tlsResults)
}

// checkCountRollups compares every count rollup with the same count from
// its raw table, and the fixed-size states beside the counts, after
// insertCountRollupSources.
func checkCountRollups(t *testing.T, conn driver.Conn) {
	t.Helper()
	ctx := context.Background()
	at := countRollupAt

	counts := []struct{ rollup, raw string }{
		{`SELECT bucket, provider, source_ip, outcome, countMerge(sent) FROM probe_sent_5m GROUP BY bucket, provider, source_ip, outcome`,
			`SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, outcome, count() FROM probe_sent GROUP BY bucket, provider, source_ip, outcome`},
		{`SELECT bucket, provider, source_ip, placement, countMerge(received) FROM probe_received_5m GROUP BY bucket, provider, source_ip, placement`,
			`SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, placement, count() FROM probe_received GROUP BY bucket, provider, source_ip, placement`},
		{`SELECT bucket, provider, source_ip, outcome, countMerge(sent) FROM probe_sent_1h GROUP BY bucket, provider, source_ip, outcome`,
			`SELECT toStartOfHour(time) AS bucket, provider, source_ip, outcome, count() FROM probe_sent GROUP BY bucket, provider, source_ip, outcome`},
		{`SELECT bucket, provider, source_ip, placement, countMerge(received) FROM probe_received_1h GROUP BY bucket, provider, source_ip, placement`,
			`SELECT toStartOfHour(time) AS bucket, provider, source_ip, placement, count() FROM probe_received GROUP BY bucket, provider, source_ip, placement`},
		{`SELECT bucket, provider, source_ip, outcome, countMerge(sent) FROM probe_sent_1d GROUP BY bucket, provider, source_ip, outcome`,
			`SELECT toStartOfDay(time) AS bucket, provider, source_ip, outcome, count() FROM probe_sent GROUP BY bucket, provider, source_ip, outcome`},
		{`SELECT bucket, provider, source_ip, placement, countMerge(received) FROM probe_received_1d GROUP BY bucket, provider, source_ip, placement`,
			`SELECT toStartOfDay(time) AS bucket, provider, source_ip, placement, count() FROM probe_received GROUP BY bucket, provider, source_ip, placement`},
		{`SELECT bucket, provider, source_ip, countMerge(missing) FROM probe_missing_1d GROUP BY bucket, provider, source_ip`,
			`SELECT toStartOfDay(time) AS bucket, provider, source_ip, count() FROM probe_missing GROUP BY bucket, provider, source_ip`},
		{`SELECT bucket, provider, source_ip, countMerge(missing) FROM probe_missing_1h GROUP BY bucket, provider, source_ip`,
			`SELECT toStartOfHour(time) AS bucket, provider, source_ip, count() FROM probe_missing GROUP BY bucket, provider, source_ip`},
		{`SELECT bucket, provider, source_ip, customer, status, category, countMerge(attempts) FROM delivery_status_1h GROUP BY bucket, provider, source_ip, customer, status, category`,
			`SELECT toStartOfHour(time) AS bucket, provider, source_ip, customer, status, category, count() FROM delivery_attempted GROUP BY bucket, provider, source_ip, customer, status, category`},
		{`SELECT bucket, provider, source_ip, countMerge(missing) FROM probe_missing_5m GROUP BY bucket, provider, source_ip`,
			`SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, count() FROM probe_missing GROUP BY bucket, provider, source_ip`},
		{`SELECT bucket, provider, source_ip, customer, status, category, countMerge(attempts) FROM delivery_status_5m GROUP BY bucket, provider, source_ip, customer, status, category`,
			`SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, status, category, count() FROM delivery_attempted GROUP BY bucket, provider, source_ip, customer, status, category`},
		{`SELECT bucket, provider, customer, recipient_domain, status, category, signature, countMerge(attempts) FROM delivery_reply_1h GROUP BY bucket, provider, customer, recipient_domain, status, category, signature`,
			`SELECT toStartOfHour(time) AS bucket, provider, customer, recipient_domain, status, category, signature, count() FROM delivery_attempted WHERE status != 'sent' GROUP BY bucket, provider, customer, recipient_domain, status, category, signature`},
		{`SELECT bucket, provider, source_ip, customer, feedback_type, countMerge(complaints) FROM complaint_counted_5m GROUP BY bucket, provider, source_ip, customer, feedback_type`,
			`SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, feedback_type, count() FROM complaint_received WHERE counted = 1 AND trusted = 1 GROUP BY bucket, provider, source_ip, customer, feedback_type`},
		{`SELECT bucket, zone, target, target_kind, source_ip, countMerge(listings) FROM dnsbl_listed_1d GROUP BY bucket, zone, target, target_kind, source_ip`,
			`SELECT toStartOfDay(time) AS bucket, zone, target, target_kind, source_ip, count() FROM dnsbl_listed GROUP BY bucket, zone, target, target_kind, source_ip`},
		{`SELECT bucket, zone, target, target_kind, source_ip, countMerge(delistings) FROM dnsbl_delisted_1d GROUP BY bucket, zone, target, target_kind, source_ip`,
			`SELECT toStartOfDay(time) AS bucket, zone, target, target_kind, source_ip, count() FROM dnsbl_delisted GROUP BY bucket, zone, target, target_kind, source_ip`},
		{`SELECT bucket, scope, subject, customer, provider, source_ip, countMerge(decisions) FROM decision_cutoff_1d GROUP BY bucket, scope, subject, customer, provider, source_ip`,
			`SELECT toStartOfDay(time) AS bucket, scope, subject, customer, provider, source_ip, count() FROM decision_cutoff GROUP BY bucket, scope, subject, customer, provider, source_ip`},
		{`SELECT bucket, scope, subject, customer, provider, source_ip, countMerge(decisions) FROM decision_reroute_1d GROUP BY bucket, scope, subject, customer, provider, source_ip`,
			`SELECT toStartOfDay(time) AS bucket, scope, subject, customer, provider, source_ip, count() FROM decision_reroute GROUP BY bucket, scope, subject, customer, provider, source_ip`},
	}
	// The report rollups sum the messages (sessions) each row stands for,
	// beside the row count.
	const dmarcGroup = "bucket, domain, toString(our_source) AS ours, source_ip, org_name, customer"
	const dmarcGroupBy = "GROUP BY bucket, domain, ours, source_ip, org_name, customer"
	for _, c := range []struct{ column, raw string }{
		{"countMerge(records)", "count()"},
		{"sumMerge(messages)", "sum(count)"},
		{"sumMerge(messages_dmarc_pass)", "sumIf(count, dmarc = 'pass')"},
		{"sumMerge(messages_dkim_pass)", "sumIf(count, dkim = 'pass')"},
		{"sumMerge(messages_spf_pass)", "sumIf(count, spf = 'pass')"},
		{"sumMerge(messages_quarantined)", "sumIf(count, disposition = 'quarantine')"},
		{"sumMerge(messages_rejected)", "sumIf(count, disposition = 'reject')"},
	} {
		counts = append(counts, struct{ rollup, raw string }{
			fmt.Sprintf("SELECT %s, %s FROM dmarc_record_1d %s", dmarcGroup, c.column, dmarcGroupBy),
			fmt.Sprintf("SELECT toStartOfDay(time) AS %s, %s FROM dmarc_record %s", dmarcGroup, c.raw, dmarcGroupBy),
		})
	}
	const tlsGroup = "bucket, policy_domain, organization, policy_type"
	for _, c := range []struct{ column, raw string }{
		{"countMerge(results)", "count()"},
		{"sumMerge(successful_sessions)", "sum(success)"},
		{"sumMerge(failed_sessions)", "sum(failure)"},
	} {
		counts = append(counts, struct{ rollup, raw string }{
			fmt.Sprintf("SELECT %s, %s FROM tlsrpt_result_1d GROUP BY %s", tlsGroup, c.column, tlsGroup),
			fmt.Sprintf("SELECT toStartOfDay(time) AS %s, %s FROM tlsrpt_result GROUP BY %s", tlsGroup, c.raw, tlsGroup),
		})
	}
	for _, c := range counts {
		rollup, raw := groupCounts(t, conn, c.rollup), groupCounts(t, conn, c.raw)
		if len(raw) < 2 {
			t.Errorf("%s: %d groups in the raw table; the test data should span several", c.raw, len(raw))
		}
		if !reflect.DeepEqual(rollup, raw) {
			t.Errorf("%s\n = %v\nraw table: %v", c.rollup, rollup, raw)
		}
	}

	// Latencies of gmail from 192.0.2.1 (i = 0, 6, 12, ..., 36): 1, 3, 1, 3, ... seconds.
	var quantiles []float64
	if err := conn.QueryRow(ctx, `SELECT quantilesMerge(0.5, 0.95)(latency_ms) FROM probe_received_5m
		WHERE provider = 'gmail' AND source_ip = '192.0.2.1'`).Scan(&quantiles); err != nil {
		t.Fatal(err)
	}
	var rawQuantiles []float64
	if err := conn.QueryRow(ctx, `SELECT quantiles(0.5, 0.95)(latency_ms) FROM probe_received
		WHERE provider = 'gmail' AND source_ip = '192.0.2.1'`).Scan(&rawQuantiles); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(quantiles, rawQuantiles) || len(quantiles) != 2 || quantiles[1] != 3000 {
		t.Errorf("latency quantiles from the rollup %v, from the raw table %v, want p95 3000", quantiles, rawQuantiles)
	}
	var hourly []float64
	if err := conn.QueryRow(ctx, `SELECT quantilesMerge(0.5, 0.95)(latency_ms) FROM probe_received_1h
		WHERE provider = 'gmail' AND source_ip = '192.0.2.1'`).Scan(&hourly); err != nil {
		t.Fatal(err)
	}
	var daily []float64
	if err := conn.QueryRow(ctx, `SELECT quantilesMerge(0.5, 0.95)(latency_ms) FROM probe_received_1d
		WHERE provider = 'gmail' AND source_ip = '192.0.2.1'`).Scan(&daily); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(daily, rawQuantiles) {
		t.Errorf("latency quantiles from the daily rollup %v, from the raw table %v", daily, rawQuantiles)
	}
	if !reflect.DeepEqual(hourly, rawQuantiles) {
		t.Errorf("latency quantiles from the hourly rollup %v, from the raw table %v", hourly, rawQuantiles)
	}

	var sample string
	if err := conn.QueryRow(ctx, `SELECT anyMerge(sample_reply) FROM delivery_reply_1h WHERE status = 'bounced'`).Scan(&sample); err != nil {
		t.Fatal(err)
	}
	if len(sample) < 10 || sample[:10] != "550 5.7.1 " {
		t.Errorf("sample reply %q, want one of the bounced replies", sample)
	}

	var lastListed, lastUntil time.Time
	var maxRate float64
	if err := conn.QueryRow(ctx, `SELECT maxMerge(last_listed) FROM dnsbl_listed_1d WHERE target = '192.0.2.2'`).Scan(&lastListed); err != nil {
		t.Fatal(err)
	}
	if want := at(39); !lastListed.Equal(want) {
		t.Errorf("last_listed %v, want %v", lastListed, want)
	}
	if err := conn.QueryRow(ctx, `SELECT maxMerge(max_rate), maxMerge(last_until) FROM decision_cutoff_1d`).Scan(&maxRate, &lastUntil); err != nil {
		t.Fatal(err)
	}
	if maxRate != 0.039 || !lastUntil.Equal(at(39).Add(time.Hour)) {
		t.Errorf("max_rate %v, last_until %v, want 0.039 and %v", maxRate, lastUntil, at(39).Add(time.Hour))
	}
}
