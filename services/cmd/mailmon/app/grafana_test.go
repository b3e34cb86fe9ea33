package app

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/deploy/grafana"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// grafanaDay is the day the Grafana query test seeds; the dashboards are
// queried for exactly that day (UTC).
var grafanaDay = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// grafanaColumns is what each panel must answer, by dashboard and title. A
// panel missing here fails the test: a new panel comes with its columns.
var grafanaColumns = map[string][]string{
	"mailmon / Overview / Sending IP × provider": {"source_ip", "provider", "attempts", "delivered",
		"delivered_pct", "deferred_pct", "bounced_pct", "complaints", "complaint_rate_pct", "listed_zones"},
	"mailmon / Overview / Blocklist listings": {"target", "target_kind", "source_ip", "zone", "listings",
		"last_listed", "delistings", "last_delisted", "listed_now"},
	"mailmon / Overview / Delivered % by sending IP":  {"time", "source_ip", "delivered_pct"},
	"mailmon / Overview / Deferral % by provider":     {"time", "provider", "deferred_pct"},
	"mailmon / Overview / Complaint rate by provider": {"time", "provider", "complaint_rate_pct"},
	"mailmon / Probes / Placement by provider × source": {"provider", "source_ip", "sent", "accepted",
		"received", "missing", "inbox_pct", "spam_pct", "missing_pct", "latency_p50_s", "latency_p95_s"},
	"mailmon / Probes / Inbox placement % by provider / source": {"time", "series", "inbox_pct"},
	"mailmon / Probes / Latency p50 by provider / source":       {"time", "series", "p50_s"},
	"mailmon / Probes / Latency p95 by provider / source":       {"time", "series", "p95_s"},
	"mailmon / Deliveries / Attempts by status":                 {"time", "status", "attempts"},
	"mailmon / Deliveries / Deferrals and bounces by category":  {"status", "category", "provider", "attempts"},
	"mailmon / Deliveries / Top remote replies": {"status", "category", "signature", "provider",
		"recipient_domain", "attempts", "sample_reply"},
	"mailmon / Deliveries / Delivery by provider × customer": {"provider", "customer", "attempts",
		"delivered_pct", "deferred_pct", "bounced_pct"},
	"mailmon / Complaints / Complaint rate by customer × provider": {"customer", "provider", "delivered",
		"complaints", "complaint_rate_pct"},
	"mailmon / Complaints / Complaints by customer":      {"time", "customer", "complaints"},
	"mailmon / Complaints / Complaints by feedback type": {"customer", "provider", "feedback_type", "complaints"},
	"mailmon / Complaints / Decisions": {"kind", "scope", "subject", "customer", "provider", "source_ip",
		"decisions", "max_rate_pct", "last_until", "in_force"},
}

