-- delivery_attempted: One row per recipient delivery attempt from the MTA log (mailmon.delivery.v1.attempted); the denominator of complaint rates.
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS delivery_attempted
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
    tracking_status LowCardinality(String),
    mta LowCardinality(String),
    mta_host LowCardinality(String),
    mta_instance LowCardinality(String),
    agent LowCardinality(String),
    queue_id String,
    message_id String,
    sender String,
    recipient String,
    orig_recipient String,
    size_bytes UInt32,
    nrcpt UInt32,
    client_host LowCardinality(String),
    client_ip LowCardinality(String),
    sasl_username LowCardinality(String),
    status LowCardinality(String),
    dsn LowCardinality(String),
    reply_code UInt16,
    reply String,
    reason LowCardinality(String),
    category LowCardinality(String),
    signature LowCardinality(String),
    relay_host LowCardinality(String),
    relay_ip LowCardinality(String),
    relay_port UInt16,
    conn_use UInt32,
    delay_ms Int64,
    delay_before_qmgr_ms Int64,
    delay_in_qmgr_ms Int64,
    delay_conn_setup_ms Int64,
    delay_transmission_ms Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, customer, time, id)
