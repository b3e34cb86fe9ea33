-- decision_release: One row per decision that expired (mailmon.decision.v1.release).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS decision_release
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    decision_id String,
    action LowCardinality(String),
    scope LowCardinality(String),
    subject LowCardinality(String),
    customer LowCardinality(String),
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    rule LowCardinality(String),
    offence UInt16,
    decided_at DateTime('UTC'),
    held_ms Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (scope, subject, time, id)
