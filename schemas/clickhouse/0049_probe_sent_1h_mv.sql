-- probe_sent_1h_mv: feeds probe_sent_1h from every insert into probe_sent. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS probe_sent_1h_mv TO probe_sent_1h
AS SELECT
    toStartOfHour(time) AS bucket,
    provider,
    source_ip,
    outcome,
    countState() AS sent
FROM probe_sent
GROUP BY bucket, provider, source_ip, outcome
