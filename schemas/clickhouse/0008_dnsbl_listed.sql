-- dnsbl_listed: One row per new blocklist listing of one of our IPs or domains (mailmon.dnsbl.v1.listed).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS dnsbl_listed
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
    answer_codes Array(String),
    answer_meanings Array(String),
    txt String,
    delist_url String,
    previous_state LowCardinality(String),
    sweep_id String,
    resolver LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (zone, target, time, id)
