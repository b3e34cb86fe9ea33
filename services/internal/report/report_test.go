package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/golden"
	"github.com/mailmon/mailmon/services/internal/report"
)

var (
	server *chstore.LocalServer
	update = flag.Bool("update", false, "rewrite the golden files in testdata")
)

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }

// The seeded world: a daily report ending at end covers [from, to).
var (
	end      = time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	to       = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	from     = to.Add(-24 * time.Hour)
	weekFrom = to.Add(-7 * 24 * time.Hour)
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// insert writes rows into table through a batch naming its columns.
func insert(t *testing.T, conn driver.Conn, table string, columns []string, rows [][]any) {
	t.Helper()
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		t.Fatalf("prepare %s: %v", table, err)
	}
	for _, row := range rows {
		if err := batch.Append(row...); err != nil {
			t.Fatalf("append to %s %v: %v", table, row, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send %s: %v", table, err)
	}
}

// unusualRate is a multi-line reply; evilReply carries a terminal escape.
const (
	unusualRate = "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate\r\n421 4.7.28 of unsolicited mail."
	evilReply   = "554 5.1.1 <x@yahoo.com>:\x1b[31m user unknown"
)

var longExcerpt = "From: Acme Deals <deals@acme.example>\r\nSubject: Big sale 4\r\nX-Long: " + strings.Repeat("x", 300)

// seed inserts known raw events; the rollups fill through their views.
func seed(t *testing.T, conn driver.Conn) {
	t.Helper()
	// id, time, customer, provider, source_ip, recipient_domain, status, category, signature, reply
	var deliveries [][]any
	add := func(count int, tm time.Time, customer, provider, domain, status, category, signature, reply string) {
		for range count {
			id := fmt.Sprintf("d%d", len(deliveries)+1)
			deliveries = append(deliveries, []any{id, tm, customer, provider, "192.0.2.1", domain, status, category, signature, reply})
		}
	}
	// Inside the daily period.
	add(7, at("2026-12-06 12:00:00"), "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(1, from, "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK") // the first second is in
	add(1, at("2026-12-06 13:00:00"), "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(1, at("2026-12-06 14:00:00"), "acme", "yahoo", "yahoo.com", "sent", "", "", "250 ok")
	add(2, at("2026-12-06 15:10:00"), "acme", "gmail", "gmail.com", "deferred", "rate_limited", "421 4.7.28 unusual rate", unusualRate)
	add(1, at("2026-12-06 15:20:00"), "acme", "gmail", "gmail.com", "deferred", "rate_limited", "421 4.7.28 unusual rate", unusualRate)
	add(1, at("2026-12-06 16:00:00"), "acme", "yahoo", "yahoo.com", "bounced", "user_unknown", "554 5.1.1 user unknown", evilReply)
	add(4, at("2026-12-07 08:00:00"), "beta", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(1, at("2026-12-07 08:05:00"), "beta", "gmail", "gmail.com", "bounced", "blocked_ip_or_blocklist", "550 5.7.1 blocked", "550 5.7.1 [192.0.2.1] blocked")
	add(1, at("2026-12-07 08:10:00"), "beta", "outlook", "hotmail.com", "expired", "expired", "expired", "delivery temporarily suspended")
	add(1, at("2026-12-07 08:15:00"), "beta", "gmail", "gmail.com", "rejected", "policy", "554 5.7.1 cut off", "554 5.7.1 <beta>: sending suspended")
	add(1, at("2026-12-07 09:59:59"), "", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	// Outside the daily period: its end, the second before its start.
	add(1, to, "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(1, from.Add(-time.Second), "acme", "gmail", "gmail.com", "deferred", "rate_limited", "421 4.7.28 unusual rate", "421 4.7.28 before")
	// Earlier in the week, and before it.
	add(5, at("2026-12-05 08:00:00"), "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(2, at("2026-12-05 08:00:00"), "acme", "gmail", "gmail.com", "deferred", "rate_limited", "421 4.7.28 unusual rate", "421 4.7.28 earlier")
	add(1, weekFrom.Add(-time.Hour), "acme", "gmail", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	insert(t, conn, "delivery_attempted", []string{"id", "time", "customer", "provider", "source_ip", "recipient_domain", "status", "category", "signature", "reply"}, deliveries)

	insert(t, conn, "probe_sent", []string{"id", "time", "provider", "source_ip", "outcome"}, [][]any{
		{"ps1", at("2026-12-06 11:00:00"), "gmail", "192.0.2.1", "accepted"},
		{"ps2", at("2026-12-06 12:00:00"), "gmail", "192.0.2.1", "accepted"},
		{"ps3", at("2026-12-06 13:00:00"), "gmail", "192.0.2.2", "accepted"},
		{"ps4", at("2026-12-06 14:00:00"), "gmail", "192.0.2.2", "accepted"},
		{"ps5", at("2026-12-06 15:00:00"), "gmail", "192.0.2.1", "refused"},
		{"ps6", at("2026-12-06 11:00:00"), "yahoo", "192.0.2.1", "accepted"},
		{"ps7", at("2026-12-06 12:00:00"), "yahoo", "192.0.2.1", "accepted"},
		{"ps8", to.Add(time.Minute), "yahoo", "192.0.2.1", "accepted"}, // after the period
	})
	insert(t, conn, "probe_received", []string{"id", "time", "provider", "source_ip", "placement", "latency_ms"}, [][]any{
		{"pr1", at("2026-12-06 11:00:05"), "gmail", "192.0.2.1", "inbox", int64(1000)},
		{"pr2", at("2026-12-06 12:00:03"), "gmail", "192.0.2.1", "inbox", int64(3000)},
		{"pr3", at("2026-12-06 13:00:05"), "gmail", "192.0.2.2", "spam", int64(5000)},
		{"pr4", at("2026-12-06 11:00:02"), "yahoo", "192.0.2.1", "inbox", int64(2000)},
	})
	insert(t, conn, "probe_missing", []string{"id", "time", "provider", "source_ip"}, [][]any{
		{"pm1", at("2026-12-06 14:30:00"), "gmail", "192.0.2.2"},
		{"pm2", at("2026-12-06 12:30:00"), "yahoo", "192.0.2.1"},
	})

	listedCols := []string{"id", "time", "zone", "target", "target_kind", "source_ip", "txt", "delist_url"}
	insert(t, conn, "dnsbl_listed", listedCols, [][]any{
		{"l1", at("2026-11-27 10:00:00"), "zen.test", "192.0.2.2", "ip", "192.0.2.2", "old listing", ""},
		{"l2", at("2026-12-04 10:00:00"), "dbl.test", "example.com", "domain", "", "Domain listed", ""},
		{"l3", at("2026-12-05 10:00:00"), "bl.test", "192.0.2.4", "ip", "192.0.2.4", "Listed 4", ""},
		{"l4", at("2026-12-01 10:00:00"), "bl.test", "192.0.2.5", "ip", "192.0.2.5", "first listing", ""},
		{"l5", at("2026-12-06 12:00:00"), "bl.test", "192.0.2.1", "ip", "192.0.2.1", "Listed in test blocklist: 192.0.2.1", "http://bl.test/lookup?ip=192.0.2.1"},
		{"l6", at("2026-12-06 13:00:00"), "bl.test", "192.0.2.5", "ip", "192.0.2.5", "relisted", ""},
		{"l7", at("2026-12-07 09:30:00"), "bl.test", "192.0.2.9", "ip", "192.0.2.9", "Listed 9", ""},
		{"l8", to.Add(10 * time.Minute), "bl.test", "192.0.2.3", "ip", "192.0.2.3", "after the period", ""},
	})
	insert(t, conn, "dnsbl_delisted", []string{"id", "time", "zone", "target", "target_kind", "source_ip", "listed_since"}, [][]any{
		{"x1", at("2026-12-02 10:00:00"), "bl.test", "192.0.2.5", "ip", "192.0.2.5", at("2026-12-01 10:00:00")},
		{"x2", at("2026-12-06 15:00:00"), "dbl.test", "example.com", "domain", "", at("2026-12-04 10:00:00")},
		{"x3", to.Add(5 * time.Minute), "bl.test", "192.0.2.4", "ip", "192.0.2.4", at("2026-12-05 10:00:00")},
	})

	decisionCols := []string{"id", "time", "scope", "subject", "customer", "provider", "source_ip", "rule", "complaints", "delivered", "rate", "threshold", "until"}
	insert(t, conn, "decision_cutoff", append(decisionCols, "policy_action"), [][]any{
		{"c1", at("2026-12-06 16:00:00"), "customer", "acme", "acme", "", "", "customer_rate", uint64(3), uint64(1000), 0.003, 0.001, at("2026-12-07 16:00:00"), "REJECT"},
		{"c0", at("2026-12-05 16:00:00"), "customer", "acme", "acme", "", "", "customer_rate", uint64(2), uint64(900), 0.0022, 0.001, at("2026-12-06 16:00:00"), "REJECT"},
	})
	insert(t, conn, "decision_reroute", append(decisionCols, "transport"), [][]any{
		{"r1", at("2026-12-06 17:00:00"), "source_ip", "192.0.2.1", "", "gmail", "192.0.2.1", "ip_provider_rate", uint64(5), uint64(2000), 0.0025, 0.002, at("2026-12-07 17:00:00"), "smtp-ndr:"},
	})

	complaintCols := []string{"id", "time", "customer", "provider", "source_ip", "counted", "trusted", "feedback_type", "original_subject", "headers_excerpt"}
	insert(t, conn, "complaint_received", complaintCols, [][]any{
		{"f1", at("2026-12-06 18:00:00"), "acme", "gmail", "192.0.2.1", uint8(1), uint8(1), "abuse", "Big sale 1", "Subject: Big sale 1"},
		{"f2", at("2026-12-06 19:00:00"), "acme", "yahoo", "192.0.2.1", uint8(1), uint8(1), "abuse", "Big sale 2", "Subject: Big sale 2"},
		{"f3", at("2026-12-06 20:00:00"), "acme", "gmail", "192.0.2.1", uint8(1), uint8(1), "abuse", "Big sale 3", "Subject: Big sale 3"},
		{"f4", at("2026-12-06 21:00:00"), "acme", "gmail", "192.0.2.1", uint8(1), uint8(1), "abuse", "Big sale 4\x1b]0;pwned\x07", longExcerpt},
		{"f5", at("2026-12-07 07:00:00"), "acme", "gmail", "192.0.2.1", uint8(1), uint8(0), "abuse", "Forged?", "Subject: Forged?"},
		{"f6", at("2026-12-07 07:30:00"), "acme", "gmail", "192.0.2.1", uint8(0), uint8(1), "not-spam", "Not spam", "Subject: Not spam"},
		{"f7", at("2026-12-07 06:00:00"), "beta", "outlook", "192.0.2.1", uint8(1), uint8(0), "abuse", "<script>alert(1)</script>", "Subject: beta"},
		{"f8", from.Add(-time.Minute), "acme", "gmail", "192.0.2.1", uint8(1), uint8(1), "abuse", "Yesterday's", "Subject: Yesterday's"},
	})
}

func newSeeded(t *testing.T) driver.Conn {
	t.Helper()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(context.Background(), conn, database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	seed(t, conn)
	return conn
}

func build(t *testing.T, conn driver.Conn, opts report.Options) report.Report {
	t.Helper()
	r, err := report.Build(context.Background(), conn, opts)
	if err != nil {
		t.Fatalf("Build(%+v): %v", opts, err)
	}
	return r
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestBuildDaily(t *testing.T) {
	conn := newSeeded(t)
	r := build(t, conn, report.Options{Period: report.Daily, End: end})

	check(t, "period", []any{r.Period, r.Customer, r.From, r.To}, []any{report.Daily, "", from, to})
	check(t, "deliveries", r.Deliveries, report.Deliveries{
		Attempts: 22, Sent: 15, Deferred: 3, Bounced: 2, Expired: 1, Rejected: 1,
		DeliveredPercent: 100 * 15.0 / 19, DeferredPercent: 100 * 3.0 / 22,
	})
	check(t, "failures", r.Failures, []report.Failure{
		{Status: "deferred", Category: "rate_limited", Provider: "gmail", Count: 3},
		{Status: "bounced", Category: "blocked_ip_or_blocklist", Provider: "gmail", Count: 1},
		{Status: "bounced", Category: "user_unknown", Provider: "yahoo", Count: 1},
		{Status: "expired", Category: "expired", Provider: "outlook", Count: 1},
		{Status: "rejected", Category: "policy", Provider: "gmail", Count: 1},
	})

	if len(r.TopReplies) != 5 {
		t.Fatalf("top replies: got %d, want 5: %+v", len(r.TopReplies), r.TopReplies)
	}
	// Replies are flattened to one line without control characters.
	var replies []string
	for _, p := range r.TopReplies {
		replies = append(replies, fmt.Sprintf("%s|%s|%s|%s|%v|%d", p.Status, p.Category, p.Signature, p.Sample, p.Providers, p.Count))
	}
	check(t, "top replies", replies, []string{
		"deferred|rate_limited|421 4.7.28 unusual rate|421-4.7.28 [192.0.2.1] Our system has detected an unusual rate 421 4.7.28 of unsolicited mail.|[gmail]|3",
		"bounced|blocked_ip_or_blocklist|550 5.7.1 blocked|550 5.7.1 [192.0.2.1] blocked|[gmail]|1",
		"bounced|user_unknown|554 5.1.1 user unknown|554 5.1.1 <x@yahoo.com>: [31m user unknown|[yahoo]|1",
		"expired|expired|expired|delivery temporarily suspended|[outlook]|1",
		"rejected|policy|554 5.7.1 cut off|554 5.7.1 <beta>: sending suspended|[gmail]|1",
	})

	check(t, "rejecting domains", r.RejectingDomains, []report.Domain{
		{Domain: "gmail.com", Deferred: 3, Bounced: 1, Total: 4},
		{Domain: "hotmail.com", Deferred: 0, Bounced: 1, Total: 1},
		{Domain: "yahoo.com", Deferred: 0, Bounced: 1, Total: 1},
	})

	// The merged quantile states must agree with quantiles over the raw rows.
	rawQuantiles := func(where string) []float64 {
		var q []float64
		sql := "SELECT quantiles(0.5, 0.95)(latency_ms) FROM probe_received WHERE " + where
		if err := conn.QueryRow(context.Background(), sql).Scan(&q); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return q
	}
	gq, yq, aq := rawQuantiles("provider = 'gmail'"), rawQuantiles("provider = 'yahoo'"), rawQuantiles("1")
	if gq[0] != 3000 || yq[0] != 2000 || aq[0] != 2500 {
		t.Errorf("raw medians gmail %v yahoo %v all %v, want 3000, 2000, 2500", gq, yq, aq)
	}
	check(t, "probes", r.Probes, []report.Placement{
		{Provider: "gmail", Sent: 5, RelayFailed: 1, Received: 3, Inbox: 2, Spam: 1, Missing: 1,
			InboxPercent: 50, SpamPercent: 25, MissingPercent: 25, LatencyP50Ms: gq[0], LatencyP95Ms: gq[1]},
		{Provider: "yahoo", Sent: 2, Received: 1, Inbox: 1, Missing: 1,
			InboxPercent: 50, MissingPercent: 50, LatencyP50Ms: yq[0], LatencyP95Ms: yq[1]},
	})
	check(t, "probe total", r.ProbeTotal, report.Placement{Provider: "all", Sent: 7, RelayFailed: 1, Received: 4, Inbox: 3, Spam: 1, Missing: 2,
		InboxPercent: 50, SpamPercent: 100.0 / 6, MissingPercent: 100.0 / 3, LatencyP50Ms: aq[0], LatencyP95Ms: aq[1]})

	check(t, "listed", r.Listings.Listed, []report.Listing{
		{Zone: "bl.test", Target: "192.0.2.1", TargetKind: "ip", SourceIP: "192.0.2.1", Since: at("2026-12-06 12:00:00"),
			TXT: "Listed in test blocklist: 192.0.2.1", DelistURL: "http://bl.test/lookup?ip=192.0.2.1"},
		{Zone: "bl.test", Target: "192.0.2.5", TargetKind: "ip", SourceIP: "192.0.2.5", Since: at("2026-12-06 13:00:00"), TXT: "relisted"},
		{Zone: "bl.test", Target: "192.0.2.9", TargetKind: "ip", SourceIP: "192.0.2.9", Since: at("2026-12-07 09:30:00"), TXT: "Listed 9"},
	})
	check(t, "delisted", r.Listings.Delisted, []report.Delisting{
		{Zone: "dbl.test", Target: "example.com", TargetKind: "domain", Time: at("2026-12-06 15:00:00"), ListedSince: at("2026-12-04 10:00:00")},
	})
	check(t, "current listings", r.Listings.Current, []report.Listing{
		{Zone: "zen.test", Target: "192.0.2.2", TargetKind: "ip", SourceIP: "192.0.2.2", Since: at("2026-11-27 10:00:00"), TXT: "old listing"},
		{Zone: "bl.test", Target: "192.0.2.4", TargetKind: "ip", SourceIP: "192.0.2.4", Since: at("2026-12-05 10:00:00"), TXT: "Listed 4"},
		r.Listings.Listed[0], r.Listings.Listed[1], r.Listings.Listed[2],
	})

	check(t, "decisions", r.Decisions, []report.Decision{
		{Time: at("2026-12-06 16:00:00"), Kind: "cutoff", Scope: "customer", Subject: "acme", Customer: "acme", Rule: "customer_rate",
			Action: "REJECT", Complaints: 3, Delivered: 1000, Rate: 0.003, Threshold: 0.001, Until: at("2026-12-07 16:00:00")},
		{Time: at("2026-12-06 17:00:00"), Kind: "reroute", Scope: "source_ip", Subject: "192.0.2.1", Provider: "gmail", SourceIP: "192.0.2.1",
			Rule: "ip_provider_rate", Action: "smtp-ndr:", Complaints: 5, Delivered: 2000, Rate: 0.0025, Threshold: 0.002, Until: at("2026-12-07 17:00:00")},
	})

	wantExcerpt := []rune("From: Acme Deals <deals@acme.example> Subject: Big sale 4 X-Long: " + strings.Repeat("x", 300))
	check(t, "fbl review", r.FBL, report.FBLReview{Complaints: 4, Untrusted: 2, Customers: []report.CustomerComplaint{
		{Customer: "acme", Complaints: 4, Untrusted: 1, Delivered: 10, RatePercent: 40, Samples: []report.Sample{
			{Time: at("2026-12-06 21:00:00"), Provider: "gmail", FeedbackType: "abuse", Trusted: true, Subject: "Big sale 4 ]0;pwned", Excerpt: string(wantExcerpt[:240]) + "…"},
			{Time: at("2026-12-06 20:00:00"), Provider: "gmail", FeedbackType: "abuse", Trusted: true, Subject: "Big sale 3", Excerpt: "Subject: Big sale 3"},
			{Time: at("2026-12-06 19:00:00"), Provider: "yahoo", FeedbackType: "abuse", Trusted: true, Subject: "Big sale 2", Excerpt: "Subject: Big sale 2"},
		}},
		{Customer: "beta", Complaints: 0, Untrusted: 1, Delivered: 4, Samples: []report.Sample{
			{Time: at("2026-12-07 06:00:00"), Provider: "outlook", FeedbackType: "abuse", Subject: "<script>alert(1)</script>", Excerpt: "Subject: beta"},
		}},
	}})

	t.Run("text", func(t *testing.T) {
		var b bytes.Buffer
		if err := r.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "daily.golden.txt"), b.Bytes(), *update)
		out := b.String()
		for _, want := range []string{
			"mailmon daily report\n====================\n",
			"Period:   2026-12-06 10:00 to 2026-12-07 10:00 UTC\n",
			"Customer: all customers\n",
			"\n     22  attempts\n     15  sent\n      3  deferred\n      2  bounced\n      1  expired\n      1  rejected by our MTA\n  78.9%  delivered",
			"  13.6%  deferred (of all attempts)\n",
			"Deferrals by category and provider (total 3)\n",
			"  rate_limited  3\n                3  gmail\n",
			"Bounces by category and provider (total 2)\n",
			"  blocked_ip_or_blocklist  1\n                           1  gmail\n  user_unknown             1\n                           1  yahoo\n",
			"Rejected by our MTA by category and provider (total 1)\n",
			"  count  status    category                 providers  reply\n      3  deferred  rate_limited             gmail      421",
			"      1  bounced   user_unknown             yahoo      554 5.1.1 <x@yahoo.com>: [31m user unknown\n",
			"  total  bounced  deferred  domain\n      4        1         3  gmail.com\n      1        1         0  hotmail.com\n",
			"  provider  sent  relay failed  concluded  inbox   spam  missing   p50   p95\n" +
				"  gmail        5             1          4  50.0%  25.0%    25.0%  3.0s  4.8s\n" +
				"  yahoo        2             0          2  50.0%   0.0%    50.0%  2.0s  2.0s\n" +
				"  all          7             1          6  50.0%  16.7%    33.3%  2.5s  4.7s\n",
			"  Listed during the period:\n    since 2026-12-06 12:00  bl.test  192.0.2.1  Listed in test blocklist: 192.0.2.1 (delist: http://bl.test/lookup?ip=192.0.2.1)\n",
			"  Delisted during the period:\n    2026-12-06 15:00  dbl.test  example.com  listed since 2026-12-04 10:00\n",
			"  In force at the end of the period:\n    since 2026-11-27 10:00  zen.test  192.0.2.2  old listing\n",
			"  2026-12-06 16:00  cutoff   customer   acme       customer_rate              3  0.300%     0.100%  2026-12-07 16:00\n",
			"  4 complaints counted (trusted origin), 2 more from an unverified origin\n",
			"  complaints  untrusted  delivered     rate  customer\n           4          1         10  40.000%  acme\n           0          1          4   0.000%  beta\n",
			"    2026-12-06 21:00  gmail  abuse  Subject: Big sale 4 ]0;pwned\n      From: Acme Deals <deals@acme.example> Subject: Big sale 4 X-Long: xxx",
			"    2026-12-07 06:00  outlook  abuse (unverified origin)  Subject: <script>alert(1)</script>\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("text output lacks %q\n%s", want, out)
			}
		}
		if strings.ContainsAny(out, "\x1b\x07\r") {
			t.Errorf("text output carries control characters from outside text:\n%q", out)
		}
		for i, line := range strings.Split(out, "\n") {
			if strings.HasSuffix(line, " ") {
				t.Errorf("line %d ends in a space: %q", i+1, line)
			}
		}
	})

	t.Run("html", func(t *testing.T) {
		var b bytes.Buffer
		if err := r.WriteHTML(&b); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "daily.golden.html"), b.Bytes(), *update)
		out := b.String()
		for _, want := range []string{
			`<section class="report" data-period="daily">`,
			"2026-12-06 10:00 to 2026-12-07 10:00 UTC &middot; all customers",
			`<tr><th>attempts</th><td class="num">22</td></tr>`,
			`<th title="sent of sent, bounced, expired and rejected">delivered</th><td class="num">78.9%</td>`,
			`<td class="num">13.6%</td>`,
			`<h4>Deferrals (total 3)</h4>`,
			`<tr><td></td><td>gmail</td><td class="num">3</td></tr>`,
			`<td class="num">3</td><td>deferred</td><td>rate_limited</td><td>gmail</td>`,
			`<tr><td>gmail.com</td><td class="num">4</td><td class="num">1</td><td class="num">3</td></tr>`,
			`<tr><td>gmail</td><td class="num">5</td><td class="num">1</td><td class="num">4</td><td class="num">50.0%</td><td class="num">25.0%</td><td class="num">25.0%</td><td class="num">3.0s</td><td class="num">4.8s</td></tr>`,
			`<a href="http://bl.test/lookup?ip=192.0.2.1" rel="noopener noreferrer">delist</a>`,
			`<td>2026-12-06 15:00</td><td>dbl.test</td><td>example.com</td><td>2026-12-04 10:00</td>`,
			`<td class="num">0.300%</td><td class="num">0.100%</td>`,
			"4 complaints counted (trusted origin), 2 more from an unverified origin",
			`<tr><td>acme</td><td class="num">4</td><td class="num">1</td><td class="num">10</td><td class="num">40.000%</td></tr>`,
			"<strong>Big sale 3</strong>",
			"<em>(unverified origin)</em>: <strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("HTML lacks %q\n%s", want, out)
			}
		}
		for _, bad := range []string{"<html", "<body", "<script>"} {
			if strings.Contains(out, bad) {
				t.Errorf("HTML fragment contains %q", bad)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back report.Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		check(t, "JSON round trip", back, r)
		for _, want := range []string{`"period":"daily"`, `"from":"2026-12-06T10:00:00Z"`, `"delivered_percent":78.94736842105263`,
			`"fbl_review":{"complaints":4,"untrusted":2,`, `"sample_reply":`, `"inbox_percent":50`} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("JSON lacks %s\n%s", want, b)
			}
		}
	})
}

func TestBuildCustomer(t *testing.T) {
	conn := newSeeded(t)
	all := build(t, conn, report.Options{Period: report.Daily, End: end})
	r := build(t, conn, report.Options{Period: report.Daily, Customer: "acme", End: end})

	check(t, "customer", r.Customer, "acme")
	check(t, "deliveries", r.Deliveries, report.Deliveries{
		Attempts: 14, Sent: 10, Deferred: 3, Bounced: 1,
		DeliveredPercent: 100 * 10.0 / 11, DeferredPercent: 100 * 3.0 / 14,
	})
	check(t, "failures", r.Failures, []report.Failure{
		{Status: "deferred", Category: "rate_limited", Provider: "gmail", Count: 3},
		{Status: "bounced", Category: "user_unknown", Provider: "yahoo", Count: 1},
	})
	var replies []string
	for _, p := range r.TopReplies {
		replies = append(replies, fmt.Sprintf("%s|%s|%d", p.Status, p.Signature, p.Count))
	}
	check(t, "replies", replies, []string{"deferred|421 4.7.28 unusual rate|3", "bounced|554 5.1.1 user unknown|1"})
	check(t, "rejecting domains", r.RejectingDomains, []report.Domain{
		{Domain: "gmail.com", Deferred: 3, Total: 3},
		{Domain: "yahoo.com", Bounced: 1, Total: 1},
	})
	check(t, "decisions", len(r.Decisions), 1)
	check(t, "decision", r.Decisions[0].Subject, "acme")
	check(t, "fbl", []any{r.FBL.Complaints, r.FBL.Untrusted, len(r.FBL.Customers), r.FBL.Customers[0].Customer},
		[]any{uint64(4), uint64(1), 1, "acme"})
	// Probes and listings concern our IPs, not a customer.
	check(t, "probes", r.Probes, all.Probes)
	check(t, "listings", r.Listings, all.Listings)

	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Customer: acme\n") || strings.Contains(b.String(), "beta") {
		t.Errorf("text of acme's report:\n%s", b.String())
	}

	// A customer nobody has, spelt to break out of a quoted string: bound,
	// not pasted into the SQL.
	none := build(t, conn, report.Options{Period: report.Daily, Customer: `nobody' OR '1'='1`, End: end})
	check(t, "unknown customer", []any{none.Deliveries, len(none.Failures), len(none.TopReplies), len(none.Decisions), len(none.FBL.Customers)},
		[]any{report.Deliveries{}, 0, 0, 0, 0})
}

func TestBuildWeekly(t *testing.T) {
	conn := newSeeded(t)
	// End is rounded down to the hour: 10:59 ends the period at 10:00 too.
	r := build(t, conn, report.Options{Period: report.Weekly, End: to.Add(59 * time.Minute)})
	check(t, "period", []any{r.From, r.To}, []any{weekFrom, to})
	check(t, "deliveries", r.Deliveries, report.Deliveries{
		Attempts: 30, Sent: 20, Deferred: 6, Bounced: 2, Expired: 1, Rejected: 1,
		DeliveredPercent: 100 * 20.0 / 24, DeferredPercent: 20,
	})
	var listed []string
	for _, l := range r.Listings.Listed {
		listed = append(listed, l.Target+"@"+formatTime(l.Since))
	}
	check(t, "listed in the week", listed, []string{"192.0.2.5@2026-12-01 10:00", "example.com@2026-12-04 10:00", "192.0.2.4@2026-12-05 10:00",
		"192.0.2.1@2026-12-06 12:00", "192.0.2.5@2026-12-06 13:00", "192.0.2.9@2026-12-07 09:30"})
	check(t, "delisted in the week", len(r.Listings.Delisted), 2)
	check(t, "decisions in the week", len(r.Decisions), 3)
	check(t, "complaints in the week", []any{r.FBL.Complaints, r.FBL.Untrusted}, []any{uint64(5), uint64(2)})
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "mailmon weekly report\n=====================\nPeriod:   2026-11-30 10:00 to 2026-12-07 10:00 UTC\n") {
		t.Errorf("weekly text header:\n%s", b.String())
	}
}

// TestBuildEmpty: a period without events is a report of zeros with
// empty lists, in every format.
func TestBuildEmpty(t *testing.T) {
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(context.Background(), conn, database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	r := build(t, conn, report.Options{Period: report.Daily, End: end})
	check(t, "deliveries", r.Deliveries, report.Deliveries{})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("empty report JSON has null lists: %s", b)
	}
	var text, html bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(text.String(), "  none\n"); got != 8 {
		t.Errorf("empty text report has %d 'none' lines, want 8:\n%s", got, text.String())
	}
	if !strings.Contains(html.String(), `<p class="report-none">none</p>`) {
		t.Errorf("empty HTML report:\n%s", html.String())
	}
}

func TestBuildRefusesUnknownPeriod(t *testing.T) {
	if _, err := report.Build(context.Background(), nil, report.Options{Period: "monthly"}); err == nil || !strings.Contains(err.Error(), "monthly") {
		t.Errorf("Build with period monthly: err %v", err)
	}
}

func formatTime(t time.Time) string { return t.Format("2006-01-02 15:04") }
