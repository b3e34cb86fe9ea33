package postfixlog

import (
	"strings"
	"time"
)

// parseEximMain parses an Exim main log line:
//
//	2024-01-02 03:04:05[.mmm][ +hhmm] [[pid]] ID => rcpt ...
func (p *Parser) parseEximMain(s string, l *Line) bool {
	y1, ok1 := digits2(s, 0)
	y2, ok2 := digits2(s, 2)
	mo, ok3 := digits2(s, 5)
	d, ok4 := digits2(s, 8)
	h, ok5 := digits2(s, 11)
	mi, ok6 := digits2(s, 14)
	sec, ok7 := digits2(s, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || s[13] != ':' || s[16] != ':' ||
		mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return false
	}
	i := 19
	ns := 0
	if i < len(s) && s[i] == '.' {
		var k int
		ns, k = readFraction(s, i+1)
		i = k
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	// " +0100" (log_timezone)
	if i+6 <= len(s) && s[i] == ' ' && (s[i+1] == '+' || s[i+1] == '-') {
		oh, okh := digits2(s, i+2)
		om, okm := digits2(s, i+4)
		if okh && okm && (i+6 == len(s) || s[i+6] == ' ') {
			off := oh*3600 + om*60
			if s[i+1] == '-' {
				off = -off
			}
			loc = p.zone(off)
			i += 6
		}
	}
	l.RawTime = s[:i]
	l.Time = time.Date(y1*100+y2, time.Month(mo), d, h, mi, sec, ns, loc)
	rest := strings.TrimPrefix(s[i:], " ")
	// " [pid]" (log_selector +pid)
	if strings.HasPrefix(rest, "[") {
		if j := strings.IndexByte(rest, ']'); j > 1 {
			if pid := atoi(rest[1:j]); pid >= 0 {
				l.PID = pid
				rest = strings.TrimPrefix(rest[j+1:], " ")
			}
		}
	}
	l.MTA = "exim"
	l.Program = "exim"
	l.Instance = "exim"
	l.Service = "exim"
	l.Message = rest
	parseExim(rest, l)
	return true
}

// skipEximTime drops Exim's own "YYYY-MM-DD hh:mm:ss[.mmm][ +hhmm] " from a
// syslog message.
func skipEximTime(s string) string {
	i := 19
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i+6 <= len(s) && s[i] == ' ' && (s[i+1] == '+' || s[i+1] == '-') && isDigit(s[i+2]) {
		i += 6
	}
	return strings.TrimPrefix(s[i:], " ")
}

// isEximID reports whether s is an Exim message id: 6-6-2 base-62 (up to
// 4.96) or 6-11-4 (4.97 and later).
func isEximID(s string) bool {
	n := len(s)
	if n != 16 && n != 23 {
		return false
	}
	mid := 6
	if n == 23 {
		mid = 11
	}
	if s[6] != '-' || s[7+mid] != '-' {
		return false
	}
	for i := 0; i < n; i++ {
		if i == 6 || i == 7+mid {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseExim parses the part of an Exim log line after the timestamp.
func parseExim(s string, l *Line) {
	l.clean = false
	sp := strings.IndexByte(s, ' ')
	if sp > 0 && isEximID(s[:sp]) {
		l.QueueID = s[:sp]
		s = s[sp+1:]
	} else if isEximID(s) {
		l.QueueID = s
		return
	}
	if len(s) >= 3 && s[2] == ' ' {
		switch s[:2] {
		case "<=":
			if l.QueueID != "" {
				parseEximArrival(s[3:], l)
			}
			return
		case "=>", "->", "*>":
			if l.QueueID != "" {
				parseEximDelivery(s[:2], s[3:], l)
			}
			return
		case "**", "==":
			if l.QueueID != "" {
				parseEximDelivery(s[:2], s[3:], l)
			}
			return
		}
	}
	if l.QueueID != "" && (s == "Completed" || strings.HasPrefix(s, "Completed ")) {
		l.Kind = KindRemoved
		return
	}
	if strings.HasPrefix(s, "H=") || strings.HasPrefix(s, "F=") || strings.HasPrefix(s, "U=") {
		parseEximReject(s, l)
	}
}

// eximFields iterates over the space-separated tokens of s, keeping
// KEY="quoted value" and H=host (helo) [ip]:port together. For each token
// it calls fn(key, value) (key "" for a plain token).
func eximFields(s string, fn func(key, val string)) {
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return
		}
		eq := -1
		for i := 0; i < len(s) && i < 4; i++ {
			c := s[i]
			if c == '=' {
				eq = i
				break
			}
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				break
			}
		}
		if eq <= 0 {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			fn("", s[:end])
			s = s[end:]
			continue
		}
		key := s[:eq]
		v := s[eq+1:]
		if len(v) > 0 && v[0] == '"' {
			end := 1
			for end < len(v) && v[end] != '"' {
				if v[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(v) {
				fn(key, v[1:])
				return
			}
			fn(key, v[1:end])
			s = v[end+1:]
			continue
		}
		end := strings.IndexByte(v, ' ')
		if end < 0 {
			end = len(v)
		}
		if key == "H" {
			// "host (helo) [ip]:port", "(helo) [ip]" or "[ip]": extend over
			// the "(helo)" and "[ip]" tokens until the address.
			for end < len(v) {
				last := v[strings.LastIndexByte(v[:end], ' ')+1 : end]
				if last != "" && last[0] == '[' {
					break
				}
				nxt := v[end+1:]
				if nxt == "" || (nxt[0] != '(' && nxt[0] != '[') {
					break
				}
				e := strings.IndexByte(nxt, ' ')
				if e < 0 {
					e = len(nxt)
				}
				end += 1 + e
			}
		}
		fn(key, v[:end])
		s = v[end:]
	}
}

// setEximHost splits Exim's "host (helo) [ip]:port" into host, ip, port.
func setEximHost(v string) (host, ip string, port int) {
	v = strings.TrimSuffix(v, "*") // DNSSEC marker
	lb := strings.LastIndexByte(v, '[')
	if lb < 0 {
		return v, "", 0
	}
	rb := strings.IndexByte(v[lb:], ']')
	if rb < 0 {
		return strings.TrimSpace(v[:lb]), "", 0
	}
	ip = v[lb+1 : lb+rb]
	if rest := v[lb+rb+1:]; len(rest) > 1 && rest[0] == ':' {
		port = atoi(rest[1:])
		if port < 0 {
			port = 0
		}
	}
	host = strings.TrimSpace(v[:lb])
	if i := strings.IndexByte(host, '('); i >= 0 {
		host = strings.TrimSpace(host[:i])
	}
	return host, ip, port
}

// parseEximArrival parses "<= sender H=.. P=.. S=size id=msgid ...".
func parseEximArrival(s string, l *Line) {
	l.Kind = KindArrival
	sp := strings.IndexByte(s, ' ')
	sender := s
	if sp >= 0 {
		sender, s = s[:sp], s[sp+1:]
	} else {
		s = ""
	}
	if sender == "<>" {
		sender = ""
	}
	l.From, l.FromSet = sender, true
	eximFields(s, func(key, val string) {
		switch key {
		case "H":
			l.ClientHost, l.ClientIP, l.ClientPort = setEximHost(val)
		case "P":
			l.Proto = val
		case "S":
			l.Size = int64(atoi(val))
		case "id":
			l.MessageID = trimAngle(val)
		case "A":
			// A=plain:user (authenticator:id)
			if c := strings.IndexByte(val, ':'); c >= 0 {
				l.SASLMethod, l.SASLUsername = val[:c], val[c+1:]
			}
		}
	})
}

// parseEximDelivery parses the part after "=>", "->", "*>", "**" or "==".
func parseEximDelivery(marker, s string, l *Line) {
	l.Kind = KindDelivery
	switch marker {
	case "=>", "->":
		l.Status = "sent"
	case "*>":
		l.Status = "suppressed"
	case "**":
		l.Status = "bounced"
	case "==":
		l.Status = "deferred"
	}
	fields := s
	if marker == "**" || marker == "==" {
		if i := colonOutsideQuotes(s); i >= 0 {
			fields = s[:i]
			l.Reply = strings.TrimSpace(s[i+1:])
		}
	}
	// recipient, then "<original>" or "(parent)" tokens.
	sp := strings.IndexByte(fields, ' ')
	rcpt := fields
	rest := ""
	if sp >= 0 {
		rcpt, rest = fields[:sp], fields[sp+1:]
	}
	l.To = trimAngle(rcpt)
	for {
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, "<") {
			e := strings.IndexByte(rest, '>')
			if e < 0 {
				break
			}
			l.OrigTo = rest[1:e]
			rest = rest[e+1:]
			continue
		}
		if strings.HasPrefix(rest, "(") {
			e := strings.IndexByte(rest, ')')
			if e < 0 {
				break
			}
			if l.OrigTo == "" {
				l.OrigTo = rest[1:e]
			}
			rest = rest[e+1:]
			continue
		}
		break
	}
	eximFields(rest, func(key, val string) {
		switch key {
		case "R":
			l.Router = val
		case "T":
			l.Transport = val
		case "H":
			l.Relay = val
			l.RelayHost, l.RelayIP, l.RelayPort = setEximHost(val)
		case "C":
			l.Reply = unquoteExim(val)
		case "F":
			l.From, l.FromSet = trimAngle(val), true
		case "QT":
			l.Delay = eximDuration(val)
		case "DT":
			l.Delays[3] = eximDuration(val)
		}
	})
	if l.Transport != "" {
		l.Service = l.Transport
	}
	if l.Relay == "" && l.Transport != "" {
		l.Relay = l.Transport
		l.RelayHost = l.Transport
	}
	code, st := replyCodes(l.Reply)
	l.ReplyCode = code
	l.DSN = st
}

// replyCodes finds the reply code and enhanced status in an Exim reply
// ("250 2.0.0 OK", "SMTP error from remote mail server after RCPT
// TO:<x>: 550 5.1.1 ...").
func replyCodes(s string) (int, string) {
	r, _ := EximRemoteReply(s)
	if len(r) >= 3 && r[0] >= '2' && r[0] <= '5' && isDigit(r[1]) && isDigit(r[2]) && (len(r) == 3 || r[3] == ' ' || r[3] == '-') {
		code := int(r[0]-'0')*100 + int(r[1]-'0')*10 + int(r[2]-'0')
		return code, enhancedAt(strings.TrimLeft(r[3:], " -"))
	}
	return 0, ""
}

// EximRemoteReply returns the remote server's reply inside an Exim error
// text ("SMTP error from remote mail server after RCPT TO:<x>: 550 ...")
// and the command it answered; other texts are returned as they are.
func EximRemoteReply(s string) (text, command string) {
	for _, pre := range [...]string{"SMTP error from remote mail server after ", "SMTP error from remote mailer after ", "SMTP error from remote server after "} {
		if !strings.HasPrefix(s, pre) {
			continue
		}
		rest := s[len(pre):]
		for off := 0; ; {
			i := strings.Index(rest[off:], ": ")
			if i < 0 {
				return s, ""
			}
			i += off
			r := rest[i+2:]
			if len(r) >= 3 && r[0] >= '2' && r[0] <= '5' && isDigit(r[1]) && isDigit(r[2]) {
				cmd := rest[:i]
				if c := strings.IndexByte(cmd, ':'); c >= 0 {
					cmd = cmd[:c]
				}
				cmd = strings.TrimPrefix(cmd, "pipelined ")
				return r, cmd
			}
			off = i + 2
		}
	}
	return s, ""
}

func colonOutsideQuotes(s string) int {
	inQ := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQ {
				i++
			}
		case '"':
			inQ = !inQ
		case ':':
			if !inQ && (i+1 == len(s) || s[i+1] == ' ') {
				return i
			}
		}
	}
	return -1
}

