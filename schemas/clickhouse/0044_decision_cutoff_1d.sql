-- decision_cutoff_1d: dashboard rollup of cut-off decisions per day x scope x subject, with the highest rate and latest expiry,
-- fed by decision_cutoff_1d_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS decision_cutoff_1d
(
    bucket DateTime('UTC'),
    scope LowCardinality(String),
    subject LowCardinality(String),
    customer LowCardinality(String),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    decisions AggregateFunction(count),
    max_rate AggregateFunction(max, Float64),
    last_until AggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (scope, subject, bucket, customer, provider, source_ip)
