package complaintevaluator

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func TestWindowSlides(t *testing.T) {
	w := NewWindow(time.Hour, 60) // 1-minute buckets
	one := Counts{Complaints: 1}
	for i := range 10 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute) // 0, 10, ..., 90 min
		if !w.Add(at, at, one) {
			t.Fatalf("event %d dropped", i)
		}
	}
	tests := []struct {
		name string
		now  time.Time
		want uint64
	}{
		{"all inside the last hour of the newest event", t0.Add(90 * time.Minute), 6},          // 40..90
		{"an event leaves one bucket after an hour", t0.Add(100*time.Minute + time.Second), 5}, // 50..90
		{"everything gone", t0.Add(200 * time.Minute), 0},
	}
	for _, tc := range tests {
		if got := w.Sum(tc.now).Complaints; got != tc.want {
			t.Errorf("%s: complaints = %d, want %d", tc.name, got, tc.want)
		}
	}
	if !w.Empty(t0.Add(200 * time.Minute)) {
		t.Error("window not empty after it slid past every event")
	}
}

func TestWindowDropsOldAndClampsFuture(t *testing.T) {
	w := NewWindow(time.Hour, 60)
	now := t0
	if w.Add(now.Add(-61*time.Minute), now, Counts{Complaints: 1}) {
		t.Error("an event older than the window was counted")
	}
	if !w.Add(now.Add(time.Hour), now, Counts{Delivered: 5}) {
		t.Fatal("an event from the future was dropped")
	}
	if got := w.Sum(now).Delivered; got != 5 {
		t.Errorf("future event counted %d at now, want 5", got)
	}
	// It is counted at now, so it leaves with now's bucket.
	if got := w.Sum(now.Add(61 * time.Minute)).Delivered; got != 0 {
		t.Errorf("future event still counted an hour later: %d", got)
	}
}

func TestWindowOutOfOrderAndReset(t *testing.T) {
	w := NewWindow(24*time.Hour, 24)
	now := t0
	for _, back := range []time.Duration{time.Hour, 5 * time.Hour, 2 * time.Hour, 5 * time.Hour, 23 * time.Hour} {
		w.Add(now.Add(-back), now, Counts{Complaints: 1, Delivered: 10})
	}
	if got := w.Sum(now); got.Complaints != 5 || got.Delivered != 50 {
		t.Fatalf("sum = %+v, want 5 complaints / 50 delivered", got)
	}
	if len(w.buckets) != 4 {
		t.Errorf("buckets = %d, want 4 (two events share one)", len(w.buckets))
	}
	for i := 1; i < len(w.buckets); i++ {
		if w.buckets[i-1].epoch >= w.buckets[i].epoch {
			t.Fatalf("buckets out of order: %+v", w.buckets)
		}
	}
	// 23 h back leaves after 1-2 more hours.
	if got := w.Sum(now.Add(2 * time.Hour)).Complaints; got != 4 {
		t.Errorf("after 2h: %d complaints, want 4", got)
	}
	w.Reset()
	if !w.Empty(now) {
		t.Error("not empty after Reset")
	}
}

func TestWindowRunningTotalMatchesBuckets(t *testing.T) {
	w := NewWindow(time.Hour, 12)
	now := t0
	for i := range 5000 {
		now = now.Add(time.Duration(i%7) * time.Second)
		w.Add(now.Add(-time.Duration(i%900)*time.Second), now, Counts{Delivered: 1, Complaints: uint64(i % 2)})
		if i%250 == 0 {
			got := w.Sum(now)
			var sum Counts
			for _, b := range w.buckets {
				sum.add(b.c)
			}
			if got != sum {
				t.Fatalf("at %d: running total %+v, buckets add up to %+v", i, got, sum)
			}
		}
	}
}
