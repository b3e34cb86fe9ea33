package schemas

// Rollup is a dashboard rollup: an AggregatingMergeTree table that a
// materialised view fills from a kind's table on every insert, so
// dashboards read a few rows per time bucket instead of scanning raw
// events. Its counts are uniqExact states of the event id, so a
// redelivered event that is inserted twice still counts once.
type Rollup struct {
	// Table is the rollup table, partitioned by toYYYYMMDD(bucket) so
	// retention drops its day partitions like those of the raw tables.
	Table string
	// View is the materialised view that feeds Table.
	View string
	// Source is the kind's table the view reads from.
	Source string
}

// RollupTimeColumn is the time column of every rollup table: the start
// of its bucket. Retention (partition drops, TTL) keys on it.
const RollupTimeColumn = "bucket"

// Rollups lists the dashboard rollups the migrations create. Each is
// documented in README.md with an example query.
func Rollups() []Rollup {
	return []Rollup{
		{Table: "delivery_attempted_5m", View: "delivery_attempted_5m_mv", Source: "delivery_attempted"},
		{Table: "complaint_received_5m", View: "complaint_received_5m_mv", Source: "complaint_received"},
	}
}
