-- probe_late: One row per probe found after it was declared missing (mailmon.probe.v1.late).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS probe_late
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
    protocol LowCardinality(String),
    placement LowCardinality(String),
    folder LowCardinality(String),
    message_id String,
    sent_at DateTime('UTC'),
    arrived_at DateTime('UTC'),
    latency_ms Int64,
    deadline_ms Int64,
    late_by_ms Int64,
    missing_event_id String,
    spf LowCardinality(String),
    dkim LowCardinality(String),
    dmarc LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, time, id)
