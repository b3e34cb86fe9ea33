package chstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// TestRollupsOnRealServer applies the migrations and checks the dashboard
// rollups on a real server: a redelivered event inserted twice (in a later
// insert, before any merge) counts once per group, the rollup agrees with
// a FINAL count of the raw table, reports that are not complaints stay out
// of the complaint rollup, and retention drops the rollups' day partitions.
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

	// id, time, provider, source_ip, customer, feedback_type, counted
	complaints := [][]any{
		{"c1", at(10, 1), "gmail", "192.0.2.1", "acme", "abuse", uint8(1)},
		{"c2", at(10, 2), "gmail", "192.0.2.1", "acme", "abuse", uint8(1)},
		{"c3", at(10, 3), "gmail", "192.0.2.1", "acme", "not-spam", uint8(0)}, // not a complaint
	}
	const complaintInsert = "INSERT INTO complaint_received (id, time, provider, source_ip, customer, feedback_type, counted)"
	insertRows(t, conn, complaintInsert, complaints)
	insertRows(t, conn, complaintInsert, [][]any{complaints[1], complaints[2]})

	wantComplaints := map[string]uint64{"2026-01-01 10:00:00|gmail|192.0.2.1|acme|abuse": 2}
	gotRollup = groupCounts(t, conn, `SELECT bucket, provider, source_ip, customer, feedback_type, uniqExactMerge(complaints)
		FROM complaint_received_5m GROUP BY bucket, provider, source_ip, customer, feedback_type`)
	if !reflect.DeepEqual(gotRollup, wantComplaints) {
		t.Errorf("complaint_received_5m = %v, want %v", gotRollup, wantComplaints)
	}
	gotFinal = groupCounts(t, conn, `SELECT toStartOfFiveMinute(time) AS bucket, provider, source_ip, customer, feedback_type, count()
		FROM complaint_received FINAL WHERE counted = 1 GROUP BY bucket, provider, source_ip, customer, feedback_type`)
	if !reflect.DeepEqual(gotRollup, gotFinal) {
		t.Errorf("complaint_received_5m = %v, FINAL count of complaint_received = %v", gotRollup, gotFinal)
	}

	// Retention drops the rollups' day partitions like the raw tables'.
	var rollups []string
	var wantDropped []string
	for _, r := range schemas.Rollups() {
		rollups = append(rollups, r.Table)
		wantDropped = append(wantDropped, r.Table+"/20260101")
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
