// Package pipelines declares mailmon's JetStream topology as data
// (topology.yaml): the streams that hold each event domain, the durable
// consumers that workers read through, and the KV buckets that hold shared
// state. Apply creates or updates all of them; it runs at worker start and
// from `mailmon pipelines apply`, and nothing else creates streams.
//
// Streams keep messages by limits (age and bytes) rather than by interest,
// so a consumer that is down for a while catches up, and a new consumer can
// replay history. Each stream has a duplicate window: publishers set the
// event id as the message id, so a republished event inside the window is
// dropped by the server. Consumers outside the window are protected by
// deduplication on the event id at the side effect (ClickHouse tables merge
// duplicates; evaluators keep seen ids).
//
// Who may use which of them is data too (access.yaml): one NATS user per
// worker, limited to the subjects it publishes, its own durables, the
// streams it rebuilds from and the buckets it reads or writes; a read-only
// subscriber; an admin. Grants turns that into NATS permissions for the
// embedded server of `mailmon run` and for the cluster example's
// accounts.conf (WriteNATSConf), so the two never disagree.
package pipelines
