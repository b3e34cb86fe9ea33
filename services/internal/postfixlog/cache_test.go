package postfixlog

import (
	"reflect"
	"testing"
	"time"
)

// cacheTestLines are the corpus (or testdata) logs plus lines that share a
// remembered host/program prefix or timestamp with a neighbour but differ
// right after it.
func cacheTestLines(t *testing.T) []string {
	lines := benchLines(t)
	return append(lines,
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen[3163107]: CONNECT from [1.2.3.4]:5 to [5.6.7.8]:25",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen: CONNECT from [1.2.3.4]:5 to [5.6.7.8]:25",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreenX[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscree[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen x[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helga  postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helg postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.0362+01:00 helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.0362621+01:00 helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.036262+02:00 helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.036262Z helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.03626x+01:00 helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen[]: x",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen[12]x x",
		"Mar 16 18:00:06 helga postfix/postscreen[1]: x",
		"2023-03-16T18:00:06.036262+01:00 helga postfix/postscreen[1]: x",
	)
}

// TestParserCachesAgree checks that the parser's caches (timestamp hour
// and second, host/program prefixes) change nothing: every line parses the
// same with a parser that has seen the lines before it as with a fresh one.
func TestParserCachesAgree(t *testing.T) {
	ref := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	loc := time.FixedZone("test", 3600)
	long := &Parser{Ref: ref, Location: loc}
	for i, line := range cacheTestLines(t) {
		var a, b Line
		okA := long.Parse(line, int64(i), &a)
		okB := (&Parser{Ref: ref, Location: loc}).Parse(line, int64(i), &b)
		if okA != okB {
			t.Fatalf("line %d %q: cached parser says %v, fresh one %v", i, line, okA, okB)
		}
		if !okA {
			continue
		}
		if !a.Time.Equal(b.Time) || a.Time.Format(time.RFC3339Nano) != b.Time.Format(time.RFC3339Nano) {
			t.Fatalf("line %d %q: time %v, fresh parser %v", i, line, a.Time, b.Time)
		}
		a.Time, b.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("line %d %q:\ncached %+v\nfresh  %+v", i, line, a, b)
		}
	}
}

// TestJoinerReuseAgrees checks that ReuseRecords (and the reuse of dropped
// message states, which both joiners do) gives the same records as fresh
// allocations.
func TestJoinerReuseAgrees(t *testing.T) {
	p := &Parser{Ref: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}
	// Small bounds so that states are dropped and reused often.
	cfg := JoinerConfig{MaxMessages: 50, MaxRemoved: 20}
	fresh := NewJoiner(cfg)
	cfg.ReuseRecords = true
	reuse := NewJoiner(cfg)
	lines := benchLines(t)
	n := 0
	for i, line := range lines {
		var l Line
		if !p.Parse(line, int64(i), &l) {
			continue
		}
		a, b := fresh.Add(&l), reuse.Add(&l)
		if (a == nil) != (b == nil) {
			t.Fatalf("line %d %q: records %v and %v", i, line, a, b)
		}
		if a == nil {
			continue
		}
		n++
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("line %d %q:\nfresh  %+v\nreused %+v", i, line, a, b)
		}
	}
	if n == 0 {
		t.Fatal("no records")
	}
	if fresh.Stats() != reuse.Stats() {
		t.Fatalf("stats %+v and %+v", fresh.Stats(), reuse.Stats())
	}
}
