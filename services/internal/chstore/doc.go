// Package chstore is mailmon's plumbing for ClickHouse, where every event
// lands for delivery and complaint analytics: the connection, the schema
// migrations, retention, and a local server for a single machine.
//
// mailmon has to run on two very different servers. CI and the local
// default use Debian's clickhouse-server package, version 18.16 (2018);
// production runs current ClickHouse. Everything here works on both, which
// means avoiding what 18.16 gets wrong with a current clickhouse-go:
//
//   - Only the native protocol works (the HTTP handshake sends a setting
//     18.16 does not know), so Open dials native, with LZ4.
//   - A batch INSERT must name its columns, and INSERT ... VALUES with the
//     data inline in the query hangs until the read timeout. Writes go
//     through PrepareBatch with a column list; Migrate refuses inline
//     INSERTs; the read timeout defaults to 30 s instead of 300 s so a
//     statement the server cannot handle fails soon.
//   - Per-query settings must be Go ints, and an Int64 setting is read as a
//     zigzag varint (int64Setting sends it so it arrives as meant).
//     LowCardinality is experimental on 18.16, so Migrate turns it on (as
//     an int) for servers before 19.
//   - No TTL: retention drops day partitions (DropExpiredPartitions), which
//     works everywhere. SupportsTTL tells a caller when a server is new
//     enough to add TTL as well.
//
// Migrations are plain *.sql files applied in name order, each once, and
// recorded with their checksum in schema_migrations. An applied file is
// never edited: a changed checksum stops Migrate before it applies
// anything, so the schema in the binary and in the database cannot drift
// apart silently. Statements end with a semicolon outside quotes and
// comments; each should be idempotent (CREATE ... IF NOT EXISTS), because a
// file that failed half way runs again from its start and two processes
// starting together may both run it.
//
// A cluster (clickhouse.cluster, the replicas in clickhouse.addrs) uses the
// same files rewritten mechanically before they run: each table becomes a
// replicated X_local created ON CLUSTER with a Distributed table X over it,
// each view reads and writes the local tables, ALTER and DROP run ON
// CLUSTER (cluster.go). Readers keep querying X; the sink writes X_local.
// The record of applied files is replicated too, so a process that
// connects to another replica finds the schema current. Connections try
// the replicas in addrs in order, so one that is down is skipped.
//
// LocalServer runs clickhouse-server as a plain child process with the
// project's own minimal config, on 127.0.0.1 only, with config, data and
// logs in one folder. `mailmon run` uses it when clickhouse.local.enabled is
// set (keeping ./var/clickhouse between runs); tests use it through
// package chtest. It is stopped by its own pid: SIGTERM, then SIGKILL after
// a bound.
package chstore
