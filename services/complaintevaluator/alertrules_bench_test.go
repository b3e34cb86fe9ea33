package complaintevaluator

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// BenchmarkObserveDelivery measures what the alert rules add to the
// evaluator's hottest path, a sent delivery: with the rules off, and on
// with 1000 firing alerts and a recent delisting of another IP (so the
// still-rejected check cannot return at once).
func BenchmarkObserveDelivery(b *testing.B) {
	for _, tc := range []struct {
		name string
		on   bool
	}{{"alert rules off", false}, {"alert rules on, 1000 firing", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.StillRejected.Enabled = tc.on
			e := NewEngine(cfg, src)
			now := t0
			if tc.on {
				for i := range 1000 {
					feed(e, now, listedOn(schemas.TargetIP, fmt.Sprintf("198.51.100.%d", i%250), fmt.Sprintf("z%d.example", i/250), 2, now))
				}
				feed(e, now, listedOn(schemas.TargetIP, "203.0.113.1", "zen.example", 2, now), delistedFrom(schemas.TargetIP, "203.0.113.1", "zen.example", 2, now))
			}
			evs := make([]*schemas.DeliveryAttempted, 4096)
			for i := range evs {
				evs[i] = delivery("acme", "192.0.2.10", "gmail", schemas.StatusSent, now)
			}
			b.ResetTimer()
			for i := range b.N {
				ev := evs[i%len(evs)]
				ev.ID = fmt.Sprintf("00000000-0000-7000-9000-%012d", i) // new each time: not dropped as a duplicate
				e.Observe(ev, now.Add(time.Duration(i)*time.Microsecond), false)
			}
		})
	}
}
