package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mailmon/mailmon/services/internal/postfixlog"
)

// postfixLogRecord is one line of `mailmon inspect postfix-log`: a delivery
// attempt, an expiry or a reject, with the field names of the corpus answer
// key (ts, to, orig_to, relay, delay, delays, dsn, status, reply, ...) plus
// the joined message context and the classification.
type postfixLogRecord struct {
	Event     string    `json:"event"` // delivery, expired, reject
	Line      int64     `json:"line"`
	TS        string    `json:"ts"`
	Time      string    `json:"time"`
	MTA       string    `json:"mta"`
	Host      string    `json:"host"`
	Program   string    `json:"program"`
	Service   string    `json:"service"`
	Instance  string    `json:"instance"`
	PID       *int      `json:"pid"`
	QueueID   string    `json:"queue_id"`
	Recipient string    `json:"recipient"`
	To        *string   `json:"to"`
	OrigTo    *string   `json:"orig_to"`
	Pending   []string  `json:"pending,omitempty"`
	Relay     *string   `json:"relay"`
	RelayHost string    `json:"relay_host,omitempty"`
	RelayIP   string    `json:"relay_ip,omitempty"`
	RelayPath string    `json:"relay_path,omitempty"`
	RelayPort int       `json:"relay_port,omitempty"`
	ConnUse   *int      `json:"conn_use"`
	Delay     *float64  `json:"delay"`
	Delays    []float64 `json:"delays"`
	TLS       string    `json:"tls,omitempty"`
	DSN       *string   `json:"dsn"`
	Status    string    `json:"status"`
	Reply     *string   `json:"reply"`
	Truncated bool      `json:"truncated,omitempty"`

	RemoteReply string `json:"remote_reply,omitempty"`
	ReplyCode   int    `json:"reply_code,omitempty"`
	Command     string `json:"command,omitempty"`
	QueuedAs    string `json:"queued_as,omitempty"`
	Router      string `json:"router,omitempty"`
	Transport   string `json:"transport,omitempty"`

	Reason    string `json:"reason"`
	Category  string `json:"category"`
	Signature string `json:"signature,omitempty"`
	Rule      string `json:"rule,omitempty"`

	// reject fields
	Action     string `json:"action,omitempty"`
	Stage      string `json:"stage,omitempty"`
	ClientPort int    `json:"client_port,omitempty"`
	Helo       string `json:"helo,omitempty"`
	Proto      string `json:"proto,omitempty"`

	MessageID         *string `json:"message_id"`
	TrackingHeader    *string `json:"tracking_header"`
	TrackingTruncated bool    `json:"tracking_truncated,omitempty"`
	Sender            *string `json:"sender"`
	Size              *int64  `json:"size"`
	Nrcpt             *int    `json:"nrcpt"`
	ClientHost        string  `json:"client_host,omitempty"`
	ClientIP          string  `json:"client_ip,omitempty"`
	SASLUsername      string  `json:"sasl_username,omitempty"`
	ParentQueueID     string  `json:"parent_queue_id,omitempty"`

	// scratch storage the optional fields above point to
	pidV, connUseV, nrcptV                                             int
	sizeV                                                              int64
	delayV                                                             float64
	delaysV                                                            [4]float64
	toV, origToV, relayV, dsnV, replyV, messageIDV, trackingV, senderV string
}

