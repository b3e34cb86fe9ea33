-- suppression_removed: one row per suppression entry that ended (mailmon.suppression.v1.removed).
-- One row per event; a re-delivered copy has the same id and is merged away
-- (ReplacingMergeTree): query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS suppression_removed
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
    cause LowCardinality(String),
    reason LowCardinality(String),
    added_id String,
    held_ms Int64,
    source_event_ids Array(String),
    operator String,
    note String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (customer, time, id)
