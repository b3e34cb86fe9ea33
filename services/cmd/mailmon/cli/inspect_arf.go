package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// maxInspectBytes bounds what `mailmon inspect arf|bounce` reads of one
// message; reports and bounces are far smaller.
const maxInspectBytes = 64 << 20

// inspectARF prints one JSON object: the fields of a feedback report (or
// is_arf=false and the non-ARF format it recognised) and the keys it can
// be traced by. The tracking header is printed raw, unverified.
// An mbox (messages each after a "From " line, as mail clients export a
// folder) read from standard input or from a file named *.mbox or *mbox
// prints one object per message; any other file is one message, even when
// it starts with an mbox "From " line (mboxo does not quote "From " lines
// in bodies, so splitting a lone message could cut it in two).
//
// A message that costs more work than the parser's budget (see
// rawmail.Limits) prints nothing; its error goes to the error output with
// its number, the next message is read, and the command fails at the end.
func inspectARF(ctx context.Context, in io.Reader, out io.Writer) error {
	raw, err := readMessage(in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return eachMessage(ctx, in, raw, func(m []byte) error {
		rep, err := arf.Parse(m)
		if err != nil {
			return err
		}
		return enc.Encode(rep.View())
	})
}

// unreadableError is a message a parser gave up on; the messages after it
// are still read.
type unreadableError struct{ err error }

func (e unreadableError) Error() string { return e.err.Error() }
func (e unreadableError) Unwrap() error { return e.err }

// eachMessage calls fn for every message of raw (see messagesOf) until ctx
// is done. A parse error of one message is reported and the next message
// is read; the first one is returned at the end, with how many there were.
func eachMessage(ctx context.Context, in io.Reader, raw []byte, fn func([]byte) error) error {
	var first error
	failed := 0
	msgs := messagesOf(in, raw)
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fn(m)
		if errors.Is(err, rawmail.ErrBudgetExceeded) {
			failed++
			if first == nil {
				first = fmt.Errorf("message %d of %d: %w", i+1, len(msgs), err)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	if failed > 1 {
		return fmt.Errorf("%d messages not read; the first: %w", failed, first)
	}
	return first
}

// readMessage reads one message (or mbox), refusing one larger than
// maxInspectBytes.
func readMessage(in io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() <= maxInspectBytes {
			buf.Grow(int(st.Size()) + 512)
		}
	}
	if _, err := buf.ReadFrom(io.LimitReader(in, maxInspectBytes+1)); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	if len(raw) > maxInspectBytes {
		return nil, fmt.Errorf("message larger than %d bytes", maxInspectBytes)
	}
	return raw, nil
}

// messagesOf returns the messages to inspect: raw split as an mbox when it
// came from standard input or an mbox file, else raw as one message.
func messagesOf(in io.Reader, raw []byte) [][]byte {
	if f, ok := in.(*os.File); ok {
		name := strings.ToLower(f.Name())
		if f != os.Stdin && name != "/dev/stdin" && !strings.HasSuffix(name, "mbox") {
			return [][]byte{raw}
		}
	}
	return splitMbox(raw)
}

// reMboxFrom matches the "From " line that starts a message in an mbox:
// "From sender Thu Apr 29 16:51:04 2007" (the sender may be empty or
// MAILER-DAEMON, the date in asctime form).
var reMboxFrom = regexp.MustCompile(`^From \S*\s+(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d`)

// splitMbox splits an mbox into its messages. Input that does not start
// with an mbox "From " line is one message. A new message starts at a
// "From " line with an asctime date after a blank line; quoted ">From "
// lines are unquoted one level (mboxrd). Messages share raw's memory
// unless they had lines to unquote.
func splitMbox(raw []byte) [][]byte {
	if !reMboxFrom.Match(firstLine(raw)) {
		return [][]byte{raw}
	}
	var msgs [][]byte
	start := -1 // start of the current message's first line
	quoted := false
	blank := true
	emit := func(end int) {
		if start < 0 {
			return
		}
		m := raw[start:end]
		if quoted {
			m = unquoteFrom(m)
		}
		msgs = append(msgs, m)
	}
	for pos := 0; pos < len(raw); {
		end := bytes.IndexByte(raw[pos:], '\n')
		next := len(raw)
		if end >= 0 {
			next = pos + end + 1
		}
		line := raw[pos:next]
		if blank && bytes.HasPrefix(line, []byte("From ")) && reMboxFrom.Match(line) {
			emit(pos)
			start, quoted, blank = next, false, false
			pos = next
			continue
		}
		t := bytes.TrimRight(line, "\r\n")
		blank = len(t) == 0
		if len(t) > 5 && t[0] == '>' && bytes.HasPrefix(bytes.TrimLeft(t, ">"), []byte("From ")) {
			quoted = true
		}
		pos = next
	}
	emit(len(raw))
	return msgs
}

// unquoteFrom removes one ">" from lines that are ">From " quoted
// (mboxrd).
func unquoteFrom(m []byte) []byte {
	out := make([]byte, 0, len(m))
	for len(m) > 0 {
		line := m
		if i := bytes.IndexByte(m, '\n'); i >= 0 {
			line, m = m[:i+1], m[i+1:]
		} else {
			m = nil
		}
		if len(line) > 5 && line[0] == '>' && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			line = line[1:]
		}
		out = append(out, line...)
	}
	return out
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}
