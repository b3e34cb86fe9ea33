-- probe_sent_1d: probe_sent_5m by the UTC day, fed by probe_sent_1d_mv: the same columns and states,
-- for month-long views. Probes are one per source x provider x interval whatever the mail
-- volume, so even the hourly table holds hundreds of thousands of latency states a month;
-- loadtest console measured /probes over 30 days at 1.7 s p95 reading hours.
-- Counts are row counts (countState), read with countMerge and GROUP BY; see "Dashboard
-- rollups" in schemas/README.md. Partitioned by day like the raw tables.
CREATE TABLE IF NOT EXISTS probe_sent_1d
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
