package postfixlog

import (
	"strconv"
	"strings"
)

// parsePostfix fills l from a Postfix message (the text after
// "program[pid]: ").
func parsePostfix(msg string, l *Line) {
	if strings.HasPrefix(msg, "NOQUEUE: ") {
		l.clean = false
		parseAction(msg[len("NOQUEUE: "):], l)
		return
	}
	qid, rest := splitQueueID(msg)
	if qid == "" {
		parseRemote(msg, l)
		return
	}
	l.clean = false
	l.QueueID = qid
	if rest == "" {
		return
	}
	switch rest[0] {
	case 't':
		if strings.HasPrefix(rest, "to=") {
			parseDelivery(rest, l)
			return
		}
	case 'f':
		if strings.HasPrefix(rest, "from=") {
			parseQmgrFrom(rest, l)
			return
		}
	case 'r':
		if rest == "removed" {
			l.Kind = KindRemoved
			return
		}
	case 'c':
		if strings.HasPrefix(rest, "client=") {
			parseClient(rest, l)
			return
		}
	case 'm':
		if strings.HasPrefix(rest, "message-id=") {
			l.Kind = KindMessageID
			l.MessageID = trimAngle(strings.TrimSpace(rest[len("message-id="):]))
			return
		}
	case 'u':
		if strings.HasPrefix(rest, "uid=") {
			parsePickup(rest, l)
			return
		}
	}
	if parseHeaderAction(rest, l) {
		return
	}
	if parseAction(rest, l) {
		return
	}
	parseRemote(rest, l)
}

// qidBytes classes the bytes of a queue id: qidHex for 0-9 and A-F,
// qidAlpha for the other letters, with qidZ added for 'z'; 0 ends the id.
var qidBytes = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = qidHex
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = qidAlpha
		if c <= 'F' {
			t[c] = qidHex
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = qidAlpha
	}
	t['z'] |= qidZ
	return t
}()

const (
	qidHex   = 1
	qidAlpha = 2
	qidZ     = 4
)

// splitQueueID splits "QUEUEID: rest". A queue id is a short one (at least
// 5 upper-case hex digits, the inode and time based form) or a long one
// (enable_long_queue_ids: 10 base-52 characters of time, 'z', the inode;
// at least 12 alphanumerics with a 'z').
func splitQueueID(msg string) (qid, rest string) {
	// One table load per byte (most lines have no queue id and end the
	// scan within a few letters; the branchy range tests cost more).
	i := 0
	var seen uint8
	for i < len(msg) && i < 40 {
		t := qidBytes[msg[i]]
		if t == 0 {
			break
		}
		seen |= t
		i++
	}
	hex := seen&qidAlpha == 0
	hasZ := seen&qidZ != 0
	if i >= len(msg) || msg[i] != ':' || !(hex && i >= 5 || !hex && hasZ && i >= 12) {
		return "", msg
	}
	rest = msg[i+1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return msg[:i], rest
}

// parseDelivery parses "to=<a>, orig_to=<b>, relay=.., conn_use=N,
// delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=WORD (reply)".
func parseDelivery(s string, l *Line) {
	noSep := false
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return
		}
		key := s[:eq]
		s = s[eq+1:]
		if key == "status" {
			parseStatus(s, l)
			if l.Status != "" {
				l.Kind = KindDelivery
			}
			return
		}
		var val string
		val, s = kvValue(s, &noSep)
		switch key {
		case "to":
			l.To = val
		case "orig_to":
			l.OrigTo = val
		case "relay":
			setRelay(val, l)
		case "conn_use":
			l.ConnUse = atoi(val)
		case "delay":
			l.Delay = atof(val)
		case "delays":
			parseDelays(val, &l.Delays)
		case "dsn":
			l.DSN = val
		case "tls":
			l.TLS = val
		}
	}
}

