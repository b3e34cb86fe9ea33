-- tlsrpt_result_1d_mv: feeds tlsrpt_result_1d from every insert into tlsrpt_result. The bucket is
-- the UTC day of time, the start of the report's period. Only rows inserted after it exists are
-- rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS tlsrpt_result_1d_mv TO tlsrpt_result_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    policy_domain,
    organization,
    policy_type,
    countState() AS results,
    sumState(success) AS successful_sessions,
    sumState(failure) AS failed_sessions
FROM tlsrpt_result
GROUP BY bucket, policy_domain, organization, policy_type
