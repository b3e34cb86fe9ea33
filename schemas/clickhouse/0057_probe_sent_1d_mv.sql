-- probe_sent_1d_mv: feeds probe_sent_1d from every insert into probe_sent. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS probe_sent_1d_mv TO probe_sent_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    provider,
    source_ip,
    outcome,
    countState() AS sent
FROM probe_sent
GROUP BY bucket, provider, source_ip, outcome
