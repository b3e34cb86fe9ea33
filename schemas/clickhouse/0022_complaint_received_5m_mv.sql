-- complaint_received_5m_mv: feeds complaint_received_5m from every insert into
-- complaint_received. Reports with counted = 0 (not-spam, virus, ...) are not complaints and
-- are left out. Only rows inserted after it exists are rolled up (no POPULATE).
CREATE MATERIALIZED VIEW IF NOT EXISTS complaint_received_5m_mv TO complaint_received_5m
AS SELECT
    toStartOfFiveMinute(time) AS bucket,
    provider,
    source_ip,
    customer,
    feedback_type,
    uniqExactState(id) AS complaints
FROM complaint_received
WHERE counted = 1
GROUP BY bucket, provider, source_ip, customer, feedback_type
