-- complaint_received_5m_mv (replaces 0022's definition, dropped by 0025): feeds
-- complaint_received_5m from every insert into complaint_received, with only the complaints
-- mailmon acts on: counted = 1 (abuse, and fraud / virus when configured) and trusted = 1
-- (the report's origin was verified; see schemas/README.md). Unverified reports stay in
-- the raw table as a record but never reach the dashboards. Rolled up from the moment this
-- view exists (no POPULATE): buckets written before it may still hold unverified complaints.
CREATE MATERIALIZED VIEW IF NOT EXISTS complaint_received_5m_mv TO complaint_received_5m
AS SELECT
    toStartOfFiveMinute(time) AS bucket,
    provider,
    source_ip,
    customer,
    feedback_type,
    uniqExactState(id) AS complaints
FROM complaint_received
WHERE counted = 1 AND trusted = 1
GROUP BY bucket, provider, source_ip, customer, feedback_type