// kvValue reads one value of a ", "-separated key=value list: "<...>" up
// to the '>' that ends it, else up to ", ". It returns the value (angle
// brackets removed) and the rest after the separator. noSep is kept by
// the caller across the values of one list: once no ">, " is left in the
// rest of the line, none is looked for again, so that a line of many
// "<...>" values without one is read in one pass, not once per value.
func kvValue(s string, noSep *bool) (val, rest string) {
	if len(s) > 0 && s[0] == '<' {
		// The address ends at the first ">, " or at a '>' ending the text;
		// '>' inside a quoted local part is not followed by ", ".
		end := -1
		if !*noSep {
			end = strings.Index(s, ">, ")
			*noSep = end < 0
		}
		if end < 0 {
			if strings.HasSuffix(s, ">") {
				return s[1 : len(s)-1], ""
			}
			end = strings.IndexByte(s, '>')
			if end < 0 {
				return s[1:], ""
			}
		}
		val = s[1:end]
		rest = s[end+1:]
	} else {
		end := strings.Index(s, ", ")
		if end < 0 {
			return s, ""
		}
		val, rest = s[:end], s[end:]
	}
	rest = strings.TrimPrefix(rest, ", ")
	return val, rest
}

// parseStatus reads "WORD (reply)" or "WORD, returned to sender".
func parseStatus(s string, l *Line) {
	i := 0
	for i < len(s) && s[i] != ' ' && s[i] != ',' && s[i] != '(' {
		i++
	}
	l.Status = s[:i]
	s = s[i:]
	if strings.HasPrefix(s, " (") {
		r := s[2:]
		if strings.HasSuffix(r, ")") {
			l.Reply = r[:len(r)-1]
		} else {
			r = strings.TrimRight(r, " ")
			if strings.HasSuffix(r, ")") {
				l.Reply = r[:len(r)-1]
			} else {
				l.Reply = r
				l.Truncated = true
			}
		}
	} else if strings.HasPrefix(s, ", ") {
		l.Reply = s[2:] // "returned to sender"
	}
}

// setRelay splits "host[addr]:port", "host[private/socket]" or a bare
// word (none, local, virtual, a transport name).
func setRelay(v string, l *Line) {
	l.Relay = v
	host, addr, port, ok := splitHostAddr(v)
	if !ok {
		l.RelayHost = v
		return
	}
	l.RelayHost = host
	if isIPText(addr) {
		l.RelayIP = addr
	} else {
		l.RelayPath = addr
	}
	l.RelayPort = port
}

// splitHostAddr splits "host[addr]" or "host[addr]:port" (host may be
// empty, as in postscreen's "[addr]:port").
func splitHostAddr(v string) (host, addr string, port int, ok bool) {
	lb := strings.IndexByte(v, '[')
	if lb < 0 {
		return "", "", 0, false
	}
	rb := strings.IndexByte(v[lb:], ']')
	if rb < 0 {
		return "", "", 0, false
	}
	rb += lb
	host, addr = v[:lb], v[lb+1:rb]
	rest := v[rb+1:]
	if len(rest) > 1 && rest[0] == ':' {
		port = atoi(rest[1:])
		if port < 0 {
			port = 0
		}
	}
	return host, addr, port, true
}

// isIPText reports whether s looks like an IPv4 or IPv6 address (digits,
// hex, dots and colons, with at least one dot or colon).
func isIPText(s string) bool {
	if s == "" {
		return false
	}
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c == '.' || c == ':':
			sep = true
		case c == '%' && i > 0: // zone index
			return sep
		default:
			return false
		}
	}
	return sep
}

func parseDelays(v string, d *[4]float64) {
	for i := 0; i < 4; i++ {
		j := strings.IndexByte(v, '/')
		part := v
		if j >= 0 {
			part, v = v[:j], v[j+1:]
		} else {
			v = ""
		}
		d[i] = atof(part)
		if j < 0 {
			return
		}
	}
}

// parseQmgrFrom parses qmgr's "from=<s>, size=N, nrcpt=N (queue active)"
// and "from=<s>, status=expired, returned to sender".
func parseQmgrFrom(s string, l *Line) {
	noSep := false
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return
		}
		key := s[:eq]
		s = s[eq+1:]
		if key == "status" {
			parseStatus(s, l)
			if l.Status != "" {
				l.Kind = KindExpired
			}
			return
		}
		var val string
		val, s = kvValue(s, &noSep)
		switch key {
		case "from":
			l.From, l.FromSet = val, true
			l.Kind = KindQueued
		case "size":
			l.Size = int64(atoi(val))
		case "nrcpt":
			// "1 (queue active)"
			if sp := strings.IndexByte(val, ' '); sp >= 0 {
				val = val[:sp]
			}
			l.Nrcpt = atoi(val)
		}
	}
}

