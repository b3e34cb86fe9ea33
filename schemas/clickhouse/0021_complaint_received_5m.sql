-- complaint_received_5m: dashboard rollup of complaints (complaint_received rows with
-- counted = 1) per 5 minutes x provider x source_ip x customer x feedback_type, fed by
-- complaint_received_5m_mv.
-- complaints holds the distinct event ids, not a row count: a redelivered report inserted
-- twice before the raw table merges it away still counts once. Read it with
-- uniqExactMerge(complaints) and GROUP BY (rows of one group are merged only eventually).
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS complaint_received_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    customer LowCardinality(String),
    feedback_type LowCardinality(String),
    complaints AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, customer, bucket, feedback_type)
