package chtest_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/mailmon/mailmon/services/internal/chtest"
)

// StartCluster gives two replicas that know each other as one shard of
// ClusterName, each with its own replica macro and a working ZooKeeper,
// and stops all three processes (replicas and ZooKeeper) in cleanup.
func TestStartClusterStopsEverythingInCleanup(t *testing.T) {
	var pids []int
	t.Run("uses a cluster", func(t *testing.T) {
		c := chtest.StartCluster(t)
		ctx := context.Background()
		for i := range 2 {
			conn := c.Open(i, "default")
			var replica string
			if err := conn.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&replica); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("r%d", i+1); replica != want {
				t.Errorf("replica %d has the macro replica=%q, want %q", i+1, replica, want)
			}
			var hosts uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", chtest.ClusterName).Scan(&hosts); err != nil {
				t.Fatal(err)
			}
			if hosts != 2 {
				t.Errorf("replica %d lists %d hosts in cluster %s, want 2", i+1, hosts, chtest.ClusterName)
			}
			var zk uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&zk); err != nil {
				t.Fatalf("replica %d cannot read ZooKeeper: %v", i+1, err)
			}
			pids = append(pids, c.Replica(i).PID())
		}
		pids = append(pids, c.ZooKeeper().PID())
		if got := c.Config("db").Addrs; len(got) != 2 || got[0] != c.Addrs()[0] {
			t.Errorf("Config addrs %v, want replica 1 first of %v", got, c.Addrs())
		}
	})
	if len(pids) != 3 {
		t.Fatalf("%d processes seen, want 2 replicas and ZooKeeper", len(pids))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after the test's cleanup (kill -0: %v)", pid, err)
		}
	}
}
