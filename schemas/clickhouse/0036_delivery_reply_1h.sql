-- delivery_reply_1h: dashboard rollup of attempts that did not deliver (deferred, bounced, ...) per hour x provider x customer x
-- recipient_domain x status x category x signature (the reply with its variable parts
-- removed), with one sample reply: the top remote replies and top rejecting domains,
-- fed by delivery_reply_1h_mv.
-- Counts are row counts (countState): read them with countMerge and GROUP BY (rows of one group
-- are merged only eventually). A batch the sink inserts again after a crash or a lost ack is
-- counted again here; see "Dashboard rollups" in schemas/README.md for why counts, not uniqExact.
-- Partitioned by day like the raw tables, so retention drops its day partitions too.
CREATE TABLE IF NOT EXISTS delivery_reply_1h
(
    bucket DateTime('UTC'),
    provider LowCardinality(String),
    customer LowCardinality(String),
    recipient_domain LowCardinality(String),
    status LowCardinality(String),
    category LowCardinality(String),
    signature LowCardinality(String),
    attempts AggregateFunction(count),
    sample_reply AggregateFunction(any, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (provider, customer, bucket, recipient_domain, status, category, signature)
