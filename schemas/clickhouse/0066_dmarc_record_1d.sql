-- dmarc_record_1d: dashboard rollup of DMARC aggregate reports per day x domain x source IP x reporter,
-- fed by dmarc_record_1d_mv: the DMARC pass rate per domain, source IP and reporter, and the
-- sources that are not ours (our_source = 0) sending as our domains, with their volumes.
-- A report row stands for count messages, so the message columns are sums of count
-- (sumState, read with sumMerge); records is the row count (countState, read with countMerge).
-- Read with GROUP BY (rows of one group are merged only eventually). A report stored twice
-- (a batch the sink inserts again, or a copy mailed after the DMARC stream's one-day duplicate
-- window) is summed twice here; see "Dashboard rollups" in schemas/README.md.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS dmarc_record_1d
(
    bucket DateTime('UTC'),
    domain LowCardinality(String),
    our_source UInt8,
    source_ip LowCardinality(String),
    org_name LowCardinality(String),
    customer LowCardinality(String),
    records AggregateFunction(count),
    messages AggregateFunction(sum, UInt64),
    messages_dmarc_pass AggregateFunction(sum, UInt64),
    messages_dkim_pass AggregateFunction(sum, UInt64),
    messages_spf_pass AggregateFunction(sum, UInt64),
    messages_quarantined AggregateFunction(sum, UInt64),
    messages_rejected AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (domain, bucket, our_source, source_ip, org_name, customer)
