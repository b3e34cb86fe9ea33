// Package lineartest checks that a parser's running time grows linearly
// with its input: it times the parse of a ~100 KB and a ~1 MB input built
// the same way and fails when the larger one takes more than Ratio times
// as long. The two are timed back to back in rounds and the best round
// counts, so a busy machine cannot make a linear parser fail; a quadratic
// one takes ~100x as long and fails whatever the noise. What is timed is
// the CPU time of the parsing thread, after a collection, with the CPU's
// private caches cleared and a heap ballast in place (see Run).
//
// It is a test helper for the parsers of outside input (rawmail, arf, dsn,
// postfixlog, bounceclass); it uses a clock, so it is never imported by
// the parsers themselves.
package lineartest

import (
	"bytes"
	"math"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// Ratio is how much longer the 1 MB input may take than the 100 KB one
// (10x the bytes; the slack covers cache effects and allocation).
const Ratio = 15

// Sizes of the two inputs, in bytes.
const (
	Small = 100 << 10
	Large = 1 << 20
)

// ballastBytes is the size of the heap ballast kept while timing.
const ballastBytes = 256 << 20

// maxRounds is how many times at most the two inputs are timed.
const maxRounds = 10

// Case is one adversarial input family.
type Case struct {
	Name string
	// Build returns an input of about size bytes.
	Build func(size int) []byte
	// Parse parses one input; its error is passed to Check.
	Parse func(raw []byte) error
	// Check, when set, is called with the error of each parse (nil when it
	// succeeded); it fails the test when the result is not the one the
	// case expects (e.g. no budget error for an input meant to be parsed
	// in full). When nil, any error fails the test.
	Check func(t testing.TB, size int, err error)
}

// Run times c.Parse on the small and the large input and fails t when the
// large one takes more than Ratio times as long. It logs both times.
//
// Under the race detector the test is skipped: its cost grows with the
// memory a parse touches, not with the parser's work, so the ratio says
// nothing there. `go tool task linear` (run by CI) runs these tests
// without it.
func Run(t *testing.T, c Case) {
	t.Helper()
	if raceDetector {
		t.Skip("timing under the race detector says nothing about the parser; run without -race (go tool task linear)")
	}
	// A ballast raises the collector's heap goal while timing: with the
	// goal set by the small live heap of a test, the large input's parse
	// would run more collections per byte, and memory freed between runs
	// would go back to the system and fault in again. The ballast is
	// never written, so it costs address space only.
	ballast := make([]byte, ballastBytes)
	defer runtime.KeepAlive(ballast)
	runtime.GC()
	// The small input is timed as one parse of each of Large/Small copies
	// of it, the total divided by their number: the large input is read
	// from memory rather than from the CPU's cache, and so is each copy,
	// where one small input parsed again and again would stay in the
	// cache and look faster per byte than it is.
	small, large := c.Build(Small), c.Build(Large)
	copies := make([][]byte, max(1, len(large)/len(small)))
	for i := range copies {
		copies[i] = bytes.Clone(small)
	}
	// An untimed run first: the heap grows to what the input needs, so
	// the timed runs do not pay for growing it.
	timeOne(t, c, small)
	// Rounds of one timing of the small input (over its copies) and one of
	// the large, back to back, so that both see the same load of the
	// machine; the best round's ratio counts (noise only ever adds time,
	// so one round within the ratio proves it). When the ratio is still
	// far beyond after three rounds (a quadratic parser), the test ends
	// there rather than wait for more.
	var ds, dl time.Duration
	best := math.Inf(1)
	for round := 0; round < maxRounds && best > Ratio && (round < 3 || best < 4*Ratio); round++ {
		var sum time.Duration
		for _, in := range copies {
			sum += timeOne(t, c, in)
		}
		s := sum / time.Duration(len(copies))
		l := timeOne(t, c, large)
		if r := float64(l) / float64(max(s, 1)); r < best {
			best, ds, dl = r, s, l
		}
	}
	t.Logf("%s: %d bytes in %v, %d bytes in %v (x%.1f)", c.Name, len(small), ds, len(large), dl, best)
	if best > Ratio {
		t.Errorf("%s: not linear: %d bytes took %v, %d bytes %v (more than %dx)", c.Name, len(small), ds, len(large), dl, Ratio)
	}
}

// timeOne times one parse: the CPU time of the thread it runs on where
// the system tells it (Linux), so that time the parse spends waiting for a
// CPU on a busy machine is not counted (a long run is preempted more often
// than a short one), else the wall-clock time.
func timeOne(t *testing.T, c Case, in []byte) time.Duration {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	runtime.GC() // the last run's memory is free again, still mapped
	flushCache()
	start, cpu0 := time.Now(), threadCPUTime()
	err := c.Parse(in)
	d := time.Since(start)
	if haveThreadCPUTime {
		d = threadCPUTime() - cpu0
	}
	if c.Check != nil {
		c.Check(t, len(in), err)
	} else if err != nil {
		t.Fatalf("%s: %d bytes: %v", c.Name, len(in), err)
	}
	return d
}

// Repeat returns head, then unit repeated until the result is at least
// size bytes long, then tail.
func Repeat(head, unit, tail string, size int) []byte {
	b := make([]byte, 0, size+len(head)+len(unit)+len(tail))
	b = append(b, head...)
	for len(b) < size-len(tail) {
		b = append(b, unit...)
	}
	return append(b, tail...)
}

// cacheFlusher is larger than the CPU's private caches (L1, L2).
var cacheFlusher = make([]byte, 8<<20)

// flushCache reads and writes cacheFlusher, so that what the last run
// left in the CPU's private caches is gone: a small input and its parse's
// memory would stay there between runs, and a large one cannot, which
// would make a linear parser look slower per byte on the large input.
func flushCache() {
	for i := 0; i < len(cacheFlusher); i += 64 {
		cacheFlusher[i]++
	}
}

// String returns raw as a string without copying it, for parsers that take
// a string: a copy inside the timed parse would be timed too, and copying
// 1 MB (out of the CPU's caches) costs more per byte than 100 KB, which is
// not the parser's doing. The parse must not keep the string, and raw must
// not change while it runs.
func String(raw []byte) string {
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}
