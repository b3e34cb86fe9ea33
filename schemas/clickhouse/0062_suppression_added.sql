-- suppression_added: one row per entry put on a suppression list (mailmon.suppression.v1.added).
-- One row per event; a re-delivered copy has the same id and is merged away
-- (ReplacingMergeTree): query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS suppression_added
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    key String,
    scope LowCardinality(String),
    customer LowCardinality(String),
    recipient String,
    recipient_hash String,
    recipient_domain LowCardinality(String),
    reason LowCardinality(String),
    bounce_reason LowCardinality(String),
    bounce_category LowCardinality(String),
    status LowCardinality(String),
    reply String,
    source_event_ids Array(String),
    expires DateTime('UTC'),
    operator String,
    note String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (customer, time, id)
