-- dnsbl_checked: One row per blocklist sweep with per-zone counts in parallel arrays (mailmon.dnsbl.v1.checked).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS dnsbl_checked
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    sweep_id String,
    resolver LowCardinality(String),
    started_at DateTime('UTC'),
    duration_ms Int64,
    targets UInt32,
    queries UInt32,
    listed UInt32,
    newly_listed UInt32,
    delisted UInt32,
    errors UInt32,
    zone_names Array(String),
    zone_states Array(String),
    zone_listed Array(UInt32),
    zone_errors Array(UInt32),
    zone_queries Array(UInt32)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, id)
