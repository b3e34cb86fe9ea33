// Package schemas is mailmon's public event contract: every event that
// workers publish on NATS and that lands in ClickHouse is defined here, once.
//
// # The contract
//
// An event is a flat JSON object. Every event starts with the Header (id,
// type, time, source) and carries the correlation keys that apply to it,
// always under the same names: probe_id, tracking_id, customer, source_ip,
// provider, recipient_domain. Each event type is a Kind with four faces that
// must agree, and a test (contract_test.go) proves they do:
//
//   - a Go struct, the source of truth (probe.go, delivery.go, fbl.go,
//     dnsbl.go, decision.go, alert.go), registered in kinds.go;
//   - a versioned type string, mailmon.<domain>.v<N>.<event>, and a NATS
//     subject, mailmon.<domain>.<event> (no version, so v1 and v2 can share
//     a stream during a migration);
//   - a JSON Schema (draft 2020-12) at jsonschema/v<N>/<type>.json for
//     subscribers not written in Go, generated from the struct and its doc
//     comments, with an example at testdata/events/<type>.json;
//   - a ClickHouse table, <domain>_<event>, whose columns are Columns(kind)
//     and whose DDL is an embedded migration in clickhouse/.
//
// Go field types stay portable: string, bool, fixed-width integers, float64,
// time.Time and slices of those. No maps, pointers or nested structs (Source
// is the one exception; it becomes the columns source_worker and
// source_host). Fields that several kinds share with the same meaning live
// in a field group (DecisionTarget, ProbeRoute, OutgoingMessage, ...) that
// the kinds embed, as they embed Header: its fields are flattened into the
// event exactly where it is embedded, in JSON, schema and columns alike, so
// a group never changes the wire format. The zero value means "unknown" or "not applicable", and an
// optional field is omitted from the JSON. Where zero is a real value the
// field documents a sentinel: a *_ms duration of -1 (NoDuration) means the
// step did not happen. A list of records is a group of parallel arrays with
// a shared prefix and a parallel:"<group>" tag (finding_checks,
// finding_severities, finding_messages), which maps onto Array columns on
// every ClickHouse version. Closed vocabularies carry an enum:"a,b" tag,
// which the schema and Validate enforce, and exported constants; open ones
// (bounce reasons, blocklist causes) are documented strings.
//
// Producers fill the Header with Stamp and check an event with Validate
// before publishing; the event id doubles as the NATS message id, so
// JetStream drops a republished copy. Consumers parse with Decode, which
// rejects unknown fields. The ClickHouse sink inserts with
// PrepareBatch(InsertQuery(kind)) and Append(Row(ev)...); each table is a
// ReplacingMergeTree ordered by a key that ends in the id, so a duplicate
// that slipped past JetStream merges away.
//
// # Adding an event type
//
//  1. Add the type and subject constants to kinds.go and the struct (with
//     a doc comment on the type and on every field) next to its relatives.
//  2. Register it at the end of init() in kinds.go.
//  3. Run go test ./schemas -run TestGenerate -update. It writes the JSON
//     Schema, the README table and a draft migration NNNN_<table>.sql.
//     Review the draft's ORDER BY (dashboard dimensions, then time, then
//     id) and its comment.
//  4. Write a realistic example at testdata/events/<type>.json.
//  5. Route the subject in pipelines/ and the table in the sink.
//
// Until all of this exists, go test ./schemas fails.
//
// # Versioning
//
// Within a version, changes are additive only:
//
//   - A new field is optional (omitempty or omitzero), so old producers
//     stay valid, and gets a migration ALTER TABLE <t> ADD COLUMN <c> <T>
//     AFTER <previous>; released migrations are never edited, because a
//     server that applied one will not apply it again.
//   - Schemas forbid unknown properties and Decode rejects unknown fields,
//     so deploy consumers (sink, evaluator, notifier) before the producers
//     that start sending the field.
//   - A new enum value is a new field value: the same readers-first rule
//     applies.
//
// Removing or renaming a field, changing its type, unit or meaning, or
// making it required is a breaking change: it needs a new type string
// (mailmon.<domain>.v2.<event>), a new Go type, a new schema under
// jsonschema/v2/ and a new table (<domain>_<event>_v2). Both versions are
// published side by side on the same subject until every consumer reads v2.
//
// # Storage notes
//
// ClickHouse stores time.Time as DateTime('UTC'), whole seconds, because
// ClickHouse 18.16 has no DateTime64; the UUIDv7 id orders events within a
// second. A zero time is stored as 1970-01-01 00:00:00 and means unknown.
// The migrations avoid what 18.16 lacks (IPv4/IPv6, Map, Bool, TTL, skip
// indexes); IPs are strings, and LowCardinality columns need
// allow_experimental_low_cardinality_type=1 when the tables are created
// there.
package schemas
