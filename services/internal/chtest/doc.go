// Package chtest gives tests a real ClickHouse server: Debian's
// clickhouse-server started by chstore.LocalServer in a temporary folder on
// free loopback ports, never a mock. A machine without clickhouse-server
// fails these tests with the install hint; they are never skipped, because
// a skipped storage test would let a broken schema pass CI.
//
// One server per test:
//
//	func TestSomething(t *testing.T) {
//		srv, conn := chtest.Start(t) // stopped in t.Cleanup
//		...
//	}
//
// A server starts in well under a second, but a package with many such
// tests can share one and give each test its own database instead:
//
//	var server *chstore.LocalServer
//
//	func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }
//
//	func TestSomething(t *testing.T) {
//		conn, database := chtest.NewDatabase(t, server) // dropped in t.Cleanup
//		...
//	}
//
// A replicated cluster (ZooKeeper, then two replicas of one shard whose
// remote_servers name ClusterName) for the cluster form of the schema and
// failure tests:
//
//	c := chtest.StartCluster(t)     // skipped without ZooKeeper, failed under CI
//	cfg := c.Config("db")           // cluster and addrs set, replica 1 first
//	conn2 := c.Open(1, "db")        // replica 2 alone
//	c.Kill(0); c.Restart(0)         // SIGKILL replica 1, start it again
//
// ZooKeeper comes from Debian's zookeeper package (`go tool task deps`);
// it starts in about 0.3 s, the replicas in about 0.2 s.
//
// Set CHTEST_CLICKHOUSE_SERVER to run another server binary (for example
// a current `clickhouse` build) against the same tests.
package chtest
