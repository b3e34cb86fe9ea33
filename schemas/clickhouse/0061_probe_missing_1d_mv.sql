-- probe_missing_1d_mv: feeds probe_missing_1d from every insert into probe_missing. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS probe_missing_1d_mv TO probe_missing_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    provider,
    source_ip,
    countState() AS missing
FROM probe_missing
GROUP BY bucket, provider, source_ip
