-- complaint_received.trusted (issue 13): 1 when the report's origin was verified. Only
-- rows with counted = 1 AND trusted = 1 are complaints mailmon acts on. Rows written
-- before this column existed read back 0: their origin was never checked.
ALTER TABLE complaint_received ADD COLUMN trusted UInt8
