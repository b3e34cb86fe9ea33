// Package clickhousesink is the clickhouse-sink worker: it stores every
// mailmon event in ClickHouse, one typed table per event kind, for the
// delivery and complaint analytics ops run from dashboards.
//
// # Delivery guarantee
//
// The sink is at-least-once into tables that deduplicate, which together
// give exactly one row per event id to queries that use FINAL (or count
// distinct ids):
//
//   - It reads each event stream through its durable pull consumer
//     `clickhouse-sink` (declared in pipelines/), one pull loop per stream
//     feeding a pool of decoders (one per CPU by default; the kind comes
//     from the subject), and acknowledges a message only after the batch holding it was
//     confirmed by ClickHouse (Send returned nil).
//   - While it holds messages longer than a third of the consumer's
//     AckWait (ClickHouse down or slow), it sends InProgress for them, so
//     JetStream does not redeliver them.
//   - Its consumers have no delivery limit (max_deliver -1; Run refuses a
//     limited one). JetStream counts every nak at shutdown and every
//     AckWait expiry as a delivery, so a limit would drop a message that
//     was never wrong with neither a row nor a dead letter, and nothing
//     would notice. The only ways out are an Ack after the insert and a
//     Term after the dead letter is stored.
//   - After a crash, or an ack lost on the way, JetStream redelivers and
//     the same rows are inserted again. Every table is a ReplacingMergeTree
//     whose sorting key ends in the event id and whose other key columns
//     come from the event, so the copies merge away. The sink does not try
//     to deduplicate itself: that would need state surviving the crash.
//
// # Batching and memory
//
// Decoded events go to a batcher per table, which inserts when it holds
// batch_rows rows or its oldest row waited batch_age (5 s: every insert is
// a new part ClickHouse must write and merge, so few large ones are
// cheaper), or, holding a tenth of batch_rows or more, once nothing new
// arrived for 100 ms. Up to two inserts per table run at a time, while
// the next batch fills. A failed insert is retried,
// the same rows, with capped exponential backoff. The sink holds at most
// max_pending messages unacknowledged; at the cap it stops pulling, so an
// outage costs bounded memory and the backlog stays in JetStream. A pull
// loop waiting on an idle stream holds room for one message only, so quiet
// streams never starve a busy one of that room.
//
// # Bad input
//
// A message that is not a known event (schemas.Decode) or breaks the
// contract (schemas.Validate), or whose row the ClickHouse driver refuses,
// is copied to mailmon.dlq.clickhouse-sink with the reason in the
// Mailmon-Dead-Letter-Reason header and terminated. It is counted and
// never holds up the rest of its batch.
//
// A row the server refuses is found by the sink's own count: errors that
// say nothing about the rows (connection, timeout, overload, full disk,
// missing table) are retried until they pass; a batch the server refuses
// reject_after times is split in halves stored on their own, so a row it
// can never take ends alone and is dead-lettered, reason "rejected", while
// the others are stored. If the dead letter itself cannot be stored it is
// retried in place, the message kept alive, and handed back only at
// shutdown.
//
// # Retention
//
// Day partitions older than clickhouse.retention_days are dropped at start
// and every retention_interval, from the event tables and the dashboard
// rollups (schemas.Rollups) alike, which works on every server version. On
// servers that support TTL (ClickHouse 19.6+) a table TTL is also set once
// at start; Debian's 18.16 has none.
package clickhousesink
