-- complaint_counted_5m: dashboard rollup of the complaints mailmon acts on (counted = 1 AND trusted = 1, as complaint_received_5m)
-- per 5 minutes x provider x source_ip x customer x feedback_type, as a row count,
-- fed by complaint_counted_5m_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS complaint_counted_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    customer LowCardinality(String),
    feedback_type LowCardinality(String),
    complaints AggregateFunction(count)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, bucket, customer, feedback_type)
