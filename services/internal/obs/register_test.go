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

func TestRegistrarReusesAndGathersErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "mailmon_registrar_total", Help: "test"}
	r := NewRegistrar(reg)
	first := Register(r, prometheus.NewCounter(opts))
	if second := Register(r, prometheus.NewCounter(opts)); second != first {
		t.Error("a second collector with the same description was not replaced by the first")
	}
	if r.Err() != nil {
		t.Fatalf("Err = %v after reuse, want nil", r.Err())
	}
	Register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: "mailmon_registrar_total", Help: "other"}))
	Register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailmon_registrar_gauge", Help: "test"}))
	if r.Err() == nil {
		t.Error("a conflicting collector left no error")
	}
	if n, err := reg.Gather(); err != nil || len(n) != 2 {
		t.Errorf("registry holds %d families (err %v), want the counter and the gauge registered after the conflict", len(n), err)
	}

	nothing := NewRegistrar(nil)
	c := prometheus.NewCounter(opts)
	if got := Register(nothing, c); got != c || nothing.Err() != nil {
		t.Error("a nil Registerer did not leave the collector as it was")
	}
}
