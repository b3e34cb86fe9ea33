package complaintevaluator

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// FuzzAlertRules feeds the engine a sequence of events decoded from
// newline-separated JSON (the events other workers publish, and our own
// alerts read back): whatever they hold, the engine must not panic, and
// every alert it asks to publish must be a valid event.
func FuzzAlertRules(f *testing.F) {
	var seed bytes.Buffer
	for _, ev := range []schemas.Event{
		missingProbe("", "sendmail", "gmail", t0, t0.Add(time.Hour)), missingProbe("", "sendmail", "gmail", t0.Add(time.Minute), t0.Add(time.Hour)),
		receivedProbe("192.0.2.1", "r", "gmail", schemas.PlacementSpam, t0, t0.Add(time.Minute)),
		sentProbe("", "relay", schemas.OutcomeError, "connect", 0, "", "timeout", t0),
		listedOn(schemas.TargetIP, "192.0.2.1", "zen.example", 2, t0), delistedFrom(schemas.TargetIP, "192.0.2.1", "zen.example", 2, t0),
		listedOn(schemas.TargetDomain, "example.com", "dbl.example", 2, t0),
		auditOf(schemas.TargetIP, "192.0.2.1", t0, [2]string{"ptr", schemas.SeverityCritical}),
		dmarcRow("192.0.2.1", "google.com", "example.com", schemas.DMARCFail, 200, true, day(0)),
		dmarcRow("203.0.113.9", "google.com", "example.com", schemas.DMARCFail, 2000, false, day(0)),
		tlsRow("google.com", "example.com", 100, 100, day(0)),
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		seed.Write(append(b, '\n'))
	}
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		e := NewEngine(alertConfig(), src)
		now := t0.Add(2 * time.Hour)
		var published []*schemas.AlertRaised
		for i, line := range bytes.Split(data, []byte("\n")) {
			if i >= 100 {
				break
			}
			ev, err := schemas.Decode(line)
			if err != nil || schemas.Validate(ev) != nil {
				continue
			}
			for _, o := range e.Observe(ev, now, false) {
				if o.Alert == nil {
					continue
				}
				if err := schemas.Validate(o.Alert); err != nil {
					t.Fatalf("invalid alert %+v: %v", o.Alert, err)
				}
				published = append(published, o.Alert)
			}
		}
		// A restart that reads those alerts back and replays the same
		// events publishes valid alerts only, too.
		r := NewEngine(alertConfig(), src)
		r.Replaying = true
		for _, a := range published {
			r.Observe(a, now, true)
		}
		r.Replaying = false
		for _, o := range r.EvaluateAll(now) {
			if o.Alert != nil {
				if err := schemas.Validate(o.Alert); err != nil {
					t.Fatalf("invalid alert after a restart %+v: %v", o.Alert, err)
				}
			}
		}
	})
}
