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
