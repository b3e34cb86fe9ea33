-- dns_audit: One row per audited IP or domain per DNS hygiene pass, findings in parallel arrays (mailmon.dns.v1.audit).
-- Every key column comes from the event, so a re-delivered copy has the same key
-- and ReplacingMergeTree merges it away; query with FINAL or count(DISTINCT id).
CREATE TABLE IF NOT EXISTS dns_audit
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    audit_id String,
    target String,
    target_kind LowCardinality(String),
    source_ip LowCardinality(String),
    ptr_names Array(String),
    spf_record String,
    dmarc_record String,
    dmarc_policy LowCardinality(String),
    dkim_selectors Array(String),
    mx_hosts Array(String),
    worst_severity LowCardinality(String),
    finding_checks Array(String),
    finding_severities Array(String),
    finding_messages Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (target, time, id)
