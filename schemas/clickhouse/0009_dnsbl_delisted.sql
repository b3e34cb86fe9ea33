-- dnsbl_delisted: One row per blocklist delisting (mailmon.dnsbl.v1.delisted).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS dnsbl_delisted
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
    weight Float64,
    query_name String,
    previous_answer_codes Array(String),
    listed_since DateTime('UTC'),
    listed_ms Int64,
    sweep_id String,
    resolver LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (zone, target, time, id)
