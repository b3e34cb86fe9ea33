-- probe_sent: One row per probe submission (mailmon.probe.v1.sent), accepted or not.
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS probe_sent
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    probe_id String,
    tracking_id String,
    source_ip LowCardinality(String),
    provider LowCardinality(String),
    recipient_domain LowCardinality(String),
    route LowCardinality(String),
    submission LowCardinality(String),
    relay LowCardinality(String),
    helo_name LowCardinality(String),
    target LowCardinality(String),
    seed_address String,
    variant LowCardinality(String),
    message_id String,
    size_bytes UInt32,
    dkim_domain LowCardinality(String),
    dkim_selector LowCardinality(String),
    tls_version LowCardinality(String),
    tls_cipher LowCardinality(String),
    auth_mechanism LowCardinality(String),
    outcome LowCardinality(String),
    failed_phase LowCardinality(String),
    reply_code UInt16,
    enhanced_status LowCardinality(String),
    reply_text String,
    queue_id String,
    reason LowCardinality(String),
    category LowCardinality(String),
    error String,
    connect_ms Int32,
    banner_ms Int32,
    ehlo_ms Int32,
    starttls_ms Int32,
    auth_ms Int32,
    mail_ms Int32,
    rcpt_ms Int32,
    data_ms Int32,
    total_ms Int32
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, time, id)
