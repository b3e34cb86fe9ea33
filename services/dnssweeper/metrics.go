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
	leader        prometheus.Gauge
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
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "leader", Help: "1 while this copy holds the leader lease (sweeps and audits), 0 while it stands by."}),
	}
	r := obs.NewRegistrar(reg)
	m.queries = obs.Register(r, m.queries)
	m.errors = obs.Register(r, m.errors)
	m.listed = obs.Register(r, m.listed)
	m.zoneUp = obs.Register(r, m.zoneUp)
	m.sweeps = obs.Register(r, m.sweeps)
	m.sweepFailures = obs.Register(r, m.sweepFailures)
	m.sweepSeconds = obs.Register(r, m.sweepSeconds)
	m.targets = obs.Register(r, m.targets)
	m.seenIPs = obs.Register(r, m.seenIPs)
	m.audits = obs.Register(r, m.audits)
	m.findings = obs.Register(r, m.findings)
	m.leader = obs.Register(r, m.leader)
	return m, r.Err()
}
