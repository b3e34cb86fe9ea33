package schemas

// Rollup is a dashboard rollup: an AggregatingMergeTree table that a
// materialised view fills from a kind's table on every insert, so the
// console and dashboards read a few rows per time bucket instead of
// scanning raw events.
//
// The first two count distinct event ids (uniqExact states): exact even
// when the sink inserts a batch twice, but their states hold every id, so
// merging a week of deliveries takes seconds. The console's rollups hold
// row counts (count states) and small fixed-size states (quantiles, any,
// max), which merge in milliseconds at a million deliveries a day; a batch
// inserted again after a sink crash is counted again there (see
// "Dashboard rollups" in README.md). The DMARC and TLS report rollups add
// sums (sum states) of the messages and sessions a report row stands for.
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
		{Table: "probe_sent_5m", View: "probe_sent_5m_mv", Source: "probe_sent"},
		{Table: "probe_received_5m", View: "probe_received_5m_mv", Source: "probe_received"},
		{Table: "probe_missing_5m", View: "probe_missing_5m_mv", Source: "probe_missing"},
		{Table: "delivery_status_5m", View: "delivery_status_5m_mv", Source: "delivery_attempted"},
		{Table: "delivery_reply_1h", View: "delivery_reply_1h_mv", Source: "delivery_attempted"},
		{Table: "complaint_counted_5m", View: "complaint_counted_5m_mv", Source: "complaint_received"},
		{Table: "dnsbl_listed_1d", View: "dnsbl_listed_1d_mv", Source: "dnsbl_listed"},
		{Table: "dnsbl_delisted_1d", View: "dnsbl_delisted_1d_mv", Source: "dnsbl_delisted"},
		{Table: "decision_cutoff_1d", View: "decision_cutoff_1d_mv", Source: "decision_cutoff"},
		{Table: "decision_reroute_1d", View: "decision_reroute_1d_mv", Source: "decision_reroute"},
		{Table: "probe_sent_1h", View: "probe_sent_1h_mv", Source: "probe_sent"},
		{Table: "probe_received_1h", View: "probe_received_1h_mv", Source: "probe_received"},
		{Table: "probe_missing_1h", View: "probe_missing_1h_mv", Source: "probe_missing"},
		{Table: "delivery_status_1h", View: "delivery_status_1h_mv", Source: "delivery_attempted"},
		{Table: "probe_sent_1d", View: "probe_sent_1d_mv", Source: "probe_sent"},
		{Table: "probe_received_1d", View: "probe_received_1d_mv", Source: "probe_received"},
		{Table: "probe_missing_1d", View: "probe_missing_1d_mv", Source: "probe_missing"},
		{Table: "dmarc_record_1d", View: "dmarc_record_1d_mv", Source: "dmarc_record"},
		{Table: "tlsrpt_result_1d", View: "tlsrpt_result_1d_mv", Source: "tlsrpt_result"},
	}
}
