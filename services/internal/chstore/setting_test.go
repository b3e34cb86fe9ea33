package chstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// An Int64 setting sent with int64Setting arrives as the value meant, on
// the server under test (18.16 reads these as zigzag varints).
func TestInt64SettingArrivesAsSent(t *testing.T) {
	ctx := context.Background()
	srv, err := StartLocal(ctx, LocalServerConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := DefaultConfig()
	cfg.Addr = srv.Addr()
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, n := range []int{1, 20, 180} {
		c := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": int64Setting(conn, n)}))
		var got string
		if err := conn.QueryRow(c, "SELECT value FROM system.settings WHERE name = 'distributed_ddl_task_timeout'").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != fmt.Sprint(n) {
			t.Errorf("sent %d, the server has %s", n, got)
		}
	}
}
