package rawmail

import (
	"errors"
	"fmt"
)

// ErrBudgetExceeded is the error (wrapped, with what ran out) of a message
// that costs more work to read than its Budget allows. Every parser of
// outside input built on this package (arf, dsn) returns it, so a caller
// checks it with errors.Is and treats the message as unreadable: the
// fbl-ingester dead-letters it with the error as the reason.
var ErrBudgetExceeded = errors.New("parse work budget exceeded")

// Limits bound the work of reading one message. The parsers are linear in
// their input, so work grows with size; the limits end a message that is
// pathological (millions of lines, thousands of parts, deep nesting)
// after a bounded amount of work instead of letting it hold a worker.
// Work is counted, never timed: the packages have no clock.
type Limits struct {
	// ScanBytes is how many bytes all passes over the message may read
	// together (a byte read by three passes counts three times).
	ScanBytes int64
	// Lines is how many lines may be read as header or report fields, in
	// all parts and quoted headers together.
	Lines int
	// Parts is how many MIME parts (attached messages included) the
	// message may have.
	Parts int
	// Depth is how deep multiparts and attached messages may nest.
	Depth int
}

// DefaultLimits are generous for every real report and bounce (the
// largest in the shared corpora read under 1/100 of each) and stop a
// hostile 10 MiB message after well under a second of work.
func DefaultLimits() Limits {
	return Limits{
		ScanBytes: 256 << 20,
		Lines:     500_000,
		Parts:     MaxParts,
		Depth:     MaxDepth,
	}
}

// Budget counts the work spent on one message against its Limits. A nil
// *Budget counts nothing and never runs out (the package then only caps
// parts and depth as Parse always did). A Budget is used by one parse at a
// time.
type Budget struct {
	limits  Limits
	scanned int64
	lines   int
	parts   int
	err     error
}

// NewBudget returns a budget with nothing spent.
func NewBudget(l Limits) *Budget { return &Budget{limits: l} }

// Err returns nil while the budget holds, else an error wrapping
// ErrBudgetExceeded that names the first limit that ran out.
func (b *Budget) Err() error {
	if b == nil {
		return nil
	}
	return b.err
}

// Exceeded reports whether some limit ran out.
func (b *Budget) Exceeded() bool { return b != nil && b.err != nil }

// Used returns the work spent so far, in the shape of Limits.
func (b *Budget) Used() Limits {
	if b == nil {
		return Limits{}
	}
	return Limits{ScanBytes: b.scanned, Lines: b.lines, Parts: b.parts}
}

func (b *Budget) exceed(what string, limit int64) bool {
	if b.err == nil {
		b.err = fmt.Errorf("%w: more than %d %s", ErrBudgetExceeded, limit, what)
	}
	return false
}

// Scan charges n bytes read and reports whether the budget still holds.
func (b *Budget) Scan(n int) bool {
	if b == nil {
		return true
	}
	b.scanned += int64(n)
	if b.scanned > b.limits.ScanBytes {
		return b.exceed("bytes scanned", b.limits.ScanBytes)
	}
	return b.err == nil
}

// Lines charges n lines read as fields and reports whether the budget
// still holds.
func (b *Budget) Lines(n int) bool {
	if b == nil {
		return true
	}
	b.lines += n
	if b.lines > b.limits.Lines {
		return b.exceed("header or field lines", int64(b.limits.Lines))
	}
	return b.err == nil
}

// part charges one MIME part at depth and reports whether the budget
// still holds. Without a budget, the package caps MaxParts and MaxDepth.
func (b *Budget) part(count, depth int) bool {
	if b == nil {
		return count < MaxParts && depth <= MaxDepth
	}
	b.parts++
	if b.parts > b.limits.Parts {
		return b.exceed("MIME parts", int64(b.limits.Parts))
	}
	if depth > b.limits.Depth {
		return b.exceed("levels of MIME nesting", int64(b.limits.Depth))
	}
	return b.err == nil
}
