-- delivery_status_5m: dashboard rollup of delivery attempts per 5 minutes x provider x source_ip x customer x status x category
-- (the classified reason), the console's and dashboards' delivery volumes and rates,
-- fed by delivery_status_5m_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS delivery_status_5m
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    customer LowCardinality(String),
    status LowCardinality(String),
    category LowCardinality(String),
    attempts AggregateFunction(count)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, bucket, customer, status, category)
