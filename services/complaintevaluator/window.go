package complaintevaluator

import (
	"time"
)

// Counts are what a window adds up.
type Counts struct {
	Complaints uint64
	Delivered  uint64
	// Hits counts the events of a trigger rule: rejections from one
	// provider, or missing probes at one provider.
	Hits uint64
}

func (c *Counts) add(o Counts) {
	c.Complaints += o.Complaints
	c.Delivered += o.Delivered
	c.Hits += o.Hits
}

func (c *Counts) sub(o Counts) {
	c.Complaints -= o.Complaints
	c.Delivered -= o.Delivered
	c.Hits -= o.Hits
}

func (c Counts) zero() bool { return c == Counts{} }

// Window is a sliding window of Counts: the sum of what was added with an
// event time in the last Length before now. It counts in buckets of
// Length/resolution, so the window slides in steps of one bucket: an event
// leaves the sum between Length and Length+step after its time. It keeps
// only buckets that hold something, in time order, with a running total,
// so a quiet subject costs nothing and a busy one at most resolution
// buckets.
//
// Time comes from the caller: the window never reads a clock, so tests
// drive it with any time they like and a replay of old events counts them
// at their own times.
type Window struct {
	Length time.Duration
	step   int64 // nanoseconds per bucket
	n      int64 // buckets in the window
	// buckets are in ascending epoch order; epoch is time / step.
	buckets []bucket
	total   Counts
}

type bucket struct {
	epoch int64
	c     Counts
}

// NewWindow returns an empty window of the given length, counted in
// resolution buckets (at least 1).
func NewWindow(length time.Duration, resolution int) *Window {
	resolution = max(resolution, 1)
	step := max(int64(length)/int64(resolution), 1)
	n := (int64(length) + step - 1) / step
	return &Window{Length: length, step: step, n: n}
}

// Add counts c at time t, as seen at now. An event older than the window
// is dropped (false); an event from the future (a clock ahead of ours) is
// counted at now.
func (w *Window) Add(t, now time.Time, c Counts) bool {
	cur := w.epoch(now)
	e := w.epoch(t)
	if e > cur {
		e = cur
	}
	if e <= cur-w.n {
		return false
	}
	w.prune(cur)
	// Events arrive nearly in order: search from the newest bucket.
	i := len(w.buckets)
	for i > 0 && w.buckets[i-1].epoch > e {
		i--
	}
	if i > 0 && w.buckets[i-1].epoch == e {
		w.buckets[i-1].c.add(c)
	} else {
		w.buckets = append(w.buckets, bucket{})
		copy(w.buckets[i+1:], w.buckets[i:])
		w.buckets[i] = bucket{epoch: e, c: c}
	}
	w.total.add(c)
	return true
}

// Sum returns the counts in the window ending at now.
func (w *Window) Sum(now time.Time) Counts {
	w.prune(w.epoch(now))
	return w.total
}

// Empty reports whether the window holds nothing at now.
func (w *Window) Empty(now time.Time) bool { return w.Sum(now).zero() }

// Reset forgets everything.
func (w *Window) Reset() {
	w.buckets = w.buckets[:0]
	w.total = Counts{}
}

func (w *Window) epoch(t time.Time) int64 {
	ns := t.UnixNano()
	e := ns / w.step
	if ns < 0 && ns%w.step != 0 {
		e--
	}
	return e
}

// prune drops the buckets that have slid out of the window ending in
// bucket cur.
func (w *Window) prune(cur int64) {
	drop := 0
	for drop < len(w.buckets) && w.buckets[drop].epoch <= cur-w.n {
		w.total.sub(w.buckets[drop].c)
		drop++
	}
	if drop > 0 {
		w.buckets = append(w.buckets[:0], w.buckets[drop:]...)
	}
}
