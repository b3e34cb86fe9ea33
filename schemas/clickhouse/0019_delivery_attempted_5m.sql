-- delivery_attempted_5m: dashboard rollup of delivery_attempted per 5 minutes x provider x
-- source_ip x customer x status x category, fed by delivery_attempted_5m_mv.
-- attempts holds the distinct event ids, not a row count: a redelivered event inserted twice
-- before the raw table merges it away still counts once. Read it with uniqExactMerge(attempts)
-- and GROUP BY (rows of one group are merged only eventually).
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS delivery_attempted_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    customer LowCardinality(String),
    status LowCardinality(String),
    category LowCardinality(String),
    attempts AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, customer, bucket, status, category)
