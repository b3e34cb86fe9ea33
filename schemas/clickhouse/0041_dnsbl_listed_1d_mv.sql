-- dnsbl_listed_1d_mv: feeds dnsbl_listed_1d from every insert into dnsbl_listed. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS dnsbl_listed_1d_mv TO dnsbl_listed_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    zone,
    target,
    target_kind,
    source_ip,
    countState() AS listings,
    maxState(time) AS last_listed
FROM dnsbl_listed
GROUP BY bucket, zone, target, target_kind, source_ip
