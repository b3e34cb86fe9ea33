-- probe_received: One row per probe found in a seed mailbox in time (mailmon.probe.v1.received): placement, latency, auth verdicts.
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS probe_received
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
    target LowCardinality(String),
    seed_address String,
    variant LowCardinality(String),
    account LowCardinality(String),
    protocol LowCardinality(String),
    placement LowCardinality(String),
    folder LowCardinality(String),
    message_id String,
    sent_at DateTime('UTC'),
    arrived_at DateTime('UTC'),
    arrival_source LowCardinality(String),
    latency_ms Int64,
    detection_ms Int64,
    received_hops UInt16,
    spf LowCardinality(String),
    dkim LowCardinality(String),
    dmarc LowCardinality(String),
    dmarc_policy LowCardinality(String),
    arc LowCardinality(String),
    compauth LowCardinality(String),
    compauth_reason LowCardinality(String),
    dkim_domains Array(String),
    authserv_id LowCardinality(String),
    authentication_results String,
    deleted UInt8
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, time, id)
