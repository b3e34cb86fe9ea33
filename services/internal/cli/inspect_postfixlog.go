package cli

import (
	"bufio"
	"bytes"
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
}

// inspectPostfixLog reads a Postfix or Exim log and prints one JSON object
// per delivery attempt, expiry and reject, in log order. RFC 3164 years are
// inferred from the file's modification time (now for stdin), in the local
// zone.
func inspectPostfixLog(in io.Reader, out io.Writer) error {
	ref := time.Now()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			ref = st.ModTime()
		}
	}
	p := &postfixlog.Parser{Ref: ref, Location: time.Local}
	j := postfixlog.NewJoiner(postfixlog.JoinerConfig{})
	bw := bufio.NewWriterSize(out, 64<<10)
	var l postfixlog.Line
	var pos int64
	var encErr error
	var buf []byte
	each := func(fn func(string) bool) error { return eachLogLine(in, fn) }
	if f, ok := in.(*os.File); ok {
		each = func(fn func(string) bool) error {
			if mapped, err := eachMappedLine(f, fn); mapped {
				return err
			}
			return eachLogLine(in, fn)
		}
	}
	err := each(func(line string) bool {
		pos++
		if !p.Parse(line, pos, &l) {
			return true
		}
		if rec := j.Add(&l); rec != nil {
			// The record points into the line, which is valid only now.
			o := postfixLogJSON(rec)
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

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(v int) *int {
	if v < 0 {
		return nil
	}
	return &v
}

func postfixLogJSON(rec postfixlog.Record) postfixLogRecord {
	var o postfixLogRecord
	var ctx postfixlog.MessageContext
	switch r := rec.(type) {
	case *postfixlog.Delivery:
		o = postfixLogRecord{
			Event: "delivery", Line: r.Pos, TS: r.RawTime, Time: r.Time.Format(time.RFC3339Nano),
			MTA: r.MTA, Host: r.Host, Program: r.Program, Service: r.Agent, Instance: r.Instance,
			PID: optInt(r.PID), QueueID: r.QueueID, Recipient: r.Recipient, Pending: r.Pending,
			RelayHost: r.RelayHost, RelayIP: r.RelayIP, RelayPath: r.RelayPath, RelayPort: r.RelayPort,
			ConnUse: optInt(r.ConnUse), TLS: r.TLS, DSN: optStr(r.DSN), Status: r.Status,
			Truncated: r.Truncated, RemoteReply: r.RemoteReply, ReplyCode: r.ReplyCode,
			Command: r.Command, QueuedAs: r.QueuedAs, Router: r.Router, Transport: r.Transport,
			Reason: r.Classification.Reason, Category: r.Classification.Category,
			Signature: r.Classification.Signature, Rule: r.Classification.Rule,
		}
		if r.Status == "expired" && r.Agent == "qmgr" {
			o.Event = "expired"
		} else {
			o.To = &r.Recipient
		}
		o.OrigTo = optStr(r.OrigRecipient)
		o.Relay = optStr(r.Relay)
		if r.Delay >= 0 {
			d := r.Delay
			o.Delay = &d
		}
		if r.Delays[0] >= 0 && r.Delays[1] >= 0 && r.Delays[2] >= 0 && r.Delays[3] >= 0 {
			o.Delays = r.Delays[:]
		}
		if r.Reply != "" || r.Status != "expired" {
			o.Reply = &r.Reply
		}
		if o.Reply != nil && *o.Reply == "" && r.MTA == "exim" {
			o.Reply = nil
		}
		ctx = r.MessageContext
	case *postfixlog.Reject:
		o = postfixLogRecord{
			Event: "reject", Line: r.Pos, TS: r.RawTime, Time: r.Time.Format(time.RFC3339Nano),
			MTA: r.MTA, Host: r.Host, Program: r.Program, Service: r.Agent, Instance: r.Instance,
			PID: optInt(r.PID), QueueID: r.QueueID, Recipient: r.Recipient, To: optStr(r.Recipient),
			DSN: optStr(r.DSN), Status: "rejected", Reply: &r.Reply, ReplyCode: r.ReplyCode,
			Action: r.Action, Stage: r.Stage, ClientPort: r.ClientPort, Helo: r.Helo, Proto: r.Proto,
			Reason: r.Classification.Reason, Category: r.Classification.Category,
			Signature: r.Classification.Signature, Rule: r.Classification.Rule,
		}
		ctx = r.MessageContext
		if r.SenderSet {
			ctx.Sender, ctx.SenderSet = r.Sender, true
		}
		ctx.ClientHost, ctx.ClientIP = r.ClientHost, r.ClientIP
	}
	if ctx.MessageIDSet || ctx.MessageID != "" {
		m := ctx.MessageID
		o.MessageID = &m
	}
	o.TrackingHeader = optStr(ctx.TrackingHeader)
	o.TrackingTruncated = ctx.TrackingTruncated
	if ctx.SenderSet {
		s := ctx.Sender
		o.Sender = &s
	}
	if ctx.Size >= 0 && (ctx.SenderSet || ctx.Size > 0) {
		v := ctx.Size
		o.Size = &v
	}
	if ctx.Nrcpt > 0 {
		v := ctx.Nrcpt
		o.Nrcpt = &v
	}
	o.ClientHost, o.ClientIP = ctx.ClientHost, ctx.ClientIP
	o.SASLUsername, o.ParentQueueID = ctx.SASLUsername, ctx.ParentQueueID
	return o
}
