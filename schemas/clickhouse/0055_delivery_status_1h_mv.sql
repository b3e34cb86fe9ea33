-- delivery_status_1h_mv: feeds delivery_status_1h from every insert into delivery_attempted. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_status_1h_mv TO delivery_status_1h
AS SELECT
    toStartOfHour(time) AS bucket,
    provider,
    source_ip,
    customer,
    status,
    category,
    countState() AS attempts
FROM delivery_attempted
GROUP BY bucket, provider, source_ip, customer, status, category
