-- Drops complaint_received_5m_mv (0022) so 0026 can create it again with the trust filter:
-- the view rolled up every counted = 1 row, so forged (untrusted) reports reached the ops
-- dashboards. ClickHouse 18.16 cannot change a view's query (no ALTER ... MODIFY QUERY), and
-- CREATE ... IF NOT EXISTS would keep the old definition, hence drop and create again.
-- DROP TABLE is how 18.16 drops a view; the TO table complaint_received_5m and its rows stay.
-- Rows inserted into complaint_received between this drop and 0026 are not rolled up. Nothing
-- inserts then: migrations run when the sink starts, before its consumers do, and a file
-- is recorded only after it succeeded, so a start that fails in between drops nothing new.
DROP TABLE IF EXISTS complaint_received_5m_mv