func unquoteExim(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// eximDuration parses Exim's QT=/DT= durations ("2s", "1m5s", "0.123s",
// "2h3m", "1d2h") into seconds; -1 when unparsable.
func eximDuration(s string) float64 {
	total := 0.0
	for s != "" {
		i := 0
		for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
			i++
		}
		if i == 0 || i >= len(s) {
			return -1
		}
		v := atof(s[:i])
		if v < 0 {
			return -1
		}
		switch s[i] {
		case 'w':
			v *= 7 * 86400
		case 'd':
			v *= 86400
		case 'h':
			v *= 3600
		case 'm':
			v *= 60
		case 's':
		default:
			return -1
		}
		total += v
		s = s[i+1:]
	}
	return total
}

// parseEximReject parses "H=host (helo) [ip] F=<sender> rejected RCPT
// <rcpt>: text" and "H=.. rejected after DATA: text".
func parseEximReject(s string, l *Line) {
	i := strings.Index(s, " rejected ")
	if i < 0 {
		return
	}
	head, tail := s[:i], s[i+len(" rejected "):]
	eximFields(head, func(key, val string) {
		switch key {
		case "H":
			l.ClientHost, l.ClientIP, l.ClientPort = setEximHost(val)
			if lp := strings.IndexByte(val, '('); lp >= 0 {
				if rp := strings.IndexByte(val[lp:], ')'); rp > 0 {
					l.Helo = val[lp+1 : lp+rp]
				}
			}
		case "F":
			l.From, l.FromSet = trimAngle(val), true
		}
	})
	l.Kind = KindReject
	l.Action = "rejected"
	text := ""
	if c := colonOutsideQuotes(tail); c >= 0 {
		text = strings.TrimSpace(tail[c+1:])
		tail = tail[:c]
	}
	switch {
	case strings.HasPrefix(tail, "RCPT "):
		l.Stage = "RCPT"
		l.To = trimAngle(strings.TrimSpace(tail[len("RCPT "):]))
	case strings.HasPrefix(tail, "MAIL "):
		l.Stage = "MAIL"
		l.From, l.FromSet = trimAngle(strings.TrimSpace(tail[len("MAIL "):])), true
	case strings.HasPrefix(tail, "after "):
		l.Stage = strings.TrimPrefix(tail, "after ")
	default:
		l.Stage = tail
	}
	l.Reply = text
	code, st := replyCodes(text)
	l.ReplyCode, l.DSN = code, st
}
