package obs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrReuse registers col with reg, or returns the collector already
// registered under the same description: a worker built twice in one
// process (tests do, and `mailmon probe now` next to a running sender)
// shares the first one's metrics instead of failing.
func RegisterOrReuse[C prometheus.Collector](reg prometheus.Registerer, col C) (C, error) {
	err := reg.Register(col)
	if err == nil {
		return col, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return col, err
}

// Registrar registers one worker's collectors through RegisterOrReuse and
// keeps every error, so a metrics constructor reads as a list of
// assignments: m.x = obs.Register(r, m.x), then return m, r.Err(). With a
// nil Registerer it registers nothing.
type Registrar struct {
	reg prometheus.Registerer
	err error
}

// NewRegistrar returns a Registrar for reg, which may be nil.
func NewRegistrar(reg prometheus.Registerer) *Registrar { return &Registrar{reg: reg} }

// Register registers col through r and returns the collector to use: col,
// or the one already registered under its description.
func Register[C prometheus.Collector](r *Registrar, col C) C {
	if r.reg == nil {
		return col
	}
	got, err := RegisterOrReuse(r.reg, col)
	r.err = errors.Join(r.err, err)
	return got
}

// Err is every registration error so far, joined; nil if there was none.
func (r *Registrar) Err() error { return r.err }
