-- bounce_received: One row per failed recipient in an asynchronous bounce (mailmon.bounce.v1.received).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS bounce_received
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    tracking_id String,
    customer LowCardinality(String),
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    recipient_domain LowCardinality(String),
    probe_id String,
    trace_method LowCardinality(String),
    received_via LowCardinality(String),
    format LowCardinality(String),
    recipient String,
    orig_recipient String,
    action LowCardinality(String),
    status LowCardinality(String),
    reply_code UInt16,
    remote_mta LowCardinality(String),
    reporting_mta LowCardinality(String),
    diagnostic String,
    reason LowCardinality(String),
    category LowCardinality(String),
    signature LowCardinality(String),
    arrival_date DateTime('UTC'),
    last_attempt_date DateTime('UTC'),
    original_message_id String,
    original_sender String,
    bounce_message_id String,
    headers_excerpt String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, customer, time, id)
