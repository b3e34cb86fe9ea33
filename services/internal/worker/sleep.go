package worker

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, and reports whether the wait ended with
// ctx still live: true means "carry on", false means "shut down".
//
// A d of zero or less does not wait: it only reports whether ctx is live.
// (Without that rule a zero timer and an ended ctx race in the select, and
// the answer would be random.) When ctx has already ended, Sleep reports
// false whatever d is.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 || ctx.Err() != nil {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
