package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// BenchmarkClusterInsert compares the two ways a sink can write to a
// cluster, 10,000-row batches from replica 1, until the rows are readable
// through the Distributed table on replica 2:
//   - local: into the replicated ev_local (what the sink does);
//   - distributed: into the Distributed ev, which queues the block on the
//     local disk and forwards it (insert_distributed_sync=0, the 18.16
//     default), so the insert returns before the rows are stored;
//   - distributed-sync: the same with insert_distributed_sync=1.
//
// go test -run '^$' -bench ClusterInsert -benchtime 20x ./services/internal/chstore
func BenchmarkClusterInsert(b *testing.B) {
	ctx := context.Background()
	c := chtest.StartCluster(b)
	const database = "bench_cluster"
	cfg := c.Config(database)
	conn1, conn2 := c.Open(0, database), c.Open(1, database)
	files := fstest.MapFS{"0001_ev.sql": {Data: []byte(`CREATE TABLE IF NOT EXISTS ev (
		id String, time DateTime('UTC'), provider LowCardinality(String), n UInt32
	) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMMDD(time) ORDER BY (provider, time, id)`)}}
	if _, err := chstore.MigrateFor(ctx, conn1, cfg, files); err != nil {
		b.Fatal(err)
	}
	const rows = 10_000
	batch := 0
	for _, mode := range []struct {
		name, table string
		sync        int
	}{{"local", "ev_local", 0}, {"distributed", "ev", 0}, {"distributed-sync", "ev", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			insertCtx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": mode.sync}))
			var inserted, visible time.Duration
			for b.Loop() {
				batch++
				var before uint64
				if err := conn2.QueryRow(ctx, "SELECT count() FROM ev").Scan(&before); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				bt, err := conn1.PrepareBatch(insertCtx, "INSERT INTO "+mode.table+" (id, time, provider, n)")
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now().UTC()
				for i := range rows {
					if err := bt.Append(fmt.Sprintf("b%d-%d", batch, i), now, "gmail", uint32(i)); err != nil {
						b.Fatal(err)
					}
				}
				if err := bt.Send(); err != nil {
					b.Fatal(err)
				}
				inserted += time.Since(start)
				for {
					var n uint64
					if err := conn2.QueryRow(ctx, "SELECT count() FROM ev").Scan(&n); err != nil {
						b.Fatal(err)
					}
					if n >= before+rows {
						break
					}
					time.Sleep(2 * time.Millisecond)
				}
				visible += time.Since(start)
			}
			b.ReportMetric(float64(inserted.Milliseconds())/float64(b.N), "ms-insert/op")
			b.ReportMetric(float64(visible.Milliseconds())/float64(b.N), "ms-visible-on-r2/op")
			b.ReportMetric(float64(rows*b.N)/visible.Seconds(), "rows/s")
		})
	}
}