// parseClient parses smtpd's "client=host[ip][:port], sasl_method=..,
// sasl_username=.., orig_queue_id=.., orig_client=..".
func parseClient(s string, l *Line) {
	l.Kind = KindClient
	noSep := false
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return
		}
		key := s[:eq]
		var val string
		val, s = kvValue(s[eq+1:], &noSep)
		switch key {
		case "client":
			setClient(val, l)
		case "sasl_method":
			l.SASLMethod = val
		case "sasl_username":
			l.SASLUsername = val
		case "orig_queue_id":
			l.OrigQueueID = val
		case "orig_client":
			l.OrigClient = val
		}
	}
}

func setClient(v string, l *Line) {
	host, addr, port, ok := splitHostAddr(v)
	if !ok {
		l.ClientHost = v
		return
	}
	l.ClientHost, l.ClientIP, l.ClientPort = host, addr, port
}

// parsePickup parses "uid=N from=<sender>".
func parsePickup(s string, l *Line) {
	l.Kind = KindPickup
	s = s[len("uid="):]
	sp := strings.IndexByte(s, ' ')
	if sp < 0 {
		l.UID = atoi(s)
		return
	}
	l.UID = atoi(s[:sp])
	s = s[sp+1:]
	if strings.HasPrefix(s, "from=") {
		l.From, l.FromSet = trimAngle(s[len("from="):]), true
	}
}

// parseHeaderAction parses cleanup's header/body_checks log:
// "ACTION: header NAME: VALUE from ORIGIN; from=<s> to=<r> proto=P
// helo=<h>[: TEXT]". Reject actions are also KindReject lines.
func parseHeaderAction(s string, l *Line) bool {
	colon := strings.Index(s, ": ")
	if colon <= 0 || colon > 16 {
		return false
	}
	action := s[:colon]
	rest := s[colon+2:]
	if !strings.HasPrefix(rest, "header ") {
		return false
	}
	rest = rest[len("header "):]
	nameEnd := strings.IndexByte(rest, ':')
	if nameEnd <= 0 || strings.IndexByte(rest[:nameEnd], ' ') >= 0 {
		return false
	}
	l.HeaderAction = action
	l.HeaderName = rest[:nameEnd]
	rest = strings.TrimPrefix(rest[nameEnd+1:], " ")
	val, origin, after := splitFromOrigin(rest)
	l.HeaderValue = val
	if origin != "" {
		setClient(origin, l)
	}
	text := parseKeyValues(after, l)
	switch action {
	case "reject", "discard", "hold", "redirect", "filter":
		l.Kind = KindReject
		l.Action = action
		l.Stage = "header"
		setReply(text, l)
	default:
		l.Kind = KindHeader
	}
	return true
}

// splitFromOrigin splits "CONTENT from ORIGIN;REST" where ORIGIN is
// "host[addr]", "local" or "unknown" (cleanup_act_log). The content may
// itself contain " from "; the first occurrence followed by an origin
// token and ';' wins.
func splitFromOrigin(s string) (content, origin, rest string) {
	off := 0
	for {
		i := strings.Index(s[off:], " from ")
		if i < 0 {
			return s, "", ""
		}
		i += off
		tok := s[i+len(" from "):]
		semi := strings.IndexByte(tok, ';')
		if semi > 0 && strings.IndexByte(tok[:semi], ' ') < 0 {
			o := tok[:semi]
			if strings.HasSuffix(o, "]") || o == "local" || o == "unknown" {
				return s[:i], o, tok[semi+1:]
			}
		}
		off = i + 1
	}
}

