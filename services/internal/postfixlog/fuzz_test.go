package postfixlog

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seedLines returns the hand-written testdata lines, as fuzz seeds.
func seedLines(f *testing.F) []string {
	logs, _ := filepath.Glob(filepath.Join("testdata", "*.log"))
	var lines []string
	for _, path := range logs {
		fh, err := os.Open(path)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
	}
	return lines
}

// FuzzParse: no input panics; a parsed line's fields hold their invariants
// (numbers -1 or more, the queue id and recipient taken from the line);
// and neither the timestamp cache nor parsing into a reused Line changes a
// result (a warm parser reusing one Line and a cold one agree).
func FuzzParse(f *testing.F) {
	for _, s := range seedLines(f) {
		f.Add(s)
	}
	f.Add("<13>1 2025-03-10T09:00:00Z h postfix/smtp 1 - [a b=\"]\\\"\"] 1A2B3C4D5: to=<a>, status=sent (x)")
	f.Add("Mar  2 03:04:05 h postfix/smtp[1]: 1A2B3C4D5: to=<, relay=[, delays=1/2/3/4/5/6, status=")
	warm := &Parser{Ref: ref}
	var primer Line
	warm.Parse("Mar  2 03:04:05 h postfix/qmgr[1]: 1A2B3C4D5: removed", 0, &primer)
	var reused Line // parsed into again and again: its partial resets must leave nothing behind
	f.Fuzz(func(t *testing.T, s string) {
		var b Line
		okA := warm.Parse(s, 1, &reused)
		a := reused
		cold := &Parser{Ref: ref}
		okB := cold.Parse(s, 1, &b)
		if okA != okB || okA && !reflect.DeepEqual(a, b) {
			t.Fatalf("warm and cold parsers disagree on %q:\n%+v\n%+v", s, a, b)
		}
		if !okA {
			return
		}
		if a.RawTime == "" {
			t.Errorf("no time: %+v", a)
		}
		if int(a.Kind) >= len(kindNames) {
			t.Errorf("kind %d", a.Kind)
		}
		if a.Delay < -1 || a.ConnUse < -1 || a.Size < -1 || a.Nrcpt < -1 || a.PID < -1 || a.RelayPort < 0 || a.ClientPort < 0 {
			t.Errorf("negative number: %+v", a)
		}
		for _, d := range a.Delays {
			if d < -1 {
				t.Errorf("delays %v", a.Delays)
			}
		}
		subs := []string{a.QueueID, a.To, a.RawTime, a.Host, a.Message, a.RelayIP, a.ClientIP, a.DSN, a.HeaderValue}
		if a.Host != "" { // an Exim main log line has no tag; Program is "exim"
			subs = append(subs, a.Program)
		}
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				t.Errorf("field %q is not from the line %q", sub, s)
			}
		}
		if a.Kind == KindDelivery && a.Status == "" {
			t.Errorf("delivery without status: %+v", a)
		}
	})
}

// FuzzJoiner: any sequence of lines (split from the input) keeps the
// joiner within its bounds, and every record belongs to the line it came
// from.
func FuzzJoiner(f *testing.F) {
	lines := seedLines(f)
	f.Add(strings.Join(lines, "\n"))
	for i := 0; i+8 <= len(lines); i += 8 {
		// reversed chunks: out-of-order lines
		chunk := append([]string(nil), lines[i:i+8]...)
		for a, b := 0, len(chunk)-1; a < b; a, b = a+1, b-1 {
			chunk[a], chunk[b] = chunk[b], chunk[a]
		}
		f.Add(strings.Join(chunk, "\n"))
	}
	f.Fuzz(func(t *testing.T, data string) {
		cfg := JoinerConfig{MaxMessages: 8, MaxRemoved: 4, MaxAge: time.Hour, RemovedTTL: time.Minute}
		j := NewJoiner(cfg)
		p := &Parser{Ref: ref}
		var l Line
		recs := 0
		for i, s := range strings.Split(data, "\n") {
			if !p.Parse(s, int64(i+1), &l) {
				continue
			}
			r := j.Add(&l)
			switch x := r.(type) {
			case nil:
			case *Delivery:
				recs++
				if x.Pos != int64(i+1) || x.QueueID != l.QueueID || x == nil {
					t.Fatalf("delivery from line %d: %+v", i+1, x)
				}
				if l.Kind != KindDelivery && l.Kind != KindExpired {
					t.Fatalf("delivery from a %v line", l.Kind)
				}
			case *Reject:
				recs++
				if x == nil || x.Pos != int64(i+1) || l.Kind != KindReject {
					t.Fatalf("reject from line %d: %+v", i+1, x)
				}
			default:
				t.Fatalf("record type %T", r)
			}
			st := j.Stats()
			if st.Messages > cfg.MaxMessages+cfg.MaxRemoved+1 || st.Removed > cfg.MaxRemoved {
				t.Fatalf("bounds exceeded: %+v", st)
			}
			if len(j.msgs) != j.active.n+j.removed.n {
				t.Fatalf("map %d, lists %d+%d", len(j.msgs), j.active.n, j.removed.n)
			}
		}
		if st := j.Stats(); int(st.Deliveries+st.Rejects) != recs {
			t.Fatalf("stats %+v, %d records", st, recs)
		}
	})
}
