-- dmarc_record_1d_mv: feeds dmarc_record_1d from every insert into dmarc_record. The bucket is
-- the UTC day of time, the start of the report's period. Only rows inserted after it exists are
-- rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS dmarc_record_1d_mv TO dmarc_record_1d
AS SELECT
    toStartOfDay(time) AS bucket,
    domain,
    our_source,
    source_ip,
    org_name,
    customer,
    countState() AS records,
    sumState(count) AS messages,
    sumState(if(dmarc = 'pass', count, toUInt64(0))) AS messages_dmarc_pass,
    sumState(if(dkim = 'pass', count, toUInt64(0))) AS messages_dkim_pass,
    sumState(if(spf = 'pass', count, toUInt64(0))) AS messages_spf_pass,
    sumState(if(disposition = 'quarantine', count, toUInt64(0))) AS messages_quarantined,
    sumState(if(disposition = 'reject', count, toUInt64(0))) AS messages_rejected
FROM dmarc_record
GROUP BY bucket, domain, our_source, source_ip, org_name, customer
