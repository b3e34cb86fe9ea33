-- probe_missing: One row per probe not found by its deadline (mailmon.probe.v1.missing).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS probe_missing
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    probe_id String,
    tracking_id String,
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    recipient_domain LowCardinality(String),
    route LowCardinality(String),
    target LowCardinality(String),
    seed_address String,
    variant LowCardinality(String),
    account LowCardinality(String),
    message_id String,
    sent_at DateTime('UTC'),
    deadline_ms Int64,
    waited_ms Int64,
    folders_checked Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, time, id)
