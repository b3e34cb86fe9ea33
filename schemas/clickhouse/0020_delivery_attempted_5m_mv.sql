-- delivery_attempted_5m_mv: feeds delivery_attempted_5m from every insert into
-- delivery_attempted. Only rows inserted after it exists are rolled up (no POPULATE: it is
-- not safe with TO and would miss or double rows inserted while it runs).
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_attempted_5m_mv TO delivery_attempted_5m
AS SELECT
    toStartOfFiveMinute(time) AS bucket,
    provider,
    source_ip,
    customer,
    status,
    category,
    uniqExactState(id) AS attempts
FROM delivery_attempted
GROUP BY bucket, provider, source_ip, customer, status, category
