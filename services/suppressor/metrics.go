package suppressor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
)

type metrics struct {
	added   *prometheus.CounterVec
	removed *prometheus.CounterVec
	ignored *prometheus.CounterVec
	entries *prometheus.GaugeVec
	soft    prometheus.Gauge
	sweeps  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "mailmon", "suppressor"
	m := &metrics{
		added: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "added_total", Help: "Entries stored (or their event published again on a redelivery), by reason (hard_bounce, soft_bounces, complaint)."},
			[]string{"reason"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "removed_total", Help: "Entries removed, by cause (delivered, expired)."},
			[]string{"cause"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "ignored_total", Help: "Events, or recipients of an event, that changed nothing, by why (untraced, transient, category, own_reject, untrusted, redacted, bad_address, kept_existing, ...)."},
			[]string{"why"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "entries", Help: "Entries in the suppression bucket at the last complete sweep, by reason."},
			[]string{"reason"}),
		soft: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "soft_tracked_addresses", Help: "Addresses whose soft failures are being counted (in memory)."}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "sweeps_total", Help: "Expiry sweeps, by result (ok, failed)."},
			[]string{"result"}),
	}
	r := obs.NewRegistrar(reg)
	m.added = obs.Register(r, m.added)
	m.removed = obs.Register(r, m.removed)
	m.ignored = obs.Register(r, m.ignored)
	m.entries = obs.Register(r, m.entries)
	m.soft = obs.Register(r, m.soft)
	m.sweeps = obs.Register(r, m.sweeps)
	return m, r.Err()
}
