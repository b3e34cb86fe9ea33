package cli

import (
	"math"
	"strconv"
	"unicode/utf8"
)

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

// appendJSONStr writes s as a JSON string the way encoding/json does with
// HTML escaping off: '"', '\\' and control characters escaped, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
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
