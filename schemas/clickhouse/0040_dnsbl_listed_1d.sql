-- dnsbl_listed_1d: dashboard rollup of listings (transitions to listed) per day x zone x target, with the latest one's time,
-- fed by dnsbl_listed_1d_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS dnsbl_listed_1d
(
    bucket DateTime('UTC'),
    zone LowCardinality(String),
    target String,
    target_kind LowCardinality(String),
    source_ip LowCardinality(String),
    listings AggregateFunction(count),
    last_listed AggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (zone, target, bucket, target_kind, source_ip)
