-- tlsrpt_result: one row per policy of an SMTP TLS report (mailmon.tlsrpt.v1.result): how many
-- sessions one sending organisation opened to the MX hosts of one receiving domain over the
-- report's period (time is the start of that period), and how many failed TLS and why.
-- The id derives from the organisation, the report id and the policy's position, so a report
-- received twice gives the same keys and ReplacingMergeTree merges the copy away; query with
-- FINAL or count(DISTINCT id).
-- Keyed by policy_domain first: the views are TLS failures per receiving domain.
CREATE TABLE IF NOT EXISTS tlsrpt_result
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    report_id String,
    organization LowCardinality(String),
    contact_info String,
    begin DateTime('UTC'),
    end DateTime('UTC'),
    policy_domain LowCardinality(String),
    policy_type LowCardinality(String),
    policy_strings Array(String),
    mx_hosts Array(String),
    success UInt64,
    failure UInt64,
    failure_result_types Array(String),
    failure_sending_ips Array(String),
    failure_receiving_mxs Array(String),
    failure_receiving_ips Array(String),
    failure_session_counts Array(UInt64),
    failure_reason_codes Array(String),
    our_source UInt8,
    received_via LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (policy_domain, time, id)
