package fblingester

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	messages        *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	unstorable      *prometheus.CounterVec
	authFailed      prometheus.Counter
	publishFailures *prometheus.CounterVec
	tracking        *prometheus.CounterVec
	complaints      *prometheus.CounterVec
	unmatched       prometheus.Counter
	unmatchedShare  prometheus.Gauge
	bounces         *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	smtpRefused     *prometheus.CounterVec
	pullErrors      *prometheus.CounterVec
	alerts          *prometheus.CounterVec
	reports         *prometheus.CounterVec
	reportEvents    *prometheus.CounterVec
	reportsRefused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "fbl_ingester"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		messages:        counter("messages_total", "Messages handled, by input (smtp, imap, file) and outcome (complaint, auth_failure, bounce, dmarc_report, tls_report, auto_reply, delivered, dead_letter, retry).", "input", "outcome"),
		deadLettered:    counter("dead_lettered_total", "Messages no parser understood, stored in mailmon.dlq.fbl-ingester, by input.", "input"),
		publishFailures: counter("publish_failures_total", "Messages whose events or dead letter JetStream did not confirm (the input keeps them and retries), by input.", "input"),
		tracking:        counter("tracking_headers_total", "Reports and bounces by tracking header verdict (valid, missing, invalid: present but not verifiable, ignored).", "status"),
		complaints:      counter("complaints_total", "complaint.received events, by feedback type, counted, trace method and trust (why the report is evidence or not: operator_dkim, reporter_network, smtp_auth, trusted_input, unverified).", "feedback_type", "counted", "trace_method", "trust"),
		unstorable:      counter("unstorable_total", "Messages whose events can never be stored (over NATS max_payload, invalid), dead-lettered and refused for good, by input.", "input"),
		authFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "smtp_auth_failures_total",
			Help: "Failed SMTP AUTH attempts (unknown user or wrong password)."}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unmatched_complaints_total",
			Help: "Counted, trusted complaints that traced to nothing of ours."}),
		unmatchedShare: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "unmatched_complaint_share",
			Help: "Share of counted, trusted complaints in the unmatched_alert window that traced to nothing."}),
		bounces:        counter("bounces_total", "bounce.received events (one per failed recipient), by category.", "category"),
		authFailures:   counter("auth_failures_total", "authfailure.received events, by Auth-Failure.", "auth_failure"),
		smtpRefused:    counter("smtp_refused_total", "SMTP commands or connections refused, by reason (relay, too_large, unstorable, connections, retry, session_timeout).", "reason"),
		pullErrors:     counter("pull_errors_total", "Failed IMAP pulls and directory scans, by input and name.", "input", "name"),
		alerts:         counter("alerts_total", "unmatched_complaints alerts published, by status.", "status"),
		reports:        counter("reports_total", "DMARC aggregate and SMTP TLS report documents read, by format (dmarc, tlsrpt).", "format"),
		reportEvents:   counter("report_events_total", "dmarc.record and tlsrpt.result events confirmed by JetStream (one per aggregate-report record, one per TLS-report policy; a report received again counts again, its copies dropped as duplicates), by format (dmarc, tlsrpt).", "format"),
		reportsRefused: counter("reports_refused_total", "Reports dead-lettered, by reason (limit: over the unpacking limits, a compression bomb; unreadable; too_many: more records than one message may hold).", "reason"),
	}
	r := obs.NewRegistrar(reg)
	m.messages = obs.Register(r, m.messages)
	m.deadLettered = obs.Register(r, m.deadLettered)
	m.unstorable = obs.Register(r, m.unstorable)
	m.authFailed = obs.Register(r, m.authFailed)
	m.publishFailures = obs.Register(r, m.publishFailures)
	m.tracking = obs.Register(r, m.tracking)
	m.complaints = obs.Register(r, m.complaints)
	m.unmatched = obs.Register(r, m.unmatched)
	m.unmatchedShare = obs.Register(r, m.unmatchedShare)
	m.bounces = obs.Register(r, m.bounces)
	m.authFailures = obs.Register(r, m.authFailures)
	m.smtpRefused = obs.Register(r, m.smtpRefused)
	m.pullErrors = obs.Register(r, m.pullErrors)
	m.alerts = obs.Register(r, m.alerts)
	m.reports = obs.Register(r, m.reports)
	m.reportEvents = obs.Register(r, m.reportEvents)
	m.reportsRefused = obs.Register(r, m.reportsRefused)
	return m, r.Err()
}
