package fblingester

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	messages        *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "fbl_ingester"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		messages:        counter("messages_total", "Messages handled, by input (smtp, imap, file) and outcome (complaint, auth_failure, bounce, auto_reply, delivered, dead_letter, retry).", "input", "outcome"),
		deadLettered:    counter("dead_lettered_total", "Messages no parser understood, stored in mailmon.dlq.fbl-ingester, by input.", "input"),
		publishFailures: counter("publish_failures_total", "Messages whose events or dead letter JetStream did not confirm (the input keeps them and retries), by input.", "input"),
		tracking:        counter("tracking_headers_total", "Reports and bounces by tracking header verdict (valid, missing, invalid: present but not verifiable, ignored).", "status"),
		complaints:      counter("complaints_total", "complaint.received events, by feedback type, counted and trace method.", "feedback_type", "counted", "trace_method"),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unmatched_complaints_total",
			Help: "Counted complaints that traced to nothing of ours."}),
		unmatchedShare: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "unmatched_complaint_share",
			Help: "Share of counted complaints in the unmatched_alert window that traced to nothing."}),
		bounces:      counter("bounces_total", "bounce.received events (one per failed recipient), by category.", "category"),
		authFailures: counter("auth_failures_total", "authfailure.received events, by Auth-Failure.", "auth_failure"),
		smtpRefused:  counter("smtp_refused_total", "SMTP commands or connections refused, by reason (relay, too_large, connections, retry).", "reason"),
		pullErrors:   counter("pull_errors_total", "Failed IMAP pulls and directory scans, by input and name.", "input", "name"),
		alerts:       counter("alerts_total", "unmatched_complaints alerts published, by status.", "status"),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	reuse := func(c prometheus.Collector) prometheus.Collector {
		got, e := obs.RegisterOrReuse(reg, c)
		err = errors.Join(err, e)
		return got
	}
	m.messages = reuse(m.messages).(*prometheus.CounterVec)
	m.deadLettered = reuse(m.deadLettered).(*prometheus.CounterVec)
	m.publishFailures = reuse(m.publishFailures).(*prometheus.CounterVec)
	m.tracking = reuse(m.tracking).(*prometheus.CounterVec)
	m.complaints = reuse(m.complaints).(*prometheus.CounterVec)
	m.unmatched = reuse(m.unmatched).(prometheus.Counter)
	m.unmatchedShare = reuse(m.unmatchedShare).(prometheus.Gauge)
	m.bounces = reuse(m.bounces).(*prometheus.CounterVec)
	m.authFailures = reuse(m.authFailures).(*prometheus.CounterVec)
	m.smtpRefused = reuse(m.smtpRefused).(*prometheus.CounterVec)
	m.pullErrors = reuse(m.pullErrors).(*prometheus.CounterVec)
	m.alerts = reuse(m.alerts).(*prometheus.CounterVec)
	if err != nil {
		return nil, err
	}
	return m, nil
}
