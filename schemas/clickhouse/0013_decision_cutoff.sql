-- decision_cutoff: One row per cut-off decision with its evidence (mailmon.decision.v1.cutoff).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS decision_cutoff
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    scope LowCardinality(String),
    subject LowCardinality(String),
    customer LowCardinality(String),
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    rule LowCardinality(String),
    offence UInt16,
    until DateTime('UTC'),
    duration_ms Int64,
    policy_action LowCardinality(String),
    policy_text String,
    window_ms Int64,
    complaints UInt64,
    delivered UInt64,
    rate Float64,
    threshold Float64,
    sample_complaint_ids Array(String),
    evidence_names Array(String),
    evidence_values Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (scope, subject, time, id)
