package chstore_test

import (
	"context"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// TestRollupsOnRealServer applies the migrations and checks the dashboard
// rollups on a real server: a redelivered event inserted twice (in a later
// insert, before any merge) counts once per group, the rollup agrees with
// a FINAL count of the raw table, reports that are not complaints and
// forged (untrusted) ones stay out of the complaint rollup, and retention
// drops the rollups' day partitions (the DMARC and TLS report ones too).
func TestRollupsOnRealServer(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate(schemas.Migrations): %v", err)
	}

	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(hh, mm int) time.Time {
		return day.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}

	// id, time, provider, source_ip, customer, status, category
	deliveries := [][]any{
		{"d1", at(10, 1), "gmail", "192.0.2.1", "acme", "sent", ""},
		{"d2", at(10, 4), "gmail", "192.0.2.1", "acme", "sent", ""},
		{"d3", at(10, 2), "gmail", "192.0.2.1", "acme", "bounced", "policy"},
		{"d4", at(10, 5), "gmail", "192.0.2.1", "acme", "sent", ""}, // next bucket
		{"d5", at(10, 3), "yahoo", "192.0.2.2", "beta", "sent", ""},
	}
	const deliveryInsert = "INSERT INTO delivery_attempted (id, time, provider, source_ip, customer, status, category)"
	insertRows(t, conn, deliveryInsert, deliveries)
	// Redelivered copies of d1 and d5, a separate insert as a redelivery is.
	insertRows(t, conn, deliveryInsert, [][]any{deliveries[0], deliveries[4]})

	wantDeliveries := map[string]uint64{
		"2026-01-01 10:00:00|gmail|192.0.2.1|acme|sent|":          2,
		"2026-01-01 10:00:00|gmail|192.0.2.1|acme|bounced|policy": 1,
		"2026-01-01 10:05:00|gmail|192.0.2.1|acme|sent|":          1,
		"2026-01-01 10:00:00|yahoo|192.0.2.2|beta|sent|":          1,
	}
	gotRollup := groupCounts(t, conn, `SELECT bucket, provider, source_ip, customer, status, category, uniqExactMerge(attempts)
		FROM delivery_attempted_5m GROUP BY bucket, provider, source_ip, customer, status, category`)
	if !reflect.DeepEqual(gotRollup, wantDeliveries) {
		t.Errorf("delivery_attempted_5m = %v, want %v", gotRollup, wantDeliveries)
	}
	gotFinal := groupCounts(t, conn, `SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, status, category, count()
		FROM delivery_attempted FINAL GROUP BY bucket, provider, source_ip, customer, status, category`)
	if !reflect.DeepEqual(gotRollup, gotFinal) {
		t.Errorf("delivery_attempted_5m = %v, FINAL count of delivery_attempted = %v", gotRollup, gotFinal)
	}

	// id, time, provider, source_ip, customer, feedback_type, counted, trusted
	complaints := [][]any{
		{"c1", at(10, 1), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
		{"c2", at(10, 2), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
		{"c3", at(10, 3), "gmail", "192.0.2.1", "acme", "not-spam", uint8(0), uint8(1)}, // not a complaint
		{"c4", at(10, 3), "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(0)},    // forged: origin not verified
		{"c5", at(10, 4), "yahoo", "192.0.2.2", "victim", "abuse", uint8(1), uint8(0)},  // forged, a group of its own
		{"c6", at(10, 4), "yahoo", "192.0.2.2", "victim", "abuse", uint8(1), uint8(0)},  // forged
	}
	const complaintInsert = "INSERT INTO complaint_received (id, time, provider, source_ip, customer, feedback_type, counted, trusted)"
	insertRows(t, conn, complaintInsert, complaints)
	insertRows(t, conn, complaintInsert, [][]any{complaints[1], complaints[2], complaints[3], complaints[4]})

	wantComplaints := map[string]uint64{"2026-01-01 10:00:00|gmail|192.0.2.1|acme|abuse": 2}
	gotRollup = groupCounts(t, conn, complaintRollupQuery)
	if !reflect.DeepEqual(gotRollup, wantComplaints) {
		t.Errorf("complaint_received_5m = %v, want %v (counted and trusted only)", gotRollup, wantComplaints)
	}
	gotFinal = groupCounts(t, conn, complaintFinalQuery)
	if !reflect.DeepEqual(gotRollup, gotFinal) {
		t.Errorf("complaint_received_5m = %v, FINAL count of complaint_received (counted and trusted) = %v", gotRollup, gotFinal)
	}

	// A DMARC record and a TLS report result of the same day, so the
	// report rollups have a partition for retention to drop.
	insertRows(t, conn, "INSERT INTO dmarc_record (id, time, domain, source_ip, org_name, count, dmarc)",
		[][]any{{"r1", at(0, 0), "acme.example", "192.0.2.1", "google.com", uint64(12), "pass"}})
	insertRows(t, conn, "INSERT INTO tlsrpt_result (id, time, policy_domain, organization, policy_type, success, failure)",
		[][]any{{"t1", at(0, 0), "acme.example", "google.com", "sts", uint64(90), uint64(3)}})

	// Retention drops the rollups' day partitions like the raw tables'.
	var rollups []string
	var wantDropped []string
	for _, r := range schemas.Rollups() {
		rollups = append(rollups, r.Table)
		// This test inserted deliveries, complaints and reports only.
		switch r.Source {
		case "delivery_attempted", "complaint_received", "dmarc_record", "tlsrpt_result":
			wantDropped = append(wantDropped, r.Table+"/20260101")
		}
	}
	dropped, err := chstore.DropExpiredPartitions(ctx, conn, database, rollups, 30, day.AddDate(0, 0, 30))
	if err != nil || len(dropped) != 0 {
		t.Errorf("retention 30 days after dropped %v (%v), want nothing", dropped, err)
	}
	dropped, err = chstore.DropExpiredPartitions(ctx, conn, database, rollups, 30, day.AddDate(0, 0, 32))
	if err != nil || !reflect.DeepEqual(dropped, wantDropped) {
		t.Errorf("retention 32 days after dropped %v (%v), want %v", dropped, err, wantDropped)
	}
}

// The complaint rollup read as a dashboard reads it, and the same counts
// from the raw table: the complaints mailmon acts on (counted and trusted),
// one per id once duplicates are merged.
const (
	complaintRollupQuery = `SELECT bucket, provider, source_ip, customer, feedback_type, uniqExactMerge(complaints)
		FROM complaint_received_5m GROUP BY bucket, provider, source_ip, customer, feedback_type`
	complaintFinalQuery = `SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, feedback_type, uniqExact(id)
		FROM complaint_received FINAL WHERE counted = 1 AND trusted = 1
		GROUP BY bucket, provider, source_ip, customer, feedback_type`
)

// TestComplaintRollupUpgrade migrates a database as a release before the
// trust filter left it (every migration up to 0024), with complaints
// already rolled up by the old view, then applies the rest: the view is
// replaced, and from then on only trusted complaints are rolled up. The
// buckets written before keep what the old view put there (no back-fill,
// as README.md says).
func TestComplaintRollupUpgrade(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	before := migrationsUpTo(t, "0024")
	if _, err := chstore.Migrate(ctx, conn, database, before); err != nil {
		t.Fatalf("Migrate(up to 0024): %v", err)
	}
	if query := viewQuery(t, conn, database, "complaint_received_5m_mv"); strings.Contains(query, "trusted") {
		t.Fatalf("before the upgrade the view already filters on trusted: %s", query)
	}

	const complaintInsert = "INSERT INTO complaint_received (id, time, provider, source_ip, customer, feedback_type, counted, trusted)"
	early := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	late := early.Add(time.Hour)
	// id, time, provider, source_ip, customer, feedback_type, counted, trusted
	insertRows(t, conn, complaintInsert, [][]any{
		{"old-trusted", early, "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
		{"old-forged", early, "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(0)},
	})

	applied, err := chstore.Migrate(ctx, conn, database, schemas.Migrations)
	if err != nil {
		t.Fatalf("Migrate(all): %v", err)
	}
	if want := []string{"0025_drop_complaint_received_5m_mv.sql", "0026_complaint_received_5m_mv.sql"}; len(applied) < 2 || !reflect.DeepEqual(applied[:2], want) {
		t.Errorf("upgrade applied %v, want %v first", applied, want)
	}
	query := viewQuery(t, conn, database, "complaint_received_5m_mv")
	if !strings.Contains(query, "counted = 1") || !strings.Contains(query, "trusted = 1") {
		t.Errorf("after the upgrade the view is %s, want WHERE counted = 1 AND trusted = 1", query)
	}

	insertRows(t, conn, complaintInsert, [][]any{
		{"new-trusted", late, "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(1)},
		{"new-forged-1", late, "gmail", "192.0.2.1", "acme", "abuse", uint8(1), uint8(0)},
		{"new-forged-2", late, "yahoo", "192.0.2.2", "victim", "abuse", uint8(1), uint8(0)},
	})
	want := map[string]uint64{
		"2026-01-01 09:00:00|gmail|192.0.2.1|acme|abuse": 2, // rolled up by the old view, forged one included
		"2026-01-01 10:00:00|gmail|192.0.2.1|acme|abuse": 1,
	}
	if got := groupCounts(t, conn, complaintRollupQuery); !reflect.DeepEqual(got, want) {
		t.Errorf("complaint_received_5m = %v, want %v", got, want)
	}
	final := groupCounts(t, conn, complaintFinalQuery+" HAVING bucket >= '2026-01-01 10:00:00'")
	got := groupCounts(t, conn, strings.Replace(complaintRollupQuery, "GROUP BY", "WHERE bucket >= '2026-01-01 10:00:00' GROUP BY", 1))
	if !reflect.DeepEqual(got, final) {
		t.Errorf("after the upgrade complaint_received_5m = %v, FINAL count of complaint_received (counted and trusted) = %v", got, final)
	}
}

// TestREADMEQueriesOnRealServer runs every SQL example of the schemas
// README against a migrated database, so an example that names a column
// or a function ClickHouse 18.16 does not know fails here, not for a reader.
func TestREADMEQueriesOnRealServer(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate(schemas.Migrations): %v", err)
	}
	readme, err := os.ReadFile("../../../schemas/README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```sql\n")[1:]
	if len(blocks) < 4 {
		t.Fatalf("%d SQL examples in schemas/README.md, want at least 4", len(blocks))
	}
	for _, block := range blocks {
		query, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatalf("unterminated SQL example: %.60q", block)
		}
		rows, err := conn.Query(ctx, query)
		if err != nil {
			t.Errorf("README example fails: %v\n%s", err, query)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("README example fails: %v\n%s", err, query)
		}
		rows.Close()
	}
}

// migrationsUpTo is schemas.Migrations without the files numbered after
// last: the schema an older release left behind.
func migrationsUpTo(t *testing.T, last string) fs.FS {
	t.Helper()
	names, err := fs.Glob(schemas.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	older := fstest.MapFS{}
	for _, name := range names {
		if name[:len(last)] > last {
			continue
		}
		raw, err := fs.ReadFile(schemas.Migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		older[name] = &fstest.MapFile{Data: raw}
	}
	return older
}

// viewQuery is the CREATE statement the server keeps for a view; it fails
// the test unless exactly one materialised view has that name.
func viewQuery(t *testing.T, conn driver.Conn, database, view string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT engine, create_table_query FROM system.tables WHERE database = ? AND name = ?", database, view)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var queries []string
	for rows.Next() {
		var engine, query string
		if err := rows.Scan(&engine, &query); err != nil {
			t.Fatal(err)
		}
		if engine != "MaterializedView" {
			t.Errorf("%s has engine %s, want MaterializedView", view, engine)
		}
		queries = append(queries, query)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(queries) != 1 {
		t.Fatalf("%d tables named %s in %s, want one view", len(queries), view, database)
	}
	return queries[0]
}

// insertRows sends rows in one batch (INSERT ... VALUES hangs on 18.16).
func insertRows(t *testing.T, conn driver.Conn, insert string, rows [][]any) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.Background(), insert)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if err := batch.Append(row...); err != nil {
			t.Fatalf("Append(%v): %v", row, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// groupCounts runs a query whose first column is a DateTime, then string
// dimensions, then a UInt64 count, and returns the counts keyed by the
// group's values joined with "|".
func groupCounts(t *testing.T, conn driver.Conn, query string) map[string]uint64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	n := len(rows.ColumnTypes())
	got := map[string]uint64{}
	for rows.Next() {
		var bucket time.Time
		dims := make([]string, n-2)
		var count uint64
		dest := []any{&bucket}
		for i := range dims {
			dest = append(dest, &dims[i])
		}
		dest = append(dest, &count)
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		key := bucket.UTC().Format(time.DateTime)
		for _, d := range dims {
			key += "|" + d
		}
		got[key] = count
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return got
}
