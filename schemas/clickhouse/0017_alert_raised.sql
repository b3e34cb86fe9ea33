-- alert_raised: One row per alert raised or resolved (mailmon.alert.v1.raised).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS alert_raised
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    rule LowCardinality(String),
    status LowCardinality(String),
    severity LowCardinality(String),
    subject LowCardinality(String),
    summary String,
    dedupe_key String,
    customer LowCardinality(String),
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    recipient_domain LowCardinality(String),
    probe_id String,
    decision_id String,
    event_ids Array(String),
    evidence_names Array(String),
    evidence_values Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (rule, subject, time, id)
