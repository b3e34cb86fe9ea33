package clickhousesink_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// TestClusterSinkSurvivesAReplica runs the sink against ZooKeeper and two
// ClickHouse replicas of one shard (clickhouse.cluster and addrs, replica
// 1 first):
//   - a batch retried, on the same replica or the other, is stored once
//     (replicated block deduplication);
//   - events the sink stores through replica 1 are read through the
//     Distributed tables on replica 2;
//   - with replica 1 SIGKILLed, the sink and a reader go on through
//     replica 2 (addrs failover), nothing lost or doubled;
//   - replica 1, restarted, catches up with what it missed.
func TestClusterSinkSurvivesAReplica(t *testing.T) {
	ctx := context.Background()
	c := chtest.StartCluster(t)
	_, _, js := natstest.Start(t)
	applyTopology(t, js, 0)
	const database = "sink_cluster"
	ch := c.Config(database)
	ch.ReadTimeout = chConfig("", "").ReadTimeout

	// The migrations first, so the sink starts on a current schema.
	conn1 := c.Open(0, database)
	began := time.Now()
	if _, err := chstore.MigrateFor(ctx, conn1, ch, schemas.Migrations); err != nil {
		t.Fatal(err)
	}
	t.Logf("migrations ON CLUSTER in %v", time.Since(began).Round(time.Millisecond))
	conn2 := c.Open(1, database)

	// A retried batch: the same rows twice through replica 1, then once
	// through replica 2 (a sink that failed over mid-retry).
	var kind schemas.Kind
	for _, k := range schemas.Kinds() {
		if k.Table == "probe_sent" { // counted by three rollups
			kind = k
		}
	}
	var retried []schemas.Event
	for _, ev := range makeEvents(t, 50*len(schemas.Kinds())) {
		if k, _ := schemas.KindOf(ev); k.Table == kind.Table {
			retried = append(retried, ev)
		}
	}
	for i, conn := range []driver.Conn{conn1, conn1, conn2} {
		if err := clickhousesink.InsertForTest(ctx, conn, ch, kind, retried); err != nil {
			t.Fatalf("insert %d of the same batch: %v", i+1, err)
		}
	}
	syncReplica(t, conn2, database, chstore.LocalTable(kind.Table))
	var raw uint64
	if err := conn2.QueryRow(ctx, "SELECT count() FROM "+chstore.LocalTable(kind.Table)).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != uint64(len(retried)) {
		t.Errorf("the same %d-row batch inserted 3 times (twice on replica 1, once on replica 2) left %d rows, want %d", len(retried), raw, len(retried))
	}
	// The views fired on each insert; the rollup blocks of the dropped
	// ones were the same blocks again, and were dropped too.
	checkSentRollups(t, conn2, database, uint64(len(retried)))

	sink := startSink(t, js, testConfig(), ch)
	const n = 500
	first := makeEvents(t, n)
	want := perTable(t, first)
	want[kind.Table] += uint64(len(retried))
	began = time.Now()
	publish(t, js, first)
	waitStored(t, conn2, want, 60*time.Second)
	t.Logf("%d events stored through replica 1, read through the Distributed tables on replica 2 after %v", n, time.Since(began).Round(time.Millisecond))

	// A reader with both replicas in addrs, its pool warm on replica 1.
	reader, err := chstore.Open(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := distinctIDs(ctx, reader, kind.Table); err != nil {
		t.Fatal(err)
	}

	c.Kill(0)
	killed := time.Now()
	second := makeEvents(t, n)
	publish(t, js, second)
	for table, count := range perTable(t, second) {
		want[table] += count
	}
	waitStored(t, conn2, want, 60*time.Second)
	t.Logf("replica 1 SIGKILLed: %d more events stored through replica 2 within %v", n, time.Since(killed).Round(time.Millisecond))

	failed := 0
	for {
		ids, err := distinctIDs(ctx, reader, kind.Table)
		if err == nil {
			if ids != want[kind.Table] {
				t.Errorf("the reader sees %d ids in %s through replica 2, want %d", ids, kind.Table, want[kind.Table])
			}
			break
		}
		failed++
		if failed == 5 {
			t.Fatalf("the reader failed %d times with replica 1 down: %v", failed, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the reader (addrs replica 1, replica 2) went on through replica 2 after %d failed queries", failed)

	// Restarted at once, replica 1 would wait ~10 s for its old ZooKeeper
	// session to end; once replica 2 sees it gone it rejoins at once.
	deadline := time.Now().Add(20 * time.Second)
	for activeReplicas(t, conn2, database) > 1 {
		if time.Now().After(deadline) {
			t.Fatal("replica 2 still counts replica 1 active 20 s after the kill")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Restart(0)
	restarted := time.Now()
	back := c.Open(0, database)
	local := map[string]uint64{}
	for table, count := range want {
		local[chstore.LocalTable(table)] = count
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		got := localCounts(t, back, local)
		if maps.Equal(got, local) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 1's local tables hold %v 30 s after its restart, want %v", got, local)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("replica 1 restarted and caught up in %v", time.Since(restarted).Round(time.Millisecond))
	// Replica 1 fetched the rollup parts replica 2 made while it was down;
	// fetching fires no view, so its rollups count each row once.
	checkSentRollups(t, back, database, want[kind.Table])

	assertDrained(t, js)
	if err := sink.stop(); err != nil {
		t.Errorf("Run returned %v on a clean shutdown, want nil", err)
	}
}

// checkSentRollups waits for the replica's probe_sent rollups to be
// current and checks each counts want rows.
func checkSentRollups(t *testing.T, conn driver.Conn, database string, want uint64) {
	t.Helper()
	for _, rollup := range []string{"probe_sent_5m", "probe_sent_1h", "probe_sent_1d"} {
		syncReplica(t, conn, database, chstore.LocalTable(rollup))
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT countMerge(sent) FROM "+rollup).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s counts %d sent probes, want %d (the raw table's rows)", rollup, n, want)
		}
	}
}

func distinctIDs(ctx context.Context, conn driver.Conn, table string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT uniqExact(id) FROM "+table).Scan(&n)
	return n, err
}

func syncReplica(t *testing.T, conn driver.Conn, database, table string) {
	t.Helper()
	if err := conn.Exec(context.Background(), "SYSTEM SYNC REPLICA "+database+"."+table); err != nil {
		t.Fatal(err)
	}
}

func activeReplicas(t *testing.T, conn driver.Conn, database string) uint8 {
	t.Helper()
	var n uint8
	if err := conn.QueryRow(context.Background(), "SELECT max(active_replicas) FROM system.replicas WHERE database = ?", database).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// localCounts reads the distinct ids of each table in want on one
// replica's own tables.
func localCounts(t *testing.T, conn driver.Conn, want map[string]uint64) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for table := range want {
		n, err := distinctIDs(context.Background(), conn, table)
		if err != nil {
			return nil // the replica is still starting its tables
		}
		got[table] = n
	}
	return got
}
