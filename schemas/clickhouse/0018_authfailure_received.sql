-- authfailure_received: One row per authentication-failure report (mailmon.authfailure.v1.received); never complaints.
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS authfailure_received
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
    trace_method LowCardinality(String),
    format LowCardinality(String),
    received_via LowCardinality(String),
    auth_failure LowCardinality(String),
    delivery_result LowCardinality(String),
    dkim_domain LowCardinality(String),
    dkim_identity String,
    dkim_selector LowCardinality(String),
    identity_alignment LowCardinality(String),
    authentication_results String,
    user_agent LowCardinality(String),
    reporting_mta LowCardinality(String),
    report_message_id String,
    reported_source_ip LowCardinality(String),
    original_mail_from String,
    arrival_date DateTime('UTC'),
    reported_domains Array(String),
    incidents UInt32,
    original_message_id String,
    original_from String,
    original_subject String,
    headers_excerpt String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, customer, time, id)
