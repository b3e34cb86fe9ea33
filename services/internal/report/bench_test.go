package report_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/report"
)

var benchPerDay = flag.Int("report.perday", 100_000, "deliveries per day BenchmarkBuildWeekly loads (7 days)")

// BenchmarkBuildWeekly loads a week of synthetic deliveries and measures
// a weekly report, which reads the rollups, against a raw baseline: the
// same delivery figures (volumes, failures, top replies, rejecting
// domains) computed from delivery_attempted in the same run. It reports
// both times and their ratio, and fails if the figures differ.
func BenchmarkBuildWeekly(b *testing.B) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(b, server)
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	end := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	loadStart := time.Now()
	for day := range 7 {
		loadDay(b, conn, end.Add(-time.Duration(7-day)*24*time.Hour), day, *benchPerDay)
	}
	b.Logf("loaded %d deliveries in %s", 7**benchPerDay, time.Since(loadStart).Round(time.Millisecond))
	opts := report.Options{Period: report.Weekly, End: end}

	var rollup, raw time.Duration
	for b.Loop() {
		t0 := time.Now()
		r, err := report.Build(ctx, conn, opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		base, err := rawBaseline(ctx, conn, r.From, r.To)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		rollup += t1.Sub(t0)
		raw += t2.Sub(t1)
		got := fmt.Sprintf("%d %d %d %d %d", r.Deliveries.Attempts, r.Deliveries.Sent, len(r.Failures), r.TopReplies[0].Count, r.RejectingDomains[0].Total)
		if got != base {
			b.Fatalf("report figures %s, raw baseline %s", got, base)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(rollup.Milliseconds())/n, "report-ms/op")
	b.ReportMetric(float64(raw.Milliseconds())/n, "raw-ms/op")
	b.ReportMetric(float64(raw)/float64(rollup), "raw/report")
}

// loadDay inserts perDay deliveries spread over one day: 20 customers,
// 5 providers, 200 recipient domains, 90 % sent, the rest deferred,
// bounced, expired or rejected with a few reply signatures.
func loadDay(b *testing.B, conn driver.Conn, day time.Time, dayIndex, perDay int) {
	b.Helper()
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO delivery_attempted (id, time, customer, provider, source_ip, recipient_domain, status, category, signature, reply)")
	if err != nil {
		b.Fatal(err)
	}
	providers := []string{"gmail", "yahoo", "outlook", "apple", "other"}
	failures := []struct{ status, category, signature string }{
		{"deferred", "rate_limited", "421 4.7.28 unusual rate"},
		{"deferred", "network", "connection timed out"},
		{"deferred", "blocked_ip_or_blocklist", "451 4.7.1 listed"},
		{"bounced", "user_unknown", "550 5.1.1 user unknown"},
		{"bounced", "spam_content", "550 5.7.1 spam"},
		{"bounced", "user_unknown", "550 5.1.1 no such user"},
		{"expired", "expired", "expired"},
		{"rejected", "policy", "554 5.7.1 cut off"},
	}
	step := 24 * time.Hour / time.Duration(perDay)
	for i := range perDay {
		status, category, signature, reply := "sent", "", "", "250 2.0.0 OK"
		if i%10 == 9 {
			f := failures[(i/10)%len(failures)]
			status, category, signature = f.status, f.category, f.signature
			reply = fmt.Sprintf("%s <user%d@example>", signature, i)
		}
		err := batch.Append(fmt.Sprintf("b%d-%d", dayIndex, i), day.Add(time.Duration(i)*step),
			fmt.Sprintf("customer%02d", i%20), providers[i%len(providers)], fmt.Sprintf("192.0.2.%d", i%8),
			fmt.Sprintf("domain%03d.example", (i*7)%200), status, category, signature, reply)
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		b.Fatal(err)
	}
}

// rawBaseline computes from delivery_attempted what the report reads from
// the rollups: attempts and sent, the number of status × category ×
// provider failure groups, the top reply signature's count and the top
// rejecting domain's total.
func rawBaseline(ctx context.Context, conn driver.Conn, from, to time.Time) (string, error) {
	where := fmt.Sprintf("time >= toDateTime(%d) AND time < toDateTime(%d)", from.Unix(), to.Unix())
	var attempts, sent, groups, topReply, topDomain uint64
	if err := conn.QueryRow(ctx, "SELECT count(), countIf(status = 'sent') FROM delivery_attempted WHERE "+where).Scan(&attempts, &sent); err != nil {
		return "", err
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT status, category, provider FROM delivery_attempted WHERE "+where+
		" AND status != 'sent' GROUP BY status, category, provider)").Scan(&groups); err != nil {
		return "", err
	}
	if err := conn.QueryRow(ctx, "SELECT count() AS n FROM delivery_attempted WHERE "+where+
		" AND status != 'sent' GROUP BY status, category, signature ORDER BY n DESC LIMIT 1").Scan(&topReply); err != nil {
		return "", err
	}
	if err := conn.QueryRow(ctx, "SELECT count() AS n FROM delivery_attempted WHERE "+where+
		" AND status IN ('deferred', 'bounced', 'expired') GROUP BY recipient_domain ORDER BY n DESC LIMIT 1").Scan(&topDomain); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %d %d %d %d", attempts, sent, groups, topReply, topDomain), nil
}
