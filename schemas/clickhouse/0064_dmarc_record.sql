-- dmarc_record: one row per <record> of a DMARC aggregate report (mailmon.dmarc.v1.record):
-- what one receiver saw of the mail from one source IP under one of our domains over the
-- report's period (time is the start of that period), and what it did with it.
-- The id derives from the reporter, the report id and the record's position, so a report
-- received twice gives the same keys and ReplacingMergeTree merges the copy away; query with
-- FINAL or count(DISTINCT id), and sum(count) for messages.
-- Keyed by domain first: every view (pass rate per domain, unknown sources per domain) filters on it.
CREATE TABLE IF NOT EXISTS dmarc_record
(
    id String,
    type LowCardinality(String),
    time DateTime('UTC'),
    source_worker LowCardinality(String),
    source_host LowCardinality(String),
    report_id String,
    org_name LowCardinality(String),
    reporter_email LowCardinality(String),
    begin DateTime('UTC'),
    end DateTime('UTC'),
    domain LowCardinality(String),
    policy LowCardinality(String),
    subdomain_policy LowCardinality(String),
    percent UInt8,
    source_ip LowCardinality(String),
    count UInt64,
    disposition LowCardinality(String),
    dkim LowCardinality(String),
    spf LowCardinality(String),
    dmarc LowCardinality(String),
    override_reasons Array(String),
    header_from LowCardinality(String),
    envelope_from LowCardinality(String),
    envelope_to LowCardinality(String),
    dkim_domains Array(String),
    dkim_selectors Array(String),
    dkim_results Array(String),
    spf_domains Array(String),
    spf_scopes Array(String),
    spf_results Array(String),
    our_source UInt8,
    customer LowCardinality(String),
    received_via LowCardinality(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (domain, time, id)
