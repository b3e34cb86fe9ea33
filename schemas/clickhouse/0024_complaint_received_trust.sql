-- complaint_received.trust (issue 13): why a report is trusted or not (operator_dkim,
-- reporter_network, smtp_auth, trusted_input, unverified); '' for rows written before.
ALTER TABLE complaint_received ADD COLUMN trust LowCardinality(String)
