-- complaint_received: One row per feedback-loop report (mailmon.complaint.v1.received); only counted = 1 rows are complaints.
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS complaint_received
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
    trace_method LowCardinality(String),
    counted UInt8,
    format LowCardinality(String),
    received_via LowCardinality(String),
    feedback_type LowCardinality(String),
    user_agent LowCardinality(String),
    version LowCardinality(String),
    reporting_mta LowCardinality(String),
    report_message_id String,
    reported_source_ip LowCardinality(String),
    original_mail_from String,
    original_rcpt_to Array(String),
    arrival_date DateTime('UTC'),
    reported_domains Array(String),
    reported_uris Array(String),
    incidents UInt32,
    authentication_results String,
    auth_failure LowCardinality(String),
    original_message_id String,
    original_from String,
    original_subject String,
    dkim_domain LowCardinality(String),
    headers_excerpt String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (provider, source_ip, customer, time, id)
