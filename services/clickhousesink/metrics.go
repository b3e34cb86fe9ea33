package clickhousesink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

// Reasons a message is dead-lettered, the `reason` label of
// mailmon_clickhouse_sink_dead_lettered_total.
const (
	reasonDecode   = "decode"   // not JSON, unknown type, unknown field
	reasonInvalid  = "invalid"  // decoded, but breaks the contract (schemas.Validate)
	reasonRejected = "rejected" // the ClickHouse driver refused to append the row, or the server refused it reject_after times on its own
)

type metrics struct {
	rows          *prometheus.CounterVec
	batchRows     *prometheus.HistogramVec
	insertSeconds *prometheus.HistogramVec
	insertErrors  *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	// deadLetterErrors counts dead-letter copies that could not be stored
	// (retried in place).
	deadLetterErrors prometheus.Counter
	// splits counts batches split in two after the server refused them
	// reject_after times.
	splits        *prometheus.CounterVec
	pending       *prometheus.GaugeVec
	ackPending    *prometheus.GaugeVec
	held          prometheus.Gauge
	fetchErrors   *prometheus.CounterVec
	ackErrors     prometheus.Counter
	dropped       prometheus.Counter
	retentionErrs prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "clickhouse_sink"
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rows_inserted_total", Help: "Rows ClickHouse confirmed, by table."}, []string{"table"}),
		batchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_rows", Help: "Rows per inserted batch, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"table"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_seconds", Help: "Time of one batch insert attempt (prepare, append, send), by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12)}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_errors_total", Help: "Batch insert attempts that failed and will be retried, by table."}, []string{"table"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dead_lettered_total", Help: "Messages copied to mailmon.dlq.clickhouse-sink, by reason (decode, invalid, rejected)."}, []string{"reason"}),
		deadLetterErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dead_letter_errors_total", Help: "Dead-letter copies that could not be stored; each is retried in place, the message kept."}),
		splits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_splits_total", Help: "Batches split in two after ClickHouse refused them reject_after times, by table."}, []string{"table"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_pending_messages", Help: "Messages in the stream not yet delivered to the sink's consumer (lag), sampled."}, []string{"stream"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_ack_pending_messages", Help: "Messages delivered to the sink's consumer and not yet acknowledged, sampled."}, []string{"stream"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "held_messages", Help: "Messages this sink holds unacknowledged right now (bounded by max_pending)."}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "fetch_errors_total", Help: "Pull requests that failed, by stream."}, []string{"stream"}),
		ackErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "ack_errors_total", Help: "Acks, naks and in-progress signals that could not be sent (the message is redelivered and deduplicated)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "partitions_dropped_total", Help: "Day partitions dropped by retention."}),
		retentionErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "retention_errors_total", Help: "Retention passes that failed for at least one table."}),
	}
	r := obs.NewRegistrar(reg)
	m.rows = obs.Register(r, m.rows)
	m.batchRows = obs.Register(r, m.batchRows)
	m.insertSeconds = obs.Register(r, m.insertSeconds)
	m.insertErrors = obs.Register(r, m.insertErrors)
	m.deadLettered = obs.Register(r, m.deadLettered)
	m.deadLetterErrors = obs.Register(r, m.deadLetterErrors)
	m.splits = obs.Register(r, m.splits)
	m.pending = obs.Register(r, m.pending)
	m.ackPending = obs.Register(r, m.ackPending)
	m.held = obs.Register(r, m.held)
	m.fetchErrors = obs.Register(r, m.fetchErrors)
	m.ackErrors = obs.Register(r, m.ackErrors)
	m.dropped = obs.Register(r, m.dropped)
	m.retentionErrs = obs.Register(r, m.retentionErrs)
	return m, r.Err()
}
