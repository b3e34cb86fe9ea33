-- probe_received_1d_mv: feeds probe_received_1d from every insert into probe_received. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS probe_received_1d_mv TO probe_received_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    provider,
    source_ip,
    placement,
    countState() AS received,
    quantilesState(0.5, 0.95)(latency_ms) AS latency_ms
FROM probe_received
GROUP BY bucket, provider, source_ip, placement
