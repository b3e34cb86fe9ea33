// Package testwait is the one polling helper for tests that wait on real
// servers and workers: a condition is checked until it holds or its time
// is up, and the test fails naming what it waited for.
//
// It is for tests only; product code waits on contexts (worker.Sleep).
package testwait

import (
	"testing"
	"time"
)

// pollInterval is short enough that a test waits little past the moment
// the condition holds, and long enough not to busy-load a shared machine.
const pollInterval = 10 * time.Millisecond

// Eventually calls cond until it returns true and reports how long that
// took. If cond still fails after within, it fails t with "timed out
// after <within> waiting for <what>" and stops the test. cond is always
// called at least once, and the failing call is one that started after the
// deadline, so a condition that became true while the test was
// descheduled (or while a slow cond ran) still counts.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		checked := time.Now()
		if cond() {
			return time.Since(start)
		}
		if checked.After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}
