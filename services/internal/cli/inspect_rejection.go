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
func inspectRejection(ctx context.Context, in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
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
