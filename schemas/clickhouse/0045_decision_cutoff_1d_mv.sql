-- decision_cutoff_1d_mv: feeds decision_cutoff_1d from every insert into decision_cutoff. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS decision_cutoff_1d_mv TO decision_cutoff_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    scope,
    subject,
    customer,
    provider,
    source_ip,
    countState() AS decisions,
    maxState(rate) AS max_rate,
    maxState(until) AS last_until
FROM decision_cutoff
GROUP BY bucket, scope, subject, customer, provider, source_ip
