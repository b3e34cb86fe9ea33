-- probe_missing_1h: probe_missing_5m by the hour, fed by probe_missing_1h_mv: the same columns and states, one
-- row per hour instead of twelve, for ranges of days (the console's 7- and 30-day views, the
-- weekly report, Grafana over days), where merging 5-minute rows costs seconds.
-- Counts are row counts (countState), read with countMerge and GROUP BY; see "Dashboard
-- rollups" in schemas/README.md. Partitioned by day like the raw tables.
CREATE TABLE IF NOT EXISTS probe_missing_1h
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    source_ip LowCardinality(String),
    missing AggregateFunction(count)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, source_ip, bucket)
