-- probe_received_5m_mv: feeds probe_received_5m from every insert into probe_received. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS probe_received_5m_mv TO probe_received_5m
AS SELECT
    toStartOfFiveMinute(time) AS bucket,
    provider,
    source_ip,
    placement,
    countState() AS received,
    quantilesState(0.5, 0.95)(latency_ms) AS latency_ms
FROM probe_received
GROUP BY bucket, provider, source_ip, placement
