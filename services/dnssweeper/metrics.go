package dnssweeper

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	queries       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	listed        *prometheus.GaugeVec
	zoneUp        *prometheus.GaugeVec
	sweeps        prometheus.Counter
	sweepFailures prometheus.Counter
	sweepSeconds  prometheus.Histogram
	targets       prometheus.Gauge
	seenIPs       prometheus.Gauge
	audits        prometheus.Counter
	findings      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "dns_sweeper"
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "queries_total", Help: "DNS packets sent about each zone (self-tests, retries and TXT included)."}, []string{"zone"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "check_errors_total", Help: "Checks whose answer could not be trusted, by zone and cause."}, []string{"zone", "cause"}),
		listed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "listed_targets", Help: "Targets listed on each zone after the last sweep."}, []string{"zone"}),
		zoneUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "zone_up", Help: "1 if the zone passed its self-test in the last sweep, 0 if its answers were not trusted."}, []string{"zone"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "sweeps_total", Help: "Sweeps completed."}),
		sweepFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "sweep_failures_total", Help: "Sweeps whose events or state could not be stored (their changes are seen again by the next sweep)."}),
		sweepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "sweep_seconds", Help: "Duration of a sweep.", Buckets: prometheus.ExponentialBuckets(0.1, 3, 10)}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "targets", Help: "Targets in the last sweep."}),
		seenIPs: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "seen_ips", Help: "Sending IPs learnt from delivery events."}),
		audits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "audits_total", Help: "dns.audit events published."}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "audit_findings_total", Help: "Audit findings, by check and severity."}, []string{"check", "severity"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	reuse := func(col prometheus.Collector) prometheus.Collector {
		if err != nil {
			return col
		}
		var got prometheus.Collector
		got, err = obs.RegisterOrReuse(reg, col)
		return got
	}
	m.queries = reuse(m.queries).(*prometheus.CounterVec)
	m.errors = reuse(m.errors).(*prometheus.CounterVec)
	m.listed = reuse(m.listed).(*prometheus.GaugeVec)
	m.zoneUp = reuse(m.zoneUp).(*prometheus.GaugeVec)
	m.sweeps = reuse(m.sweeps).(prometheus.Counter)
	m.sweepFailures = reuse(m.sweepFailures).(prometheus.Counter)
	m.sweepSeconds = reuse(m.sweepSeconds).(prometheus.Histogram)
	m.targets = reuse(m.targets).(prometheus.Gauge)
	m.seenIPs = reuse(m.seenIPs).(prometheus.Gauge)
	m.audits = reuse(m.audits).(prometheus.Counter)
	m.findings = reuse(m.findings).(*prometheus.CounterVec)
	if err != nil {
		return nil, err
	}
	return m, nil
}
