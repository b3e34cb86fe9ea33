package rawmail

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

// manyParts is a multipart/mixed of size/4096 parts of about 4 KB.
func manyParts(size int) []byte {
	part := "--b\nContent-Type: text/plain\n\n" + strings.Repeat("some text in a part\n", 200) + "\n"
	return lineartest.Repeat("Content-Type: multipart/mixed; boundary=b\n\n", part, "--b--\n", size)
}

// nestedMultiparts nests multiparts ten deep around a large text.
func nestedMultiparts(size int) []byte {
	return nest(size, func(i int, inner string) string {
		return fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n%s\n--b%d--\n", i, i, inner, i)
	})
}

// nestedMessages nests attached messages ten deep around a large text.
func nestedMessages(size int) []byte {
	return nest(size, func(i int, inner string) string {
		return fmt.Sprintf("Subject: level %d\nContent-Type: message/rfc822\n\n%s", i, inner)
	})
}

func nest(size int, wrap func(int, string) string) []byte {
	inner := string(lineartest.Repeat("Content-Type: text/plain\n\n", "a line of the innermost text\n", "", size))
	for i := 0; i < 10; i++ {
		inner = wrap(i, inner)
	}
	return []byte(inner)
}

func longHeaderLine(size int) []byte {
	return lineartest.Repeat("Subject: ", "x", "\n\nbody\n", size)
}

func manyHeaderLines(size int) []byte {
	return lineartest.Repeat("", "X-A: b\n", "\nbody\n", size)
}

func foldedHeader(size int) []byte {
	return lineartest.Repeat("Subject: a", "\n b", "\n\nbody\n", size)
}

func base64Body(size int) []byte {
	return lineartest.Repeat("Content-Transfer-Encoding: base64\n\n", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n", "", size)
}

func quotedPrintableBody(size int) []byte {
	return lineartest.Repeat("Content-Transfer-Encoding: quoted-printable\n\n", "a=3D=\n=C3=A9=\n", "", size)
}

// almostBoundaries is a multipart whose body has many lines that start
// like its delimiter and are not one.
func almostBoundaries(size int) []byte {
	return lineartest.Repeat("Content-Type: multipart/mixed; boundary=boundary\n\n--boundary\n\n", "--boundaryX\n", "--boundary--\n", size)
}

// parseAll parses raw with the default budget, in full and shallow, and
// reads the text of every text part, as the report parsers do.
func parseAll(raw []byte) error {
	for _, parse := range []func([]byte, *Budget) *Part{ParseWith, ParseShallowWith} {
		bud := NewBudget(DefaultLimits())
		parse(raw, bud).Walk(func(q *Part) bool {
			if len(q.Parts) == 0 && q.Message == nil && strings.HasPrefix(q.MediaType, "text/") {
				_ = q.Text()
			}
			return true
		})
		if err := bud.Err(); err != nil {
			return err
		}
	}
	return nil
}

// TestParseLinear feeds ~100 KB and ~1 MB hostile messages of each kind
// and fails when the larger takes more than 15 times as long. The inputs
// are within the default budget, so they are parsed in full.
func TestParseLinear(t *testing.T) {
	for _, c := range []lineartest.Case{
		{Name: "many parts", Build: manyParts, Parse: parseAll},
		{Name: "nested multiparts", Build: nestedMultiparts, Parse: parseAll},
		{Name: "nested messages", Build: nestedMessages, Parse: parseAll},
		{Name: "long header line", Build: longHeaderLine, Parse: parseAll},
		{Name: "many header lines", Build: manyHeaderLines, Parse: parseAll},
		{Name: "folded header", Build: foldedHeader, Parse: parseAll},
		{Name: "base64 body", Build: base64Body, Parse: parseAll},
		{Name: "quoted-printable body", Build: quotedPrintableBody, Parse: parseAll},
		{Name: "almost boundaries", Build: almostBoundaries, Parse: parseAll},
	} {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}

// TestBudget: each limit, when it runs out, gives an error wrapping
// ErrBudgetExceeded that names it, and parsing stops there.
func TestBudget(t *testing.T) {
	tests := []struct {
		name   string
		raw    []byte
		limits func(*Limits)
		says   string
	}{
		{"parts", manyParts(1 << 20), func(l *Limits) { l.Parts = 100 }, "MIME parts"},
		{"depth", nestedMessages(1 << 10), func(l *Limits) { l.Depth = 5 }, "nesting"},
		{"lines", manyHeaderLines(1 << 20), func(l *Limits) { l.Lines = 1000 }, "lines"},
		{"bytes", nestedMultiparts(1 << 20), func(l *Limits) { l.ScanBytes = 4 << 20 }, "bytes scanned"},
	}
	for _, tt := range tests {
		l := DefaultLimits()
		tt.limits(&l)
		bud := NewBudget(l)
		p := ParseWith(tt.raw, bud)
		err := bud.Err()
		if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: err = %v, want ErrBudgetExceeded naming %q", tt.name, err, tt.says)
		}
		if p == nil {
			t.Errorf("%s: no part", tt.name)
		}
		if tt.name == "parts" && len(p.Parts) > 100 {
			t.Errorf("%d parts read with a limit of 100", len(p.Parts))
		}
	}
	// Within the default budget, nothing is exceeded.
	bud := NewBudget(DefaultLimits())
	ParseWith(nestedMessages(1<<20), bud)
	if err := bud.Err(); err != nil {
		t.Fatal(err)
	}
	var nilBudget *Budget
	if nilBudget.Err() != nil || nilBudget.Exceeded() || !nilBudget.Scan(1<<40) {
		t.Error("a nil budget ran out")
	}
}

// TestHeaderFunctionsLinear: media types and encoded words of any length.
func TestHeaderFunctionsLinear(t *testing.T) {
	for _, unit := range []string{"a=b; ", "a=\"\\", "=?", "=?utf-8?q?a?= "} {
		lineartest.Run(t, lineartest.Case{
			Name:  "header value of " + unit,
			Build: func(size int) []byte { return lineartest.Repeat("text/plain; ", unit, "", size) },
			Parse: func(raw []byte) error {
				ParseMediaType(lineartest.String(raw))
				DecodeHeader(lineartest.String(raw))
				return nil
			},
		})
	}
}
