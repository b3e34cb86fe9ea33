package chstore_test

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// TestClusterMigrationsRollupsRetention runs the migrations ON CLUSTER on
// ZooKeeper and two ClickHouse 18.16 replicas of one shard: every table
// becomes a replicated local table behind a Distributed one on both
// replicas, a second run through the other replica applies nothing, rows
// written on replica 1 are read through the Distributed tables on replica
// 2 with rollups equal to the raw tables, FINAL works through the
// Distributed table, and retention drops a day on both replicas.
func TestClusterMigrationsRollupsRetention(t *testing.T) {
	ctx := context.Background()
	c := chtest.StartCluster(t)
	const database = "mailmon_cluster"
	cfg := c.Config(database)

	conn1, err := chstore.Open(ctx, cfg) // addrs: replica 1 first
	if err != nil {
		t.Fatal(err)
	}
	defer conn1.Close()
	files, err := fsGlob()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	applied, err := chstore.MigrateFor(ctx, conn1, cfg, schemas.Migrations)
	if err != nil {
		t.Fatalf("MigrateFor on the cluster: %v", err)
	}
	t.Logf("%d migration files applied ON CLUSTER in %v", len(applied), time.Since(began).Round(time.Millisecond))
	if !slices.Equal(applied, files) {
		t.Fatalf("applied %v, want every file %v", applied, files)
	}

	conn2 := c.Open(1, database)
	began = time.Now()
	again, err := chstore.MigrateFor(ctx, conn2, cfg, schemas.Migrations)
	if err != nil {
		t.Fatalf("MigrateFor through replica 2: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("a second run through replica 2 applied %v, want nothing (the record is replicated)", again)
	}
	t.Logf("second run through replica 2: nothing to apply, %v", time.Since(began).Round(time.Millisecond))

	for i, conn := range []driver.Conn{conn1, conn2} {
		engines := tableEngines(t, conn, database)
		var names []string
		for _, k := range schemas.Kinds() {
			names = append(names, k.Table)
		}
		for _, r := range schemas.Rollups() {
			names = append(names, r.Table)
		}
		for _, name := range names {
			if engines[name] != "Distributed" {
				t.Errorf("replica %d: %s is %q, want Distributed", i+1, name, engines[name])
			}
			if e := engines[chstore.LocalTable(name)]; !strings.HasPrefix(e, "Replicated") {
				t.Errorf("replica %d: %s is %q, want a Replicated engine", i+1, chstore.LocalTable(name), e)
			}
		}
		if e := engines[chstore.MigrationsTable]; e != "ReplicatedReplacingMergeTree" {
			t.Errorf("replica %d: %s is %q, want ReplicatedReplacingMergeTree", i+1, chstore.MigrationsTable, e)
		}
	}

	// The sink writes into the local tables of the replica it is
	// connected to; the views there fill the local rollups, which
	// replicate. Readers on the other replica use the Distributed tables.
	insertCountRollupSources(t, conn1, chstore.LocalTable)
	syncReplicas(t, conn2, database)
	checkCountRollups(t, conn2)
	for i, conn := range []driver.Conn{conn1, conn2} {
		var final, raw uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM probe_sent FINAL").Scan(&final); err != nil {
			t.Fatalf("replica %d: FINAL through the Distributed table: %v", i+1, err)
		}
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+chstore.LocalTable("probe_sent")).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if final != 40 || raw != 40 {
			t.Errorf("replica %d: %d rows with FINAL, %d in the local table, want 40 and 40", i+1, final, raw)
		}
	}

	// The shapes of the readers' queries work on the Distributed tables
	// unchanged: PREWHERE, an IN subquery over a Distributed table (the
	// console's latest probes), a subquery with ARRAY JOIN (its latency
	// per range) and a JOIN of subqueries (a load test's report).
	for _, q := range []string{
		`SELECT count() FROM (SELECT source_ip, provider, bucket, placement, quantilesMerge(0.5, 0.95)(latency_ms)
			FROM probe_received_5m PREWHERE bucket >= toDateTime('2026-03-01 00:00:00', 'UTC')
			AND (source_ip, provider, bucket) IN (SELECT source_ip, provider, max(bucket) FROM probe_received_5m GROUP BY source_ip, provider)
			GROUP BY source_ip, provider, bucket, placement)`,
		`SELECT count() FROM (SELECT provider, source_ip, key, quantilesMerge(0.5, 0.95)(state) FROM (
			SELECT provider, source_ip, toStartOfHour(bucket) AS t, quantilesMergeState(0.5, 0.95)(latency_ms) AS state
			FROM probe_received_5m GROUP BY provider, source_ip, t
			) ARRAY JOIN [t, toDateTime(0, 'UTC')] AS key GROUP BY provider, source_ip, key)`,
		`SELECT count() FROM (SELECT provider, source_ip, sent, inbox FROM (SELECT provider, source_ip, count() AS sent FROM probe_sent FINAL GROUP BY provider, source_ip)
			ANY LEFT JOIN (SELECT provider, source_ip, countIf(placement = 'inbox') AS inbox FROM probe_received GROUP BY provider, source_ip) USING (provider, source_ip))`,
	} {
		var n uint64
		if err := conn2.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Errorf("a reader's query on the Distributed tables: %v\n%s", err, q)
		} else if n == 0 {
			t.Errorf("no rows from a reader's query on the Distributed tables:\n%s", q)
		}
	}

	// A file that failed half way runs again from its start: the cluster
	// forms of a table, a view, and a view dropped and created again are
	// idempotent, and the rows and rollups stay as they were.
	withRerun := migrationFiles(t)
	var rerun []byte
	for _, name := range []string{"0001_probe_sent.sql", "0029_probe_sent_5m_mv.sql", "0025_drop_complaint_received_5m_mv.sql", "0026_complaint_received_5m_mv.sql"} {
		rerun = append(append(rerun, withRerun[name].Data...), ";\n"...)
	}
	withRerun["9000_rerun.sql"] = &fstest.MapFile{Data: rerun}
	if applied, err := chstore.MigrateFor(ctx, conn1, cfg, withRerun); err != nil || !slices.Equal(applied, []string{"9000_rerun.sql"}) {
		t.Fatalf("statements run again = %v, %v; want the file applied", applied, err)
	}
	syncReplicas(t, conn2, database)
	checkCountRollups(t, conn2)

	// Rows span 2026-03-01 and 03-02; keeping 1 day on 03-03 drops 03-01.
	dropped, err := chstore.DropExpiredPartitionsOnCluster(ctx, conn2, database, cfg.Cluster,
		[]string{"probe_sent", "probe_sent_5m"}, 1, time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"probe_sent/20260301", "probe_sent_5m/20260301"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
	syncReplicas(t, conn1, database)
	for i, conn := range []driver.Conn{conn1, conn2} {
		var first, second uint64
		err := conn.QueryRow(ctx, "SELECT countIf(toYYYYMMDD(time) = 20260301), countIf(toYYYYMMDD(time) = 20260302) FROM "+chstore.LocalTable("probe_sent")).Scan(&first, &second)
		if err != nil {
			t.Fatal(err)
		}
		if first != 0 || second == 0 {
			t.Errorf("replica %d after retention: %d rows of 03-01 (want 0), %d of 03-02 (want some)", i+1, first, second)
		}
	}

	// A replica down: a current schema needs no DDL, so a process starts
	// through the other replica; a new migration fails in bounded time
	// naming the replica that did not run it.
	c.Kill(0)
	if applied, err := chstore.MigrateFor(ctx, conn2, cfg, withRerun); err != nil || len(applied) != 0 {
		t.Errorf("MigrateFor through replica 2 with replica 1 down = %v, %v; want nothing to apply and no error", applied, err)
	}
	defer chstore.SetClusterDDLTimeout(2 * time.Second)()
	extra := withRerun
	extra["9999_extra.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS extra (id String) ENGINE = MergeTree() ORDER BY id")}
	began = time.Now()
	_, err = chstore.MigrateFor(ctx, conn2, cfg, extra)
	if err == nil || !strings.Contains(err.Error(), "unfinished hosts") {
		t.Errorf("a new migration with replica 1 down: err = %v, want ClickHouse's unfinished hosts error", err)
	}
	t.Logf("a new migration with replica 1 down failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
}

// migrationFiles copies the embedded migrations into a map a test can add to.
func migrationFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	names, err := fsGlob()
	if err != nil {
		t.Fatal(err)
	}
	files := fstest.MapFS{}
	for _, name := range names {
		data, err := fs.ReadFile(schemas.Migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = &fstest.MapFile{Data: data}
	}
	return files
}

func fsGlob() ([]string, error) {
	names, err := fs.Glob(schemas.Migrations, "*.sql")
	slices.Sort(names)
	return names, err
}

func tableEngines(t *testing.T, conn driver.Conn, database string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name, engine FROM system.tables WHERE database = ?", database)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	engines := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		engines[name] = engine
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return engines
}

// syncReplicas waits until the replica conn is connected to has fetched
// every part its tables' replication logs name (SYSTEM SYNC REPLICA).
func syncReplicas(t *testing.T, conn driver.Conn, database string) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, "SELECT table FROM system.replicas WHERE database = ?", database)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, table)
	}
	rows.Close()
	for _, table := range tables {
		if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+database+"."+table); err != nil {
			t.Fatalf("SYSTEM SYNC REPLICA %s.%s: %v", database, table, err)
		}
	}
}
