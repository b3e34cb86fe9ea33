-- probe_sent_5m: dashboard rollup of probes sent per 5 minutes x provider x source_ip x outcome (sent, failed, ...),
-- fed by probe_sent_5m_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS probe_sent_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    outcome LowCardinality(String),
    sent AggregateFunction(count)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, bucket, outcome)
