package mailboxretriever

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	probes       *prometheus.CounterVec
	ignored      *prometheus.CounterVec
	expectations *prometheus.CounterVec
	accountErrs  *prometheus.CounterVec
	accountUp    *prometheus.GaugeVec
	accountHeld  *prometheus.GaugeVec
	detection    prometheus.Histogram
	latency      *prometheus.HistogramVec
	pending      prometheus.Gauge
	publishErrs  prometheus.Counter
	deleteErrs   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "mailbox_retriever"
	m := &metrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "probes_total", Help: "Probes reported, by account and result (received, missing, late, duplicate)."},
			[]string{"account", "result"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "ignored_messages_total", Help: "Messages in seed mailboxes that are not our probes or not trusted, by reason (foreign, tampered, unknown_key, malformed, expired, future, not_probe, unexpected)."},
			[]string{"reason"}),
		expectations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "expectations_total", Help: "probe.sent events consumed, by result (created, redelivered, not_accepted, unknown_seed, bad_probe_id)."},
			[]string{"result"}),
		accountErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "account_errors_total", Help: "Failed connections, logins or commands, by account."}, []string{"account"}),
		accountUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "account_up", Help: "1 when the account's last attempt succeeded on every folder, else 0 (0 too on a copy that does not hold the account's lease)."}, []string{"account"}),
		accountHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "account_held", Help: "1 while this copy holds the account's lease (reads it), else 0."}, []string{"account"}),
		detection: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "detection_seconds", Help: "Detection delay: from the provider storing a probe to the retriever seeing it.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "delivery_latency_seconds", Help: "Delivery latency: from our relay accepting a probe to the provider storing it, by placement.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}}, []string{"placement"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "pending_probes", Help: "Probes expected and not yet seen nor declared missing."}),
		publishErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "publish_errors_total", Help: "Events whose publish failed; they are retried from the stored expectation."}),
		deleteErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "delete_errors_total", Help: "Reported probes that could not be deleted from the mailbox (tried again later)."}),
	}
	r := obs.NewRegistrar(reg)
	m.probes = obs.Register(r, m.probes)
	m.ignored = obs.Register(r, m.ignored)
	m.expectations = obs.Register(r, m.expectations)
	m.accountErrs = obs.Register(r, m.accountErrs)
	m.accountUp = obs.Register(r, m.accountUp)
	m.accountHeld = obs.Register(r, m.accountHeld)
	m.detection = obs.Register(r, m.detection)
	m.latency = obs.Register(r, m.latency)
	m.pending = obs.Register(r, m.pending)
	m.publishErrs = obs.Register(r, m.publishErrs)
	m.deleteErrs = obs.Register(r, m.deleteErrs)
	return m, r.Err()
}
