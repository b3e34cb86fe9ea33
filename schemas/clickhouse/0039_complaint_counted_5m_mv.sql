-- complaint_counted_5m_mv: feeds complaint_counted_5m from every insert into complaint_received. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS complaint_counted_5m_mv TO complaint_counted_5m
AS SELECT
    toStartOfFiveMinute(time) AS bucket,
    provider,
    source_ip,
    customer,
    feedback_type,
    countState() AS complaints
FROM complaint_received
WHERE counted = 1 AND trusted = 1
GROUP BY bucket, provider, source_ip, customer, feedback_type
