package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"time"
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
	enc := newPostfixLogEncoder(bw)
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
			encErr = enc.Encode(&o)
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

// newPostfixLogEncoder returns the encoder that prints postfixLogRecords:
// one JSON object per line, with HTML escaping off (a reply's "<x@y>"
// stays readable). It is encoding/json's: goccy/go-json v0.10 writes
// exponents as "1e-07" where encoding/json writes "1e-7", and a delay of a
// tenth of a microsecond would print differently.
func newPostfixLogEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
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
	var h postfixlog.LogHeader
	var ctx postfixlog.MessageContext
	switch r := rec.(type) {
	case *postfixlog.Delivery:
		h = r.LogHeader
		o.Event, o.Recipient, o.Pending = "delivery", r.Recipient, r.Pending
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
		h = r.LogHeader
		o.Event, o.Recipient, o.To = "reject", r.Recipient, str(&o.toV, r.Recipient)
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
	o.Line, o.TS, o.Time = h.Pos, h.RawTime, h.Time.Format(time.RFC3339Nano)
	o.MTA, o.Host, o.Program, o.Service, o.Instance = h.MTA, h.Host, h.Program, h.Agent, h.Instance
	o.PID, o.QueueID = num(&o.pidV, h.PID), h.QueueID
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