// inspectPostfixLog reads a Postfix or Exim log and prints one JSON object
// per delivery attempt, expiry and reject, in log order. RFC 3164 years are
// inferred from the file's modification time (now for stdin), in the local
// zone.
func inspectPostfixLog(ctx context.Context, in io.Reader, out io.Writer) error {
	ref := time.Now()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			ref = st.ModTime()
		}
	}
	p := &postfixlog.Parser{Ref: ref, Location: time.Local}
	// Each record is printed before the next line is added.
	j := postfixlog.NewJoiner(postfixlog.JoinerConfig{ReuseRecords: true})
	bw := bufio.NewWriterSize(out, 64<<10)
	var l postfixlog.Line
	var pos int64
	var encErr error
	var buf []byte
	var o postfixLogRecord
	each := func(fn func(string) bool) error { return eachLogLine(in, fn) }
	if f, ok := in.(*os.File); ok {
		each = func(fn func(string) bool) error {
			if mapped, err := eachMappedLine(f, fn); mapped {
				return err
			}
			return eachLogLine(in, fn)
		}
	}
	var stopped error
	err := each(func(line string) bool {
		pos++
		if pos%1024 == 0 {
			// Often enough to stop within a few milliseconds of a signal.
			if stopped = ctx.Err(); stopped != nil {
				return false
			}
		}
		if !p.Parse(line, pos, &l) {
			return true
		}
		if rec := j.Add(&l); rec != nil {
			// The record points into the line, which is valid only now.
			fillPostfixLogRecord(&o, rec)
			buf = appendPostfixLogRecord(buf[:0], &o)
			_, encErr = bw.Write(buf)
		}
		return encErr == nil
	})
	if err != nil {
		return err
	}
	if encErr != nil {
		return encErr
	}
	if stopped != nil {
		bw.Flush() // what was printed so far
		return stopped
	}
	return bw.Flush()
}

// eachLogLine calls fn with every line of r (without its line ending), in
// order, until fn returns false. A line is valid only during its call: it
// is read in place from one reused 1 MiB buffer (the parser and joiner copy
// what they keep), so reading allocates nothing per line. A longer line is
// cut at 1 MiB.
func eachLogLine(r io.Reader, fn func(string) bool) error {
	buf := make([]byte, 1<<20)
	have := 0
	for {
		n, err := io.ReadFull(r, buf[have:])
		have += n
		eof := err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return err
		}
		cut := bytes.LastIndexByte(buf[:have], '\n') + 1
		if cut == 0 && !eof {
			// A line longer than the buffer: keep its start, skip the rest.
			if !fn(unsafe.String(&buf[0], have)) {
				return nil
			}
			have = 0
			for {
				n, err := r.Read(buf)
				if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
					have = copy(buf, buf[i+1:n])
					break
				}
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
			}
			continue
		}
		if eof {
			cut = have
		}
		if cut > 0 {
			chunk := unsafe.String(&buf[0], cut)
			for chunk != "" {
				line := chunk
				if i := strings.IndexByte(chunk, '\n'); i >= 0 {
					line, chunk = chunk[:i], chunk[i+1:]
				} else {
					chunk = ""
				}
				if !fn(line) {
					return nil
				}
			}
		}
		have = copy(buf, buf[cut:have])
		if eof {
			return nil
		}
	}
}

