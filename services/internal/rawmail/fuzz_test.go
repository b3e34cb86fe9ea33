package rawmail

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// tightLimits are small enough that fuzzed inputs run into them.
var tightLimits = Limits{ScanBytes: 8 << 10, Lines: 200, Parts: 8, Depth: 3}

// FuzzParse feeds arbitrary bytes to Parse and ParseShallow: they must
// never panic, the walk must end, and the part count stays bounded. With a
// budget: the work counted is linear in the input (a few passes per
// nesting level), the only error is a budget error, parts and depth stay
// within the limits, and parsing stops soon after a limit runs out.
func FuzzParse(f *testing.F) {
	f.Add([]byte(nested))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n"))
	f.Add([]byte("Content-Transfer-Encoding: base64\n\n====\n"))
	f.Add([]byte("Content-Transfer-Encoding: quoted-printable\n\n=\n=4\n"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\nSubject: x\n y\n--a--\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, p := range []*Part{Parse(raw), ParseShallow(raw)} {
			n := 0
			p.Walk(func(q *Part) bool {
				n++
				_ = q.Text()
				q.Full()
				return true
			})
			if n > 2*MaxParts+2 {
				t.Fatalf("%d parts", n)
			}
		}
		for _, parse := range []func([]byte, *Budget) *Part{ParseWith, ParseShallowWith} {
			bud := NewBudget(DefaultLimits())
			parse(raw, bud)
			if err := bud.Err(); err != nil && !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("error that is not a budget error: %v", err)
			}
			// Each level reads a byte at most 4 times (header, transfer
			// decoding, boundary search, and the header of an attached
			// message read again in full).
			if used, max := bud.Used().ScanBytes, int64(4*(MaxDepth+2))*int64(len(raw)+1); used > max {
				t.Fatalf("%d bytes scanned for a %d-byte message (more than %d)", used, len(raw), max)
			}

			tight := NewBudget(tightLimits)
			p := parse(raw, tight)
			used := tight.Used()
			if used.ScanBytes > tightLimits.ScanBytes+int64(2*len(raw)) {
				t.Fatalf("kept scanning after the budget ran out: %d bytes (limit %d, message %d)", used.ScanBytes, tightLimits.ScanBytes, len(raw))
			}
			if used.Parts > tightLimits.Parts+1 {
				t.Fatalf("%d parts read with a limit of %d", used.Parts, tightLimits.Parts)
			}
			depth := 0
			var walk func(q *Part, d int)
			walk = func(q *Part, d int) {
				depth = max(depth, d)
				for _, c := range q.Parts {
					walk(c, d+1)
				}
				if q.Message != nil {
					walk(q.Message, d+1)
				}
			}
			walk(p, 0)
			if depth > tightLimits.Depth {
				t.Fatalf("nested %d deep with a limit of %d", depth, tightLimits.Depth)
			}
		}
		ParseDate(string(raw))
		DecodeHeader(string(raw))
	})
}

// FuzzParseHeader checks ParseHeader against the way it found the end of
// a header block before it read each block once (the first blank line,
// then the field rules line by line over a copy of everything up to it):
// same fields, same body. And HeaderLen agrees with it.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		"From: a\nx\n", "Subject: a\n b\n\tc\n\nbody", "From x Thu Apr 29 16:51:04 2007\nTo: y\n\n",
		"Content-Type: text/plain;\nboundary=x\n\n", "A: 1\r\n\r\nB", " x\nA: 1\n", "A:\n\nB: 2\n",
		"X-Long" + strings.Repeat("a", 90) + ": v\n", ">From y\nFrom z\nA: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, rest := ParseHeader(b)
		end := len(b)
		if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
			end = i + 2
		}
		if i := bytes.Index(b[:end], []byte("\n\r\n")); i >= 0 {
			end = i + 3
		}
		wantH, n := parseHeaderString(string(b[:end]), 16)
		if !reflect.DeepEqual(h, wantH) && (len(h) > 0 || len(wantH) > 0) {
			t.Fatalf("fields %q, want %q", h, wantH)
		}
		if len(b)-len(rest) != n {
			t.Fatalf("body at %d, want %d", len(b)-len(rest), n)
		}
		if hn, lines := HeaderLen(b); hn != n || lines < len(h) {
			t.Fatalf("HeaderLen = %d, %d lines; ParseHeader read %d bytes, %d fields", hn, lines, n, len(h))
		}
	})
}

// FuzzParseDate checks that a parsed date formats and parses back.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Tue, 19 Jan 2016 14:32:40 -0500 (EST)", "2016-01-19T14:32:40Z", "Thu Apr 29 16:51:04 2007", "3/09/2016 8:05:56 PM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDate(s)
		if !ok {
			return
		}
		if d.Location().String() != "UTC" {
			t.Fatalf("ParseDate(%q) not in UTC", s)
		}
		if again, ok := ParseDate(d.Format("Mon, 2 Jan 2006 15:04:05 -0700")); !ok || !again.Equal(d.Truncate(1e9)) {
			t.Fatalf("ParseDate(%q) = %v does not round-trip (%v)", s, d, again)
		}
	})
}
