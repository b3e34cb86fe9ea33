package testwait

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// recorder stands in for the test Eventually runs in: Fatalf records the
// message and ends the goroutine, as testing.T's does.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls Eventually on a goroutine of its own, so that Fatalf's Goexit
// ends only that goroutine.
func run(within time.Duration, what string, cond func() bool) (r *recorder, waited time.Duration) {
	r = &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		waited = Eventually(r, within, what, cond)
	}()
	<-done
	return r, waited
}

func TestEventuallyReturnsWhenTheConditionHolds(t *testing.T) {
	calls := 0
	r, _ := run(time.Minute, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if r.failure != "" {
		t.Fatalf("failed: %s", r.failure)
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3 (stop at the first true)", calls)
	}
}

func TestEventuallyChecksAConditionThatAlreadyHolds(t *testing.T) {
	calls := 0
	r, _ := run(0, "something true", func() bool { calls++; return true })
	if r.failure != "" || calls != 1 {
		t.Fatalf("failure %q after %d calls; want success after 1", r.failure, calls)
	}
}

func TestEventuallyFailsNamingWhatItWaitedFor(t *testing.T) {
	within := 30 * time.Millisecond
	var lastCall time.Time
	start := time.Now()
	r, _ := run(within, "the bucket to exist", func() bool { lastCall = time.Now(); return false })
	want := "timed out after 30ms waiting for the bucket to exist"
	if r.failure != want {
		t.Fatalf("failure = %q, want %q", r.failure, want)
	}
	if lastCall.Sub(start) < within {
		t.Fatalf("last check %s after the start, before the %s deadline", lastCall.Sub(start), within)
	}
}

// A condition that becomes true during a cond call that overran the
// deadline is seen: the test does not fail on a check made before the
// deadline.
func TestEventuallyChecksOnceMoreAfterASlowCall(t *testing.T) {
	within := 20 * time.Millisecond
	calls := 0
	r, _ := run(within, "the slow condition", func() bool {
		calls++
		if calls == 1 {
			time.Sleep(2 * within) // overruns the deadline, still false
			return false
		}
		return true
	})
	if r.failure != "" {
		t.Fatalf("failed although the check after the deadline holds: %s", r.failure)
	}
}
