package probesender

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	probes        *prometheus.CounterVec
	submitSeconds *prometheus.HistogramVec
	skipped       *prometheus.CounterVec
	publishErrors prometheus.Counter
	rounds        prometheus.Counter
	leader        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "probe_sender"
	m := &metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "probes_total", Help: "Probes submitted, by route, provider and outcome (accepted, tempfail, refused, error)."},
			[]string{"route", "provider", "outcome"}),
		submitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "submission_seconds", Help: "Time of one submission, connect (or command start) to final reply, by route.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"route"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "skipped_total", Help: "Probes not sent, by reason (rate_cap: the provider cap left no room before the next round; overrun: the previous round was still running; sent_by_another_copy: another copy claimed the slot; unclaimed: the claim could not be written)."},
			[]string{"reason"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "publish_errors_total", Help: "probe.sent events that could not be published after retries."}),
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rounds_total", Help: "Rounds started."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "leader", Help: "1 while this copy holds the leader lease (sends the rounds), 0 while it stands by."}),
	}
	r := obs.NewRegistrar(reg)
	m.probes = obs.Register(r, m.probes)
	m.submitSeconds = obs.Register(r, m.submitSeconds)
	m.skipped = obs.Register(r, m.skipped)
	m.publishErrors = obs.Register(r, m.publishErrors)
	m.rounds = obs.Register(r, m.rounds)
	m.leader = obs.Register(r, m.leader)
	return m, r.Err()
}
