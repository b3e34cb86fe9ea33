package obs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterOrReuseSharesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "mailmon_test_total", Help: "test"}
	first, err := RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second, err := RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second.Inc()
	if first != second {
		t.Fatal("the second registration did not return the first collector")
	}
	// Same name, other help text: a real conflict, reported.
	if _, err := RegisterOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "mailmon_test_total", Help: "other"})); err == nil {
		t.Fatal("a conflicting collector was accepted")
	}
}
