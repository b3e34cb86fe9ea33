package complaintevaluator

import (
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// FuzzCheckpoint decodes and restores arbitrary bytes as a checkpoint
// (what the bucket holds passed its digest, but anyone with write access
// to the bucket could have put it there): a checkpoint that does not fit
// is refused with an error, and one that is restored gives an engine that
// judges and ticks without panicking.
func FuzzCheckpoint(f *testing.F) {
	cfg := testConfig()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := NewEngine(cfg, src)
	var evs []schemas.Event
	evs = append(evs, deliveries(200, "acme", "192.0.2.10", "gmail", now.Add(-time.Hour))...)
	evs = append(evs, complaints(3, "acme", "192.0.2.10", "gmail", now.Add(-time.Minute))...)
	evs = append(evs, receivedProbe("192.0.2.10", "r", "gmail", schemas.PlacementSpam, t0, t0.Add(time.Minute)),
		missingProbe("", "sendmail", "gmail", t0, t0.Add(time.Hour)),
		dmarcRow("192.0.2.10", "google.com", "example.com", schemas.DMARCFail, 200, true, day(0)))
	feed(e, now, evs...)
	e.EvaluateAll(now)
	for _, c := range []*checkpoint{
		{Version: checkpointVersion, Engine: e.snapshot()},
		{Version: checkpointVersion, Engine: NewEngine(cfg, src).snapshot()},
	} {
		data, err := encodeCheckpoint(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		r := NewEngine(cfg, src)
		if err := restoreEngine(cfg, r, c.Engine); err != nil {
			return
		}
		feed(r, now, delivery("acme", "192.0.2.10", "gmail", schemas.StatusSent, now), complaint("acme", "192.0.2.10", "gmail", now),
			missingProbe("", "sendmail", "gmail", t0.Add(time.Minute), t0.Add(time.Hour)))
		r.EvaluateAll(now)
		r.Tick(now.Add(2 * time.Minute))
		r.snapshot()
	})
}
