package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/mailmon/mailmon/services/internal/bounceclass"
)

// rejectionLine is what `mailmon inspect rejection` prints for one input line.
type rejectionLine struct {
	Line      int    `json:"line"`
	Reason    string `json:"reason"`
	Category  string `json:"category"`
	Signature string `json:"signature,omitempty"`
	Code      int    `json:"code,omitempty"`
	Status    string `json:"status,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Matched   bool   `json:"matched"`
	Permanent bool   `json:"permanent"`
	Text      string `json:"text"`
}

// inspectRejection reads one SMTP reply or diagnostic text per line
// ("smtp; 550 5.1.1 <a@b>: ... User unknown", a Postfix "said: ..." text, an
// Exim error) and prints one JSON object per line, in input order; empty
// lines give an object too, so output line N is input line N.
//
// A line longer than maxRejectionLine is cut there (a reply is far
// shorter), so one endless line cannot fill the memory.
func inspectRejection(ctx context.Context, in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := readLineCut(r, maxRejectionLine)
		if line == "" && err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		code, status, text := bounceclass.ParseReply(line)
		res := bounceclass.Classify(bounceclass.Input{Text: text, ReplyCode: code, Status: status})
		if err := enc.Encode(rejectionLine{
			Line: n, Reason: res.Reason, Category: res.Category, Signature: res.Signature,
			Code: res.ReplyCode, Status: res.Status, Rule: res.Rule, Matched: res.Matched,
			Permanent: res.Permanent, Text: text,
		}); err != nil {
			return err
		}
		if err != nil {
			break
		}
	}
	return w.Flush()
}

// maxRejectionLine is the longest rejection text read; the rest of a
// longer line is skipped.
const maxRejectionLine = 1 << 20

// readLineCut reads one line like ReadString('\n'), keeping at most max
// bytes of it (the rest up to the line end is read and dropped).
func readLineCut(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if room := max - len(b); room > 0 {
			b = append(b, chunk[:min(len(chunk), room)]...)
		}
		if err != bufio.ErrBufferFull {
			return string(b), err
		}
	}
}
