package mtalogtailer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	lines            *prometheus.CounterVec
	unparsed         *prometheus.CounterVec
	events           *prometheus.CounterVec
	deadLettered     *prometheus.CounterVec
	skipped          *prometheus.CounterVec
	tracking         *prometheus.CounterVec
	unclassified     prometheus.Counter
	lag              *prometheus.GaugeVec
	rotations        *prometheus.CounterVec
	truncations      *prometheus.CounterVec
	lostFiles        *prometheus.CounterVec
	restarts         *prometheus.CounterVec
	checkpoints      *prometheus.CounterVec
	checkpointErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "mta_log_tailer"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		lines:        counter("lines_read_total", "Complete log lines read, by file.", "file"),
		unparsed:     counter("unparsed_lines_total", "Lines whose syslog or Exim header was not understood (dead-lettered), by file.", "file"),
		events:       counter("events_published_total", "delivery.attempted events published (confirmed at the next checkpoint), by status.", "status"),
		deadLettered: counter("dead_lettered_total", "Lines copied to mailmon.dlq.mta-log-tailer, by reason (unparsed, invalid_event).", "reason"),
		skipped:      counter("skipped_records_total", "Parsed records that are not delivery attempts and were not published, by reason.", "reason"),
		tracking:     counter("tracking_headers_total", "Delivery records by tracking header verdict (valid, missing, invalid: present but not verifiable, ignored).", "status"),
		unclassified: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unclassified_replies_total",
			Help: "Failed delivery attempts whose reply no classifier text rule matched (sampled to the log)."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_bytes",
			Help: "Bytes written to a log (and its rotated files) not read yet, by file."}, []string{"file"}),
		rotations:        counter("rotations_total", "Times another file took a log's path (rename rotation), by file.", "file"),
		truncations:      counter("truncations_total", "Times a log was truncated in place (copytruncate), by file.", "file"),
		lostFiles:        counter("lost_files_total", "Rotated files that disappeared before they were read to their end, by file.", "file"),
		restarts:         counter("restarts_total", "Times reading a log was restarted from its checkpoint after an error, by file.", "file"),
		checkpoints:      counter("checkpoints_total", "Checkpoints stored in the tailer_offsets bucket, by file.", "file"),
		checkpointErrors: counter("checkpoint_errors_total", "Checkpoints that could not be stored (retried at the next one), by file.", "file"),
	}
	r := obs.NewRegistrar(reg)
	m.lines = obs.Register(r, m.lines)
	m.unparsed = obs.Register(r, m.unparsed)
	m.events = obs.Register(r, m.events)
	m.deadLettered = obs.Register(r, m.deadLettered)
	m.skipped = obs.Register(r, m.skipped)
	m.tracking = obs.Register(r, m.tracking)
	m.unclassified = obs.Register(r, m.unclassified)
	m.lag = obs.Register(r, m.lag)
	m.rotations = obs.Register(r, m.rotations)
	m.truncations = obs.Register(r, m.truncations)
	m.lostFiles = obs.Register(r, m.lostFiles)
	m.restarts = obs.Register(r, m.restarts)
	m.checkpoints = obs.Register(r, m.checkpoints)
	m.checkpointErrors = obs.Register(r, m.checkpointErrors)
	return m, r.Err()
}
