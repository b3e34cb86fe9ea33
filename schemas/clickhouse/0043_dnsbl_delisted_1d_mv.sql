-- dnsbl_delisted_1d_mv: feeds dnsbl_delisted_1d from every insert into dnsbl_delisted. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS dnsbl_delisted_1d_mv TO dnsbl_delisted_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    zone,
    target,
    target_kind,
    source_ip,
    countState() AS delistings,
    maxState(time) AS last_delisted
FROM dnsbl_delisted
GROUP BY bucket, zone, target, target_kind, source_ip
