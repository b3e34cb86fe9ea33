package notifier

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// FuzzLifecycle feeds one route a sequence of alerts about one condition,
// each built from three bytes of the input (status, severity, members and
// a time step that may go back), with member lists from the text input,
// and checks what must hold whatever the order: a resolution goes out only
// after a firing the route was told of (alone, or right after its late
// firing); the state after a send has the status of the last alert sent;
// members stay sorted, unique and bounded; an alert sent once is never sent
// again.
func FuzzLifecycle(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 0, 1, 4, 0, 1}, "gmail,yahoo")
	f.Add([]byte{1, 0, 5, 0, 1, 0xfe, 0, 2, 1}, "a,b,,c, a")
	f.Add([]byte{0, 1, 3, 0, 0, 0, 1, 0, 0xff}, strings.Repeat("x,", 600))
	f.Fuzz(func(t *testing.T, steps []byte, members string) {
		if len(steps) > 3*200 {
			steps = steps[:3*200]
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		memberList := strings.Split(members, ",")
		var rs routeState
		sent := map[string]bool{}
		alertTime, now := t0, t0
		for i := 0; i+2 < len(steps); i += 3 {
			op, sev, step := steps[i], steps[i+1], int8(steps[i+2])
			alertTime = alertTime.Add(time.Duration(step) * time.Minute)
			now = now.Add(time.Duration(max(step, 0)) * time.Minute)
			status := schemas.AlertFiring
			if op&1 == 1 {
				status = schemas.AlertResolved
			}
			severity := severities[int(sev)%len(severities)]
			var ev []string
			if op&2 == 2 {
				n := int(op>>2) % (len(memberList) + 1)
				ev = []string{"providers", strings.Join(memberList[:n], ",")}
			}
			a := at(alertTime, "probe_missing", "ip:192.0.2.1", status, severity, ev...)
			before := rs
			after, send, reason := rs.next(a, now, 4*time.Hour)
			switch len(send) {
			case 0:
				if reason == reasonHeld {
					rs = after
				}
				continue
			case 1:
				if send[0].Status == schemas.AlertResolved && before.Status != schemas.AlertFiring {
					t.Fatalf("step %d: resolution sent to a route never told of its firing (%s)", i/3, reason)
				}
			case 2:
				if send[0].Status != schemas.AlertFiring || send[1].Status != schemas.AlertResolved || before.Held == nil {
					t.Fatalf("step %d: a pair that is not a late firing and its held resolution (%s)", i/3, reason)
				}
			default:
				t.Fatalf("step %d: %d alerts sent for one", i/3, len(send))
			}
			if last := send[len(send)-1]; after.Status != last.Status || after.AlertID != last.ID {
				t.Fatalf("step %d: state after %+v does not record the last alert sent (%s %s)", i/3, after, last.Status, last.ID)
			}
			for _, s := range send {
				if sent[s.ID] {
					t.Fatalf("step %d: alert %s sent twice (%s)", i/3, s.ID, reason)
				}
				sent[s.ID] = true
			}
			if len(after.Members) > maxMembers || !slices.IsSorted(after.Members) || len(slices.Compact(slices.Clone(after.Members))) != len(after.Members) {
				t.Fatalf("step %d: members %q", i/3, after.Members)
			}
			rs = after
		}
	})
}