// parseKeyValues reads " from=<s> to=<r> proto=P helo=<h>" (space or ", "
// separated, as smtpd and postscreen write them) into l and returns any
// text after a final ": " (the action's text).
func parseKeyValues(s string, l *Line) (text string) {
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return ""
		}
		if s[0] == ':' {
			return strings.TrimPrefix(s[1:], " ")
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.IndexByte(s[:eq], ' ') >= 0 {
			return s
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if len(s) > 0 && s[0] == '<' {
			end := strings.IndexByte(s, '>')
			// The address ends at a '>' followed by a separator or the end.
			for end >= 0 && end+1 < len(s) && s[end+1] != ' ' && s[end+1] != ',' && s[end+1] != ':' {
				n := strings.IndexByte(s[end+1:], '>')
				if n < 0 {
					end = -1
					break
				}
				end += 1 + n
			}
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end], s[end+1:]
			}
		} else {
			end := strings.IndexAny(s, " ,")
			if end < 0 {
				end = len(s)
			}
			// "helo=<h>: text" and "proto=ESMTP: text"
			if c := strings.Index(s[:end], ":"); c >= 0 && c == end-1 {
				end = c
			}
			val, s = s[:end], s[end:]
		}
		switch key {
		case "from":
			l.From, l.FromSet = val, true
		case "to":
			l.To = val
		case "proto":
			l.Proto = val
		case "helo":
			l.Helo = val
		}
	}
}

var actions = [...]string{"reject", "milter-reject", "reject_warning", "discard", "hold", "filter", "redirect", "warn", "milter-discard", "milter-hold"}