// fillPostfixLogRecord sets o (reset first) from a record. Optional values
// point into o's own scratch fields, so filling allocates nothing but the
// time text.
func fillPostfixLogRecord(o *postfixLogRecord, rec postfixlog.Record) {
	*o = postfixLogRecord{}
	str := func(dst *string, v string) *string {
		if v == "" {
			return nil
		}
		*dst = v
		return dst
	}
	num := func(dst *int, v int) *int {
		if v < 0 {
			return nil
		}
		*dst = v
		return dst
	}
	var ctx postfixlog.MessageContext
	switch r := rec.(type) {
	case *postfixlog.Delivery:
		o.Event, o.Line, o.TS, o.Time = "delivery", r.Pos, r.RawTime, r.Time.Format(time.RFC3339Nano)
		o.MTA, o.Host, o.Program, o.Service, o.Instance = r.MTA, r.Host, r.Program, r.Agent, r.Instance
		o.PID, o.QueueID, o.Recipient, o.Pending = num(&o.pidV, r.PID), r.QueueID, r.Recipient, r.Pending
		o.RelayHost, o.RelayIP, o.RelayPath, o.RelayPort = r.RelayHost, r.RelayIP, r.RelayPath, r.RelayPort
		o.ConnUse, o.TLS, o.DSN, o.Status = num(&o.connUseV, r.ConnUse), r.TLS, str(&o.dsnV, r.DSN), r.Status
		o.Truncated, o.ReplyCode = r.Truncated, r.ReplyCode
		if r.RemoteReply != r.Reply {
			o.RemoteReply = r.RemoteReply // only when Postfix's wording was taken off
		}
		o.Command, o.QueuedAs, o.Router, o.Transport = r.Command, r.QueuedAs, r.Router, r.Transport
		o.Reason, o.Category = r.Classification.Reason, r.Classification.Category
		o.Signature, o.Rule = r.Classification.Signature, r.Classification.Rule
		if r.Status == "expired" && r.Agent == "qmgr" {
			o.Event = "expired"
		} else {
			o.toV = r.Recipient
			o.To = &o.toV
		}
		o.OrigTo = str(&o.origToV, r.OrigRecipient)
		o.Relay = str(&o.relayV, r.Relay)
		if r.Delay >= 0 {
			o.delayV = r.Delay
			o.Delay = &o.delayV
		}
		if r.Delays[0] >= 0 && r.Delays[1] >= 0 && r.Delays[2] >= 0 && r.Delays[3] >= 0 {
			o.delaysV = r.Delays
			o.Delays = o.delaysV[:]
		}
		if (r.Reply != "" || r.Status != "expired") && !(r.Reply == "" && r.MTA == "exim") {
			o.replyV = r.Reply
			o.Reply = &o.replyV
		}
		ctx = r.MessageContext
	case *postfixlog.Reject:
		o.Event, o.Line, o.TS, o.Time = "reject", r.Pos, r.RawTime, r.Time.Format(time.RFC3339Nano)
		o.MTA, o.Host, o.Program, o.Service, o.Instance = r.MTA, r.Host, r.Program, r.Agent, r.Instance
		o.PID, o.QueueID, o.Recipient, o.To = num(&o.pidV, r.PID), r.QueueID, r.Recipient, str(&o.toV, r.Recipient)
		o.DSN, o.Status, o.ReplyCode = str(&o.dsnV, r.DSN), "rejected", r.ReplyCode
		o.replyV = r.Reply
		o.Reply = &o.replyV
		o.Action, o.Stage, o.ClientPort, o.Helo, o.Proto = r.Action, r.Stage, r.ClientPort, r.Helo, r.Proto
		o.Reason, o.Category = r.Classification.Reason, r.Classification.Category
		o.Signature, o.Rule = r.Classification.Signature, r.Classification.Rule
		ctx = r.MessageContext
		if r.SenderSet {
			ctx.Sender, ctx.SenderSet = r.Sender, true
		}
		ctx.ClientHost, ctx.ClientIP = r.ClientHost, r.ClientIP
	}
	if ctx.MessageIDSet || ctx.MessageID != "" {
		o.messageIDV = ctx.MessageID
		o.MessageID = &o.messageIDV
	}
	o.TrackingHeader = str(&o.trackingV, ctx.TrackingHeader)
	o.TrackingTruncated = ctx.TrackingTruncated
	if ctx.SenderSet {
		o.senderV = ctx.Sender
		o.Sender = &o.senderV
	}
	if ctx.Size >= 0 && (ctx.SenderSet || ctx.Size > 0) {
		o.sizeV = ctx.Size
		o.Size = &o.sizeV
	}
	if ctx.Nrcpt > 0 {
		o.nrcptV = ctx.Nrcpt
		o.Nrcpt = &o.nrcptV
	}
	o.ClientHost, o.ClientIP = ctx.ClientHost, ctx.ClientIP
	o.SASLUsername, o.ParentQueueID = ctx.SASLUsername, ctx.ParentQueueID
}

