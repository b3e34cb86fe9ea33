-- tlsrpt_result_1d: dashboard rollup of SMTP TLS reports per day x receiving (policy) domain x
-- reporting organisation x policy type, fed by tlsrpt_result_1d_mv: TLS failures per receiving
-- domain. The session columns are sums of the reports' success and failure counts (sumState,
-- read with sumMerge); results is the row count, one per report policy (countState, read with
-- countMerge). Read with GROUP BY. A report stored twice is summed twice here, as in
-- dmarc_record_1d; see "Dashboard rollups" in schemas/README.md.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS tlsrpt_result_1d
(
    bucket DateTime('UTC'),
    policy_domain LowCardinality(String),
    organization LowCardinality(String),
    policy_type LowCardinality(String),
    results AggregateFunction(count),
    successful_sessions AggregateFunction(sum, UInt64),
    failed_sessions AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (policy_domain, bucket, organization, policy_type)
