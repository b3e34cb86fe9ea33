package chstore_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

func TestDropExpiredPartitionsDropsOnlyOldDays(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	for _, ddl := range []string{
		"CREATE TABLE daily_a (time DateTime('UTC'), id String) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMMDD(time) ORDER BY (time, id)",
		"CREATE TABLE daily_b (time DateTime('UTC'), id String) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMMDD(time) ORDER BY (time, id)",
	} {
		if err := conn.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2024, 3, 31, 12, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return now.AddDate(0, 0, -d) }
	// keepDays 30: the cut-off day is 2024-03-01; earlier days go.
	insertTimes(t, conn, "daily_a", day(0), day(1), day(29), day(30), day(31), day(45), day(45).Add(time.Hour))
	insertTimes(t, conn, "daily_b", day(2), day(31).Add(11*time.Hour+59*time.Minute)) // 2024-02-29 23:59 UTC

	dropped, err := chstore.DropExpiredPartitions(ctx, conn, database, []string{"daily_a", "daily_b"}, 30, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"daily_a/20240215", "daily_a/20240229", "daily_b/20240229"}
	if !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
	if got := days(t, conn, "daily_a"); !reflect.DeepEqual(got, []string{"2024-03-01", "2024-03-02", "2024-03-30", "2024-03-31"}) {
		t.Errorf("daily_a keeps days %v", got)
	}
	if got := days(t, conn, "daily_b"); !reflect.DeepEqual(got, []string{"2024-03-29"}) {
		t.Errorf("daily_b keeps days %v", got)
	}

	again, err := chstore.DropExpiredPartitions(ctx, conn, database, []string{"daily_a", "daily_b"}, 30, now)
	if err != nil || len(again) != 0 {
		t.Errorf("second run = %v, %v; want nothing dropped", again, err)
	}
}

func TestDropExpiredPartitionsErrors(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	for _, ddl := range []string{
		"CREATE TABLE monthly (time DateTime('UTC'), id String) ENGINE = MergeTree PARTITION BY toYYYYMM(time) ORDER BY time",
		"CREATE TABLE daily (time DateTime('UTC'), id String) ENGINE = MergeTree PARTITION BY toYYYYMMDD(time) ORDER BY time",
	} {
		if err := conn.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC)
	insertTimes(t, conn, "monthly", now.AddDate(0, -3, 0))
	insertTimes(t, conn, "daily", now.AddDate(0, 0, -40), now)

	tests := []struct {
		name        string
		database    string
		tables      []string
		keepDays    int
		wantErr     []string
		wantDropped []string
	}{
		{"keepDays zero", database, []string{"daily"}, 0, []string{"at least 1"}, nil},
		{"bad database", "a-b", []string{"daily"}, 30, []string{"not a plain identifier"}, nil},
		{"bad table name", database, []string{"daily; DROP"}, 30, []string{"not a plain identifier"}, []string{}},
		// The other tables are still processed.
		{"missing and monthly tables", database, []string{"nope", "monthly", "daily"}, 30,
			[]string{"nope does not exist", `partition "202312"`}, []string{"daily/20240220"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropped, err := chstore.DropExpiredPartitions(ctx, conn, tt.database, tt.tables, tt.keepDays, now)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if len(dropped) != len(tt.wantDropped) || (len(dropped) > 0 && !reflect.DeepEqual(dropped, tt.wantDropped)) {
				t.Errorf("dropped %v, want %v", dropped, tt.wantDropped)
			}
		})
	}
}

// TestSupportsTTLMatchesTheServer asks the real server to create a table
// with a TTL: SupportsTTL must predict whether that works.
func TestSupportsTTLMatchesTheServer(t *testing.T) {
	ctx := context.Background()
	conn, _ := chtest.NewDatabase(t, server)
	err := conn.Exec(ctx, "CREATE TABLE with_ttl (time DateTime) ENGINE = MergeTree ORDER BY time TTL time + INTERVAL 30 DAY")
	accepted := err == nil
	if got := chstore.SupportsTTL(ctx, conn); got != accepted {
		t.Errorf("SupportsTTL = %v, but the server accepting a TTL table = %v (%v)", got, accepted, err)
	}
	v, _ := conn.ServerVersion()
	t.Logf("server %v: TTL %v", v.Version, accepted)
}

func insertTimes(t *testing.T, conn driver.Conn, table string, times ...time.Time) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+table+" (time, id)")
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range times {
		if err := batch.Append(ts, fmt.Sprint("id-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}

func days(t *testing.T, conn driver.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT DISTINCT toString(toDate(time)) AS d FROM "+table+" ORDER BY d")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