// parseAction parses smtpd/postscreen/cleanup actions on a client command:
// "ACTION: STAGE from host[ip][:port]: REPLY; from=<s> to=<r> proto=P
// helo=<h>" (postscreen separates the key-values with ", ").
func parseAction(s string, l *Line) bool {
	colon := strings.Index(s, ": ")
	if colon <= 0 || colon > 20 {
		return false
	}
	action := s[:colon]
	known := false
	for _, a := range actions {
		if a == action {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	rest := s[colon+2:]
	from := strings.Index(rest, " from ")
	if from <= 0 || strings.IndexByte(rest[:from], ':') >= 0 {
		return false
	}
	stage := rest[:from]
	rest = rest[from+len(" from "):]
	// client "host[ip]" or "[ip]:port", ended by ": " or the end.
	end := strings.Index(rest, "]")
	if end < 0 {
		return false
	}
	j := end + 1
	if j < len(rest) && rest[j] == ':' && j+1 < len(rest) && isDigit(rest[j+1]) {
		j++
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
	}
	l.Kind = KindReject
	l.Action = action
	l.Stage = stage
	setClient(rest[:j], l)
	rest = strings.TrimPrefix(rest[j:], ":")
	rest = strings.TrimPrefix(rest, " ")
	// The reply ends where the key-values start.
	kv := lastKVStart(rest)
	reply := rest
	if kv >= 0 {
		reply = rest[:kv]
		parseKeyValues(rest[kv+1:], l)
	}
	setReply(reply, l)
	return true
}

// lastKVStart finds the ';' that starts smtpd's "; from=<..> to=<..>
// proto=.. helo=<..>" tail, or -1.
func lastKVStart(s string) int {
	for _, k := range [...]string{"; from=<", "; to=<", "; proto=", "; helo=<"} {
		if i := strings.LastIndex(s, k); i >= 0 {
			return i
		}
	}
	return -1
}

// setReply stores a reject's reply and its reply code and enhanced status.
func setReply(reply string, l *Line) {
	l.Reply = reply
	if len(reply) >= 3 && reply[0] >= '2' && reply[0] <= '5' && isDigit(reply[1]) && isDigit(reply[2]) &&
		(len(reply) == 3 || reply[3] == ' ' || reply[3] == '-') {
		l.ReplyCode = int(reply[0]-'0')*100 + int(reply[1]-'0')*10 + int(reply[2]-'0')
		rest := strings.TrimLeft(reply[3:], " -")
		if st := enhancedAt(rest); st != "" {
			l.DSN = st
		}
		return
	}
	if st := enhancedAt(reply); st != "" {
		l.DSN = st // cleanup "5.7.1 message content rejected"
	}
}

// enhancedAt returns the RFC 3463 status code (class.subject.detail) at the
// start of s, or "".
func enhancedAt(s string) string {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return ""
	}
	i := 2
	for part := 0; part < 2; part++ {
		k := i
		for i < len(s) && isDigit(s[i]) && i-k < 3 {
			i++
		}
		if i == k {
			return ""
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return ""
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' && s[i] != ',' && s[i] != ';' && s[i] != ')' {
		return ""
	}
	return s[:i]
}

// parseRemote parses the SMTP/LMTP client's notes about a remote server:
//
//	host H[ip] said: REPLY (in reply to CMD command)
//	host H[ip] refused to talk to me: REPLY
//	SASL authentication failed; server H[ip] said: REPLY
//	connect to H[ip]:port: ERROR
//	lost connection with H[ip] while CMD
//	conversation with H[ip] timed out while CMD
func parseRemote(s string, l *Line) {
	if s == "" {
		return
	}
	switch s[0] {
	case 'h', 'S', 'c', 'l':
	default:
		return
	}
	var rest string
	switch {
	case strings.HasPrefix(s, "host "):
		rest = s[len("host "):]
	case strings.HasPrefix(s, "SASL authentication failed; server "):
		rest = s[len("SASL authentication failed; server "):]
	case strings.HasPrefix(s, "connect to "):
		rest = s[len("connect to "):]
	case strings.HasPrefix(s, "lost connection with "):
		rest = s[len("lost connection with "):]
	case strings.HasPrefix(s, "conversation with "):
		rest = s[len("conversation with "):]
	default:
		return
	}
	sp := strings.IndexByte(rest, ' ')
	tok := rest
	if sp >= 0 {
		tok = rest[:sp]
	}
	tok = strings.TrimSuffix(tok, ":")
	host, addr, port, ok := splitHostAddr(tok)
	if !ok {
		return
	}
	l.clean = false
	l.Kind = KindRemote
	l.RelayHost, l.RelayPort = host, port
	if isIPText(addr) {
		l.RelayIP = addr
	} else {
		l.RelayPath = addr
	}
	if sp < 0 {
		return
	}
	rest = rest[sp+1:]
	switch {
	case strings.HasPrefix(rest, "said: "):
		rest = rest[len("said: "):]
	case strings.HasPrefix(rest, "refused to talk to me: "):
		rest = rest[len("refused to talk to me: "):]
	case strings.HasPrefix(rest, "while "):
		l.Stage = strings.TrimSuffix(rest[len("while "):], " command")
		l.Reply = rest
		return
	default:
		l.Reply = rest
		return
	}
	if text, cmd, ok := cutInReplyTo(rest); ok {
		l.Stage = cmd
		rest = text
	}
	setReply(rest, l)
}

// RemoteReply returns the remote server's own reply inside a Postfix
// status text, without Postfix's "host H[ip] said: " prefix and
// " (in reply to CMD command)" suffix, and the command it answered. For
// texts that carry no remote reply it returns the text and "".
func RemoteReply(reply string) (text, command string) {
	text = reply
	if rest, ok := strings.CutPrefix(text, "host "); ok {
		if i := strings.Index(rest, " said: "); i > 0 && strings.IndexByte(rest[:i], ' ') < 0 {
			text = rest[i+len(" said: "):]
		} else if i := strings.Index(rest, " refused to talk to me: "); i > 0 && strings.IndexByte(rest[:i], ' ') < 0 {
			text = rest[i+len(" refused to talk to me: "):]
		}
	}
	if t, cmd, ok := cutInReplyTo(text); ok {
		text, command = t, cmd
	}
	return text, command
}

// cutInReplyTo splits Postfix's "REPLY (in reply to CMD command)".
func cutInReplyTo(s string) (text, command string, ok bool) {
	const pre, suf = " (in reply to ", " command)"
	if !strings.HasSuffix(s, suf) {
		return s, "", false
	}
	i := strings.LastIndex(s, pre)
	if i < 0 || i+len(pre) > len(s)-len(suf) {
		return s, "", false
	}
	return s[:i], s[i+len(pre) : len(s)-len(suf)], true
}

func trimAngle(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

// atoi parses a non-negative decimal, -1 when s is not one.
func atoi(s string) int {
	if s == "" || len(s) > 18 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// atof parses Postfix's delay numbers ("0.19", "6.8", "138", "0"); -1
// when s is not a number.
func atof(s string) float64 {
	if s == "" {
		return -1
	}
	// Fast path: digits with at most one '.', up to 15 significant digits.
	var mant int64
	frac := -1
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n >= 15 {
				goto slow
			}
			mant = mant*10 + int64(c-'0')
			n++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			goto slow
		}
	}
	if n == 0 {
		return -1
	}
	if frac <= 0 {
		return float64(mant)
	}
	return float64(mant) / pow10[frac]
slow:
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return -1
	}
	return f
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}
