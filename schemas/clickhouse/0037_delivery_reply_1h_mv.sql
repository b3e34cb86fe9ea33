-- delivery_reply_1h_mv: feeds delivery_reply_1h from every insert into delivery_attempted. Only rows inserted after it
-- exists are rolled up (no POPULATE: it is not safe with TO).
CREATE MATERIALIZED VIEW IF NOT EXISTS delivery_reply_1h_mv TO delivery_reply_1h
AS SELECT
    toStartOfHour(time) AS bucket,
    provider,
    customer,
    recipient_domain,
    status,
    category,
    signature,
    countState() AS attempts,
    anyState(reply) AS sample_reply
FROM delivery_attempted
WHERE status != 'sent'
GROUP BY bucket, provider, customer, recipient_domain, status, category, signature
