-- alert_raised.silenced (issue 15): 1 when an active silence matched the alert as it was
-- raised; it was recorded, and no route was told. Rows written before read back 0.
ALTER TABLE alert_raised ADD COLUMN silenced UInt8
