package chstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

const (
	sqlEvents = `-- Events, one row per id.
CREATE TABLE IF NOT EXISTS events (
    time DateTime('UTC'),
    id String,
    note String DEFAULT 'a;b -- not a comment' /* inline; comment */,
    provider LowCardinality(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, id);
`
	sqlTwoTables = `CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree ORDER BY x;
CREATE TABLE IF NOT EXISTS b (y UInt8) ENGINE = MergeTree ORDER BY y;
`
	sqlThird = `CREATE TABLE IF NOT EXISTS c (z UInt8) ENGINE = MergeTree ORDER BY z`
)

func migrationFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, text := range files {
		m[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return m
}

func TestMigrateAppliesOnceInOrder(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	v1 := migrationFS(map[string]string{
		"0002_two_tables.sql": sqlTwoTables,
		"0001_events.sql":     sqlEvents,
		"README.md":           "not a migration",
	})

	applied, err := chstore.Migrate(ctx, conn, database, v1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001_events.sql", "0002_two_tables.sql"}; !reflect.DeepEqual(applied, want) {
		t.Errorf("first run applied %v, want %v", applied, want)
	}
	if got := tableNames(t, conn, database); !reflect.DeepEqual(got, []string{"a", "b", "events", "schema_migrations"}) {
		t.Errorf("tables = %v", got)
	}
	if got := columnType(t, conn, database, "events", "provider"); got != "LowCardinality(String)" {
		t.Errorf("events.provider type = %q", got)
	}

	// The record: one row per file, with the file's SHA-256.
	rows := recorded(t, conn, database)
	sum := sha256.Sum256([]byte(sqlEvents))
	if rows["0001_events.sql"] != hex.EncodeToString(sum[:]) || len(rows) != 2 {
		t.Errorf("schema_migrations = %v", rows)
	}

	applied, err = chstore.Migrate(ctx, conn, database, v1)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second run applied %v, want nothing", applied)
	}

	v2 := migrationFS(map[string]string{"0001_events.sql": sqlEvents, "0002_two_tables.sql": sqlTwoTables, "0003_c.sql": sqlThird})
	applied, err = chstore.Migrate(ctx, conn, database, v2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0003_c.sql"}; !reflect.DeepEqual(applied, want) {
		t.Errorf("third run applied %v, want %v", applied, want)
	}
	if n := len(recorded(t, conn, database)); n != 3 {
		t.Errorf("%d migrations recorded, want 3", n)
	}
}

func TestMigrateRefusesChangedFile(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(ctx, conn, database, migrationFS(map[string]string{"0001_events.sql": sqlEvents})); err != nil {
		t.Fatal(err)
	}
	edited := migrationFS(map[string]string{
		"0001_events.sql": strings.Replace(sqlEvents, "one row per id", "edited comment", 1),
		"0002_c.sql":      sqlThird,
	})
	applied, err := chstore.Migrate(ctx, conn, database, edited)
	if err == nil || !strings.Contains(err.Error(), "0001_events.sql") || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Migrate with an edited applied file = %v, want a changed-checksum error naming it", err)
	}
	if len(applied) != 0 {
		t.Errorf("applied %v despite the error", applied)
	}
	if got := tableNames(t, conn, database); contains(got, "c") {
		t.Errorf("0002_c.sql was applied although an earlier file changed: tables %v", got)
	}
}

func TestMigrateFailedFileIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	broken := migrationFS(map[string]string{
		"0001_a.sql": "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree ORDER BY x;\nCREATE TABLE oops (;",
	})
	_, err := chstore.Migrate(ctx, conn, database, broken)
	if err == nil || !strings.Contains(err.Error(), "0001_a.sql statement 2") {
		t.Fatalf("Migrate = %v, want an error naming file and statement", err)
	}
	if rows := recorded(t, conn, database); len(rows) != 0 {
		t.Errorf("a failed file was recorded: %v", rows)
	}
	// The fixed file runs from its start; its first statement is idempotent.
	fixed := migrationFS(map[string]string{"0001_a.sql": sqlTwoTables})
	applied, err := chstore.Migrate(ctx, conn, database, fixed)
	if err != nil || len(applied) != 1 {
		t.Fatalf("Migrate after fix = %v, %v", applied, err)
	}
}

func TestMigrateConcurrentRunsAgree(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	files := migrationFS(map[string]string{"0001_events.sql": sqlEvents, "0002_two_tables.sql": sqlTwoTables, "0003_c.sql": sqlThird})

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = chstore.Migrate(ctx, conn, database, files)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if got := tableNames(t, conn, database); !reflect.DeepEqual(got, []string{"a", "b", "c", "events", "schema_migrations"}) {
		t.Errorf("tables = %v", got)
	}
	applied, err := chstore.Migrate(ctx, conn, database, files)
	if err != nil || len(applied) != 0 {
		t.Errorf("run after the concurrent ones = %v, %v; want nothing to do", applied, err)
	}
}

func TestMigrateRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	ok := migrationFS(map[string]string{"0001_c.sql": sqlThird})
	tests := []struct {
		name     string
		database string
		files    fstest.MapFS
		wantErr  string
	}{
		{"another database", "default", ok, "want \"default\""},
		{"bad database name", "x;y", ok, "not a plain identifier"},
		{"unterminated string", database, migrationFS(map[string]string{"0001_x.sql": "SELECT 'abc"}), "unterminated ' quote"},
		{"unterminated comment", database, migrationFS(map[string]string{"0001_x.sql": "SELECT 1 /* abc"}), "unterminated /* comment"},
		{"inline insert values", database, migrationFS(map[string]string{"0001_x.sql": "INSERT INTO c (z) VALUES (1)"}), "INSERT ... VALUES hangs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chstore.Migrate(ctx, conn, tt.database, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Migrate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if rows := recorded(t, conn, database); len(rows) != 0 {
		t.Errorf("bad input recorded migrations: %v", rows)
	}
}

func tableNames(t *testing.T, conn driver.Conn, database string) []string {
	t.Helper()
	var names []string
	rows, err := conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? ORDER BY name", database)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func columnType(t *testing.T, conn driver.Conn, database, table, column string) string {
	t.Helper()
	var typ string
	err := conn.QueryRow(context.Background(), "SELECT type FROM system.columns WHERE database = ? AND table = ? AND name = ?", database, table, column).Scan(&typ)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

// recorded reads schema_migrations (if it exists) as file → checksum.
func recorded(t *testing.T, conn driver.Conn, database string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if !contains(tableNames(t, conn, database), chstore.MigrationsTable) {
		return out
	}
	rows, err := conn.Query(context.Background(), "SELECT version, checksum FROM "+database+"."+chstore.MigrationsTable+" FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, c string
		if err := rows.Scan(&v, &c); err != nil {
			t.Fatal(err)
		}
		out[v] = c
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
