package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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
	// Stage is the SMTP phase the reply answered as given with the line
	// (its "command") or by -stage; omitted when none was given.
	Stage string `json:"stage,omitempty"`
	// Error says why a line's JSON or its command was not understood; the
	// line is then classified without a stage.
	Error string `json:"error,omitempty"`
	Text  string `json:"text"`
}

// rejectionInput is the JSON form of an input line: the reply text and the
// SMTP command it answered ("DATA", "RCPT", "MAIL", "HELO", "CONNECT").
type rejectionInput struct {
	Text    string `json:"text"`
	Command string `json:"command"`
}

// rejectionFlags reads `mailmon inspect rejection`'s options (before FILE):
// -stage COMMAND, the SMTP command every plain-text line answered. A JSON
// line's own "command" wins.
func rejectionFlags(args []string, errOut io.Writer) (func(ctx context.Context, in io.Reader, out io.Writer) error, error) {
	fs := flag.NewFlagSet("mailmon inspect rejection", flag.ContinueOnError)
	fs.SetOutput(errOut)
	stage := fs.String("stage", "", "the SMTP command the plain-text replies answered: DATA, RCPT, MAIL, HELO or CONNECT")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q before FILE", fs.Arg(0))
	}
	phase, ok := bounceclass.PhaseOf(*stage)
	if !ok {
		return nil, fmt.Errorf("-stage %q: want DATA, RCPT, MAIL, HELO or CONNECT", *stage)
	}
	return func(ctx context.Context, in io.Reader, out io.Writer) error {
		return inspectRejectionStage(ctx, in, out, phase)
	}, nil
}

// inspectRejection reads one SMTP reply or diagnostic text per line
// ("smtp; 550 5.1.1 <a@b>: ... User unknown", a Postfix "said: ..." text, an
// Exim error) and prints one JSON object per line, in input order; empty
// lines give an object too, so output line N is input line N.
//
// A line that starts with "{" is read as JSON, {"text": ..., "command":
// "DATA"}: the command is the SMTP stage the reply answered, which the
// text alone often does not tell ("User unknown" after the end of DATA is
// a content filter's verdict). A line that is not such JSON is read as
// plain text, with an "error" saying why.
//
// A line longer than maxRejectionLine is cut there (a reply is far
// shorter), so one endless line cannot fill the memory.
func inspectRejection(ctx context.Context, in io.Reader, out io.Writer) error {
	return inspectRejectionStage(ctx, in, out, "")
}

// inspectRejectionStage is inspectRejection with a stage (a bounceclass
// phase) for the plain-text lines.
func inspectRejectionStage(ctx context.Context, in io.Reader, out io.Writer, stage string) error {
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
		phase, problem := stage, ""
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "{") {
			var ri rejectionInput
			if jerr := json.Unmarshal([]byte(t), &ri); jerr != nil {
				problem = "not a JSON line, read as text: " + jerr.Error()
			} else {
				line = ri.Text
				if p, ok := bounceclass.PhaseOf(ri.Command); !ok {
					problem = fmt.Sprintf("unknown command %.40q, classified without a stage", ri.Command)
					phase = ""
				} else if p != "" {
					phase = p
				}
			}
		}
		code, status, text := bounceclass.ParseReply(line)
		res := bounceclass.Classify(bounceclass.Input{Text: text, ReplyCode: code, Status: status, Phase: phase})
		if err := enc.Encode(rejectionLine{
			Line: n, Reason: res.Reason, Category: res.Category, Signature: res.Signature,
			Code: res.ReplyCode, Status: res.Status, Rule: res.Rule, Matched: res.Matched,
			Permanent: res.Permanent, Stage: phase, Error: problem, Text: text,
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
