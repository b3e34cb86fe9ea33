-- probe_received_5m: dashboard rollup of probes received per 5 minutes x provider x source_ip x placement, with the latency
-- quantile states (read quantilesMerge(0.5, 0.95)(latency_ms): [p50, p95] in ms),
-- fed by probe_received_5m_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS probe_received_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    placement LowCardinality(String),
    received AggregateFunction(count),
    latency_ms AggregateFunction(quantiles(0.5, 0.95), Int64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, bucket, placement)