// appendPostfixLogRecord appends o as one JSON line, exactly as
// encoding/json (SetEscapeHTML(false)) writes postfixLogRecord, without
// reflection: a log of millions of lines prints tens of thousands of
// records, and reflection was a fifth of the run.
func appendPostfixLogRecord(b []byte, o *postfixLogRecord) []byte {
	w := pfJSON{b: append(b, '{')}
	w.str("event", o.Event)
	w.int("line", o.Line)
	w.str("ts", o.TS)
	w.str("time", o.Time)
	w.str("mta", o.MTA)
	w.str("host", o.Host)
	w.str("program", o.Program)
	w.str("service", o.Service)
	w.str("instance", o.Instance)
	w.optInt("pid", o.PID)
	w.str("queue_id", o.QueueID)
	w.str("recipient", o.Recipient)
	w.optStr("to", o.To)
	w.optStr("orig_to", o.OrigTo)
	if len(o.Pending) > 0 {
		w.key("pending")
		w.b = append(w.b, '[')
		for i, p := range o.Pending {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendJSONStr(w.b, p)
		}
		w.b = append(w.b, ']')
	}
	w.optStr("relay", o.Relay)
	w.omitStr("relay_host", o.RelayHost)
	w.omitStr("relay_ip", o.RelayIP)
	w.omitStr("relay_path", o.RelayPath)
	w.omitInt("relay_port", o.RelayPort)
	w.optInt("conn_use", o.ConnUse)
	w.key("delay")
	if o.Delay == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = appendJSONFloat(w.b, *o.Delay)
	}
	w.key("delays")
	if o.Delays == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, '[')
		for i, d := range o.Delays {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendJSONFloat(w.b, d)
		}
		w.b = append(w.b, ']')
	}
	w.omitStr("tls", o.TLS)
	w.optStr("dsn", o.DSN)
	w.str("status", o.Status)
	w.optStr("reply", o.Reply)
	w.omitBool("truncated", o.Truncated)
	w.omitStr("remote_reply", o.RemoteReply)
	w.omitInt("reply_code", o.ReplyCode)
	w.omitStr("command", o.Command)
	w.omitStr("queued_as", o.QueuedAs)
	w.omitStr("router", o.Router)
	w.omitStr("transport", o.Transport)
	w.str("reason", o.Reason)
	w.str("category", o.Category)
	w.omitStr("signature", o.Signature)
	w.omitStr("rule", o.Rule)
	w.omitStr("action", o.Action)
	w.omitStr("stage", o.Stage)
	w.omitInt("client_port", o.ClientPort)
	w.omitStr("helo", o.Helo)
	w.omitStr("proto", o.Proto)
	w.optStr("message_id", o.MessageID)
	w.optStr("tracking_header", o.TrackingHeader)
	w.omitBool("tracking_truncated", o.TrackingTruncated)
	w.optStr("sender", o.Sender)
	w.key("size")
	if o.Size == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = strconv.AppendInt(w.b, *o.Size, 10)
	}
	w.optInt("nrcpt", o.Nrcpt)
	w.omitStr("client_host", o.ClientHost)
	w.omitStr("client_ip", o.ClientIP)
	w.omitStr("sasl_username", o.SASLUsername)
	w.omitStr("parent_queue_id", o.ParentQueueID)
	return append(w.b, '}', '\n')
}

type pfJSON struct {
	b    []byte
	more bool
}

func (w *pfJSON) key(k string) {
	if w.more {
		w.b = append(w.b, ',')
	}
	w.more = true
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *pfJSON) str(k, v string) {
	w.key(k)
	w.b = appendJSONStr(w.b, v)
}

func (w *pfJSON) omitStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *pfJSON) optStr(k string, v *string) {
	w.key(k)
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = appendJSONStr(w.b, *v)
}

func (w *pfJSON) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *pfJSON) omitInt(k string, v int) {
	if v != 0 {
		w.int(k, int64(v))
	}
}

func (w *pfJSON) optInt(k string, v *int) {
	w.key(k)
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = strconv.AppendInt(w.b, int64(*v), 10)
}

func (w *pfJSON) omitBool(k string, v bool) {
	if v {
		w.key(k)
		w.b = append(w.b, "true"...)
	}
}

// appendJSONFloat writes a float64 as encoding/json does.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // encoding/json refuses these; never produced
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes appendJSONStr copies unescaped: printable
// ASCII but '"' and '\\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONStr writes s as a JSON string the way encoding/json does with
// HTML escaping off: '"', '\\' and control characters escaped, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip the bytes written as they are with one table load each.
		for i < len(s) && jsonPlain[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
