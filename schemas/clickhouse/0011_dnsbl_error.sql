-- dnsbl_error: One row per blocklist check that could not be trusted (mailmon.dnsbl.v1.error).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS dnsbl_error
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    target String,
    target_kind LowCardinality(String),
    source_ip LowCardinality(String),
    zone LowCardinality(String),
    list LowCardinality(String),
    cause LowCardinality(String),
    answer_code LowCardinality(String),
    meaning String,
    rcode LowCardinality(String),
    error String,
    query_name String,
    sweep_id String,
    resolver LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (zone, target, time, id)