// TestGrafanaPanelQueries runs every Grafana panel's and variable's query,
// expanded as Grafana and the ClickHouse plugin would for one day, against
// a real ClickHouse whose rollups were filled by inserting known raw
// events: each answers rows with its expected columns, and the key panels
// show the seeded figures (events outside the day stay out).
func TestGrafanaPanelQueries(t *testing.T) {
	ctx := context.Background()
	_, conn := chtest.Start(t)
	if _, err := chstore.Migrate(ctx, conn, chtest.Database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	seedGrafanaEvents(t, conn)

	panels, err := grafana.Panels()
	if err != nil {
		t.Fatal(err)
	}
	from, to := grafanaDay, grafanaDay.Add(24*time.Hour)
	results := map[string][]map[string]string{}
	for _, p := range panels {
		name := p.Dashboard + " / " + p.Title
		want, ok := grafanaColumns[name]
		if !ok {
			t.Errorf("%s: no expected columns in grafanaColumns", name)
			continue
		}
		sql, err := grafana.Expand(p.SQL, from, to)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		columns, rows := queryStrings(t, conn, name, sql)
		if !slices.Equal(columns, want) {
			t.Errorf("%s: columns %v, want %v", name, columns, want)
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows", name)
		}
		if p.Format == "timeseries" && (len(columns) == 0 || columns[0] != "time") {
			t.Errorf("%s: a time series whose first column is not time", name)
		}
		results[name] = rows
	}
	for name := range grafanaColumns {
		if _, ok := results[name]; !ok && !t.Failed() {
			t.Errorf("%s: expected, but no dashboard has that panel", name)
		}
	}

	// The seeded figures, where the dashboards show them.
	overview := results["mailmon / Overview / Sending IP × provider"]
	wantRow(t, "overview", overview, map[string]string{"source_ip": "192.0.2.1", "provider": "gmail"}, map[string]string{
		"attempts": "100", "delivered": "97", "delivered_pct": "97", "deferred_pct": "2", "bounced_pct": "1",
		"complaints": "3", "complaint_rate_pct": "3.093", "listed_zones": "1",
	})
	wantRow(t, "overview", overview, map[string]string{"source_ip": "192.0.2.2", "provider": "yahoo"}, map[string]string{
		"attempts": "50", "delivered_pct": "100", "complaints": "1", "complaint_rate_pct": "2", "listed_zones": "0",
	})
	if len(overview) != 2 {
		t.Errorf("overview: %d rows, want 2 (events outside the day excluded): %v", len(overview), overview)
	}
	listings := results["mailmon / Overview / Blocklist listings"]
	wantRow(t, "listings", listings, map[string]string{"zone": "bl.test", "target": "192.0.2.1"}, map[string]string{
		"listings": "1", "delistings": "0", "listed_now": "1", "last_listed": "2026-03-02 08:00:00 +0000 UTC",
	})
	wantRow(t, "listings", listings, map[string]string{"zone": "dbl.test", "target": "mail.example"}, map[string]string{
		"listings": "1", "delistings": "1", "listed_now": "0", "target_kind": "domain",
	})
	placement := results["mailmon / Probes / Placement by provider × source"]
	wantRow(t, "placement", placement, map[string]string{"provider": "gmail", "source_ip": "192.0.2.1"}, map[string]string{
		"sent": "5", "accepted": "4", "received": "3", "missing": "1",
		"inbox_pct": "50", "spam_pct": "25", "missing_pct": "25", "latency_p50_s": "3",
	})
	replies := results["mailmon / Deliveries / Top remote replies"]
	if len(replies) == 0 || replies[0]["signature"] != "greylisted" || replies[0]["attempts"] != "2" ||
		replies[0]["sample_reply"] != "451 4.7.1 greylisted, try again later" {
		t.Errorf("top replies: first %v, want the 2 greylisted deferrals", replies[:min(1, len(replies))])
	}
	rates := results["mailmon / Complaints / Complaint rate by customer × provider"]
	wantRow(t, "complaint rate", rates, map[string]string{"customer": "acme", "provider": "gmail"}, map[string]string{
		"delivered": "97", "complaints": "3", "complaint_rate_pct": "3.093",
	})
	decisions := results["mailmon / Complaints / Decisions"]
	wantRow(t, "decisions", decisions, map[string]string{"kind": "cutoff", "subject": "acme"}, map[string]string{
		"decisions": "1", "max_rate_pct": "3.1", "in_force": "1",
	})
	wantRow(t, "decisions", decisions, map[string]string{"kind": "reroute", "subject": "192.0.2.2"}, map[string]string{
		"decisions": "1", "in_force": "0",
	})

	// The variables list the seeded values of the day.
	variables, err := grafana.Variables()
	if err != nil {
		t.Fatal(err)
	}
	wantValues := map[string]string{"provider": "gmail,yahoo", "source_ip": "192.0.2.1,192.0.2.2", "customer": "acme,beta"}
	for _, v := range variables {
		sql, err := grafana.Expand(v.SQL, from, to)
		if err != nil {
			t.Errorf("%s / $%s: %v", v.Dashboard, v.Name, err)
			continue
		}
		_, rows := queryStrings(t, conn, v.Dashboard+" / $"+v.Name, sql)
		var values []string
		for _, r := range rows {
			values = append(values, r[v.Name])
		}
		if got := strings.Join(values, ","); got != wantValues[v.Name] {
			t.Errorf("%s / $%s = %s, want %s", v.Dashboard, v.Name, got, wantValues[v.Name])
		}
	}

	// Every panel also runs with a value selected for each variable, the
	// other side of $__conditionalAll.
	selected := map[string][]string{"provider": {"gmail"}, "source_ip": {"192.0.2.1"}, "customer": {"acme"}}
	for _, p := range panels {
		name := p.Dashboard + " / " + p.Title + " (gmail, 192.0.2.1, acme)"
		sql, err := grafana.ExpandWith(p.SQL, grafana.Options{From: from, To: to, Vars: selected})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		columns, rows := queryStrings(t, conn, name, sql)
		if want := grafanaColumns[p.Dashboard+" / "+p.Title]; !slices.Equal(columns, want) {
			t.Errorf("%s: columns %v, want %v", name, columns, want)
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows", name)
		}
		for _, r := range rows {
			for _, c := range []string{"provider", "source_ip", "customer"} {
				if v, ok := r[c]; ok && v != "" && v != selected[c][0] {
					t.Errorf("%s: a row for %s %s: %v", name, c, v, r)
				}
			}
		}
	}

	// A selection narrows the panels through $__conditionalAll.
	for _, p := range panels {
		if p.Dashboard+" / "+p.Title != "mailmon / Overview / Sending IP × provider" {
			continue
		}
		sql, err := grafana.ExpandWith(p.SQL, grafana.Options{From: from, To: to, Vars: map[string][]string{"provider": {"yahoo"}}})
		if err != nil {
			t.Fatal(err)
		}
		_, rows := queryStrings(t, conn, "overview for yahoo", sql)
		if len(rows) != 1 || rows[0]["provider"] != "yahoo" {
			t.Errorf("overview for provider yahoo: %v, want one yahoo row", rows)
		}
	}
}

// seedGrafanaEvents inserts raw events on grafanaDay (and a few two days
// before, which the dashboards must leave out); the materialised views fill
// the rollups the panels read.
func seedGrafanaEvents(t *testing.T, conn driver.Conn) {
	t.Helper()
	at := func(hh, mm, ss int) time.Time {
		return grafanaDay.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second)
	}
	before := grafanaDay.AddDate(0, 0, -2).Add(10 * time.Hour)

	// 192.0.2.1 → gmail for acme: 97 sent, 2 deferred, 1 bounced;
	// 192.0.2.2 → yahoo for beta: 50 sent; 10 bounces two days before.
	var deliveries [][]any
	add := func(n int, when func(int) time.Time, provider, ip, customer, domain, status, category, signature, reply string) {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("d%d", len(deliveries))
			deliveries = append(deliveries, []any{id, when(i), provider, ip, customer, domain, status, category, signature, reply})
		}
	}
	spread := func(i int) time.Time { return at(10, 0, 20*i) } // across 10:00–10:33
	add(97, spread, "gmail", "192.0.2.1", "acme", "gmail.com", "sent", "", "", "250 2.0.0 OK")
	add(2, spread, "gmail", "192.0.2.1", "acme", "gmail.com", "deferred", "greylist", "greylisted", "451 4.7.1 greylisted, try again later")
	add(1, spread, "gmail", "192.0.2.1", "acme", "gmail.com", "bounced", "policy", "blocked", "550 5.7.1 blocked by policy")
	add(50, spread, "yahoo", "192.0.2.2", "beta", "yahoo.com", "sent", "", "", "250 ok")
	add(10, func(int) time.Time { return before }, "gmail", "192.0.2.1", "acme", "gmail.com", "bounced", "policy", "blocked", "550 5.7.1 blocked")
	insertGrafanaRows(t, conn, "delivery_attempted",
		"id, time, provider, source_ip, customer, recipient_domain, status, category, signature, reply", deliveries)

	// Counted and trusted complaints count; a forged one and a report that
	// is not a complaint do not; nor does one two days before.
	insertGrafanaRows(t, conn, "complaint_received",
		"id, time, provider, source_ip, customer, feedback_type, counted, trusted", [][]any{
			{"c1", at(11, 0, 0), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
			{"c2", at(11, 5, 0), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
			{"c3", at(12, 0, 0), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
			{"c4", at(12, 0, 0), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(0)},
			{"c5", at(12, 0, 0), "gmail", "192.0.2.1", "acme", "not-spam", uint8(0), uint8(1)},
			{"c6", at(11, 0, 0), "yahoo", "192.0.2.2", "beta", "abuse", uint8(1), uint8(1)},
			{"c7", before, "yahoo", "192.0.2.2", "beta", "abuse", uint8(1), uint8(1)},
		})

	// gmail from 192.0.2.1: 5 probes sent (4 accepted), 2 in the inbox,
	// 1 in spam, 1 missing; latencies 1, 3 and 5 s.
	insertGrafanaRows(t, conn, "probe_sent", "id, time, provider, source_ip, outcome", [][]any{
		{"s1", at(9, 0, 0), "gmail", "192.0.2.1", "accepted"},
		{"s2", at(9, 5, 0), "gmail", "192.0.2.1", "accepted"},
		{"s3", at(9, 10, 0), "gmail", "192.0.2.1", "accepted"},
		{"s4", at(9, 15, 0), "gmail", "192.0.2.1", "accepted"},
		{"s5", at(9, 20, 0), "gmail", "192.0.2.1", "tempfail"},
		{"s6", at(9, 0, 0), "yahoo", "192.0.2.2", "accepted"},
	})
	insertGrafanaRows(t, conn, "probe_received", "id, time, provider, source_ip, placement, latency_ms", [][]any{
		{"r1", at(9, 1, 0), "gmail", "192.0.2.1", "inbox", int64(1000)},
		{"r2", at(9, 6, 0), "gmail", "192.0.2.1", "inbox", int64(3000)},
		{"r3", at(9, 11, 0), "gmail", "192.0.2.1", "spam", int64(5000)},
		{"r6", at(9, 1, 0), "yahoo", "192.0.2.2", "inbox", int64(2000)},
	})
	insertGrafanaRows(t, conn, "probe_missing", "id, time, provider, source_ip", [][]any{
		{"m4", at(9, 45, 0), "gmail", "192.0.2.1"},
	})

	// 192.0.2.1 listed on bl.test; a domain listed and delisted on dbl.test.
	insertGrafanaRows(t, conn, "dnsbl_listed", "id, time, zone, target, target_kind, source_ip", [][]any{
		{"l1", at(8, 0, 0), "bl.test", "192.0.2.1", "ip", "192.0.2.1"},
		{"l2", at(6, 0, 0), "dbl.test", "mail.example", "domain", ""},
	})
	insertGrafanaRows(t, conn, "dnsbl_delisted", "id, time, zone, target, target_kind, source_ip", [][]any{
		{"u2", at(9, 0, 0), "dbl.test", "mail.example", "domain", ""},
	})

	// A cut-off that holds past the day, a reroute that ended within it.
	insertGrafanaRows(t, conn, "decision_cutoff", "id, time, scope, subject, customer, provider, source_ip, rate, until", [][]any{
		{"k1", at(12, 30, 0), "customer", "acme", "acme", "gmail", "", 0.031, grafanaDay.AddDate(0, 0, 2)},
	})
	insertGrafanaRows(t, conn, "decision_reroute", "id, time, scope, subject, customer, provider, source_ip, rate, until", [][]any{
		{"k2", at(11, 30, 0), "ip", "192.0.2.2", "", "yahoo", "192.0.2.2", 0.02, at(14, 0, 0)},
	})
}

func insertGrafanaRows(t *testing.T, conn driver.Conn, table, columns string, rows [][]any) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+table+" ("+columns+")")
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	for _, row := range rows {
		if err := batch.Append(row...); err != nil {
			t.Fatalf("%s: Append(%v): %v", table, row, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("%s: Send: %v", table, err)
	}
}

// queryStrings runs sql and returns its column names and its rows, each
// value printed with fmt.Sprint.
func queryStrings(t *testing.T, conn driver.Conn, name, sql string) ([]string, []map[string]string) {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, sql)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	columns := rows.Columns()
	var out []map[string]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: scan: %v", name, err)
		}
		row := make(map[string]string, len(columns))
		for i, c := range columns {
			row[c] = fmt.Sprint(reflect.ValueOf(dest[i]).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return columns, out
}

// wantRow checks that the one row matching key has the want values.
func wantRow(t *testing.T, what string, rows []map[string]string, key, want map[string]string) {
	t.Helper()
	var found []map[string]string
	for _, r := range rows {
		match := true
		for k, v := range key {
			match = match && r[k] == v
		}
		if match {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Errorf("%s: %d rows for %v, want 1 (rows: %v)", what, len(found), key, rows)
		return
	}
	for k, v := range want {
		if found[0][k] != v {
			t.Errorf("%s %v: %s = %q, want %q", what, key, k, found[0][k], v)
		}
	}
}
