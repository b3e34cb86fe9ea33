package mailboxretriever

import (
	"testing"
	"time"
)

func TestLatencyOfASecondStamp(t *testing.T) {
	sent := time.Date(2026, 12, 7, 22, 30, 25, 4e6, time.UTC) // .004
	for _, tc := range []struct {
		arrived time.Time
		want    int64
	}{
		{sent.Truncate(time.Second), 0}, // stamped in the second it was sent
		{sent.Truncate(time.Second).Add(time.Second), 996},
		{sent.Add(2500 * time.Millisecond), 2500},
		{sent.Truncate(time.Second).Add(-time.Second), -1004}, // the provider's clock is behind
	} {
		if got := latency(tc.arrived, sent); got != tc.want {
			t.Errorf("arrived %s: latency %d ms, want %d", tc.arrived.Format("15:04:05.000"), got, tc.want)
		}
	}
}
