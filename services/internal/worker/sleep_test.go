package worker

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"zero, live", live, 0, true},
		{"negative, live", live, -time.Second, true},
		{"positive, live", live, time.Millisecond, true},
		{"zero, ended", ended, 0, false},
		{"negative, ended", ended, -time.Second, false},
		{"positive, ended", ended, time.Millisecond, false},
		// An ended ctx must not be hidden by a short timer that also fires.
		{"tiny, ended", ended, time.Nanosecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Repeated: with a race between the timer and ctx, a single run
			// could pass by luck.
			for range 200 {
				if got := Sleep(tc.ctx, tc.d); got != tc.want {
					t.Fatalf("Sleep(%s) = %v, want %v", tc.name, got, tc.want)
				}
			}
		})
	}
}

// TestSleepEndsWithCtx: a long sleep returns false as soon as ctx ends; the
// test would hang (and time out) if Sleep waited for the full duration.
func TestSleepEndsWithCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	if <-done {
		t.Fatal("Sleep reported a full wait after ctx ended")
	}
}
