// Package clickhouse holds the ClickHouse 18.16 configuration of a
// two-replica mailmon cluster, as files to install under
// /etc/clickhouse-server on each replica (and the ZooKeeper nodes' zoo.cfg),
// and serves them to tests, which start real servers from them.
//
//   - config.d/mailmon-cluster.xml, the same on both replicas: listen
//     addresses, the "mailmon" cluster of remote_servers (one shard, two
//     replicas, internal_replication), the ZooKeeper nodes and the
//     distributed DDL queue that ON CLUSTER statements use.
//   - clickhouse-N/config.d/mailmon-replica.xml, one per replica: its
//     interserver host name and its macros ({shard} 01, {replica}
//     clickhouse-N), which replicated tables' ZooKeeper paths use.
//   - users.d/mailmon-users.xml: the mailmon user (password as SHA-256,
//     from the mailmon hosts' network only) and Debian's passwordless
//     default user confined to the replicas themselves.
//   - zookeeper/zoo.cfg: a three-node ZooKeeper ensemble.
//
// deploy/README.md tells how to install them, in which order to start
// things and how to add a replica.
package clickhouse

import (
	"embed"
	"io/fs"
)

//go:embed config.d users.d clickhouse-1 clickhouse-2 zookeeper
var files embed.FS

// FS holds the files by their paths in this folder.
func FS() fs.FS { return files }
