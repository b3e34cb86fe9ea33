-- probe_received_1h: probe_received_5m by the hour, fed by probe_received_1h_mv: the same columns and states, one
-- row per hour instead of twelve, for ranges of days (the console's 7- and 30-day views, the
-- weekly report, Grafana over days), where merging 5-minute rows costs seconds.
-- Counts are row counts (countState), read with countMerge and GROUP BY; see "Dashboard
-- rollups" in schemas/README.md. Partitioned by day like the raw tables.
CREATE TABLE IF NOT EXISTS probe_received_1h
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
