package postfixlog

import (
	"strings"
	"time"
)

// Kind says what a parsed line is about.
type Kind uint8

// The kinds of lines the parser understands. Every other line that has a
// valid header is KindOther (its QueueID is still set when it has one).
const (
	KindOther Kind = iota
	// KindDelivery: a delivery agent's status line (Postfix "to=<..>,
	// relay=.., status=.."; Exim "=>", "->", "**", "==").
	KindDelivery
	// KindExpired: qmgr "from=<..>, status=expired, returned to sender".
	KindExpired
	// KindClient: smtpd "client=host[ip]" (a message entered the queue).
	KindClient
	// KindPickup: pickup "uid=N from=<..>" (local submission).
	KindPickup
	// KindMessageID: cleanup "message-id=<..>".
	KindMessageID
	// KindHeader: cleanup header_checks action on a header
	// ("warning: header X-Name: value from ..").
	KindHeader
	// KindQueued: qmgr "from=<..>, size=N, nrcpt=N (queue active)".
	KindQueued
	// KindRemoved: qmgr "removed" (Exim "Completed").
	KindRemoved
	// KindReject: an smtpd, postscreen or cleanup action on a client
	// command ("NOQUEUE: reject: RCPT from .."), or an Exim "rejected"
	// line. Action says which action.
	KindReject
	// KindRemote: an SMTP client note about a remote server that is not a
	// recipient status ("host X[ip] said: ..", "connect to X[ip]:25: ..").
	KindRemote
	// KindArrival: Exim "<=" (a message arrived).
	KindArrival
)

var kindNames = [...]string{"other", "delivery", "expired", "client", "pickup", "message-id", "header", "queued", "removed", "reject", "remote", "arrival"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Line is one parsed log line. String fields are substrings of the input
// line (no copies; an Exim C="..." with backslash escapes is the one
// exception). Fields that a kind does not carry are zero; numbers
// that were not logged are -1 where 0 is a valid value (Delay, Delays,
// ConnUse, Size, Nrcpt, PID).
type Line struct {
	Kind Kind
	// MTA is "postfix" or "exim".
	MTA string
	// Pos is copied from Parse's pos argument (a line number or byte
	// offset chosen by the caller) into the records built from this line.
	Pos int64

	// Time is the line's timestamp. RFC 3164 timestamps carry no year or
	// zone: the year comes from Parser.Ref, the zone from Parser.Location.
	Time time.Time
	// RawTime is the timestamp as written.
	RawTime string
	// Host is the syslog host name ("" for an Exim main log).
	Host string
	// Program is the syslog tag without the pid, e.g. "postfix/smtp",
	// "postfix-10.1.2.3/smtp", "postfix/submission/smtpd", "exim".
	Program string
	// Instance is the Postfix instance: the first component of Program
	// ("postfix", "postfix-10.1.2.3"). Lines of one instance share a queue.
	Instance string
	// Service is the last component of Program: the daemon that logged
	// the line (smtp, lmtp, local, virtual, pipe, error, retry, discard,
	// qmgr, smtpd, cleanup, pickup, postscreen, ...).
	Service string
	// PID is the process id in the tag, -1 when absent.
	PID int
	// Message is everything after "program[pid]: ".
	Message string

	// QueueID is the Postfix queue id (short hex or long form) or the
	// Exim message id; "" for NOQUEUE and lines without one.
	QueueID string

	// Delivery fields (KindDelivery, KindExpired).
	To, OrigTo string
	// Relay is the relay= value as written: "host[ip]:port", "none",
	// "local", a transport name, or "host[private/socket]".
	Relay     string
	RelayHost string
	// RelayIP is the address in brackets when it is an IP address.
	RelayIP string
	// RelayPath is the text in brackets when it is not an IP address
	// (a UNIX-domain socket such as private/dovecot-lmtp).
	RelayPath string
	// RelayPort is the TCP port after "]:", 0 when absent.
	RelayPort int
	// ConnUse is conn_use= (deliveries over a cached connection), -1 when
	// absent.
	ConnUse int
	// Delay is delay= in seconds, -1 when absent.
	Delay float64
	// Delays is delays=a/b/c/d in seconds: before the queue manager, in
	// the queue manager, connection setup, transmission; all -1 when
	// absent.
	Delays [4]float64
	// DSN is the enhanced status code (RFC 3463) dsn=, e.g. "5.1.1".
	DSN string
	// TLS is Postfix's tls= feature note (e.g. "dane/requiretls"), when
	// logged.
	TLS string
	// Status is the status= word: sent, deferred, bounced, expired,
	// undeliverable, deliverable (address probes), SOFTBOUNCE, ...
	Status string
	// Reply is the text in parentheses after the status, verbatim: the
	// remote server's reply with Postfix's wording around it ("host x[ip]
	// said: 550 ... (in reply to RCPT TO command)") or the MTA's own
	// explanation. For Exim it is the C="..." confirmation or the error
	// text after the colon.
	Reply string
	// Truncated is set when the line ended before the reply's closing
	// parenthesis (syslog cut the line).
	Truncated bool
	// Router and Transport are Exim's R= and T=.
	Router, Transport string

	// From is the envelope sender (qmgr from=, pickup from=, Exim <=,
	// header and reject key-value data). FromSet says it was logged (the
	// null sender "<>" is From "" with FromSet true).
	From    string
	FromSet bool
	// Size and Nrcpt are qmgr's size= and nrcpt= (Exim S=), -1 when absent.
	Size  int64
	Nrcpt int

	// Client fields (KindClient, KindReject, Exim H= on arrivals).
	ClientHost string
	ClientIP   string
	ClientPort int
	// SASLMethod and SASLUsername are smtpd's sasl_method= and
	// sasl_username=.
	SASLMethod, SASLUsername string
	// OrigQueueID and OrigClient are smtpd's orig_queue_id= and
	// orig_client= (XFORWARD from a content filter re-injecting a message).
	OrigQueueID string
	OrigClient  string
	// UID is pickup's uid=, -1 when absent.
	UID int

	// MessageID is the Message-ID without angle brackets (KindMessageID,
	// Exim id=).
	MessageID string

	// HeaderAction is the header_checks action (warning, info, hold, ...).
	// HeaderName and HeaderValue are the header as logged; Postfix logs at
	// most 200 bytes of it.
	HeaderAction, HeaderName, HeaderValue string

	// Reject fields. Action is reject, milter-reject, discard, hold,
	// filter, redirect, warn, reject_warning (Postfix) or "rejected"
	// (Exim). Stage is the SMTP stage (CONNECT, HELO, MAIL, RCPT, DATA,
	// END-OF-MESSAGE, ...) or the SMTP command a remote reply answered.
	Action string
	Stage  string
	// ReplyCode is the SMTP reply code at the start of a reject's reply
	// text (0 when none).
	ReplyCode int
	Proto     string
	Helo      string

	// clean says that no field past the header was written since l was
	// last fully reset, so the next Parse need not reset them. Every
	// parser of a message body clears it before writing.
	clean bool
}

// Parser parses log lines. It holds only the timestamp settings and a
// small cache, and keeps no reference to a line it parsed (a caller may
// reuse the line's memory once it is done with the Line and the records
// built from it). It is not safe for concurrent use (use one per
// goroutine).
type Parser struct {
	// Ref fixes the year of RFC 3164 timestamps, which have none: a line
	// gets the latest year in which it is no more than FutureSlack after
	// Ref. Use the current time when tailing a live log and the file's
	// modification time for a finished file. A zero Ref leaves the year
	// at 0.
	Ref time.Time
	// FutureSlack is how far after Ref a timestamp may lie and still be
	// in Ref's year (clock skew between hosts, a Ref taken a little early).
	// Default 2 days.
	FutureSlack time.Duration
	// Location is the zone of timestamps written without one (RFC 3164,
	// Exim without log_timezone). Default UTC.
	Location *time.Location

	// start of the hour of the last timestamp (hourKind 1: RFC 3164, keyed
	// by "Mmm dd hh"; 2: ISO, keyed by "YYYY-MM-DDThh" and the zone).
	hourKey  string
	hourKind int
	hourLoc  *time.Location
	hourZone string // ISO: the zone text of the cached hour
	hourBase time.Time
	// ISO: the start of the last second within the cached hour
	secKey   [19]byte
	secBase  time.Time
	secValid bool
	zones    [4]zoneCache
	zoneNext int
	// the last "host program" prefixes seen, most recent first
	tags [4]hostTag
}

type zoneCache struct {
	off int
	loc *time.Location
}

// Parse parses one log line (without its line ending) into l and reports
// whether its header was understood (a syslog line in RFC 3164, ISO-8601 or
// RFC 5424 form, or an Exim main log line). pos is copied into l.Pos. A
// line whose header is understood but whose message is not is KindOther.
// When Parse returns false, l holds nothing useful.
func (p *Parser) Parse(line string, pos int64, l *Line) bool {
	if l.clean {
		// The last parse into l wrote only the header; a successful parse
		// sets the time, program and message again, so reset the rest.
		l.Kind, l.Host, l.PID, l.QueueID = KindOther, "", -1, ""
	} else {
		*l = Line{PID: -1, ConnUse: -1, Delay: -1, Delays: [4]float64{-1, -1, -1, -1}, Size: -1, Nrcpt: -1, UID: -1, clean: true}
	}
	l.Pos = pos
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	s := line
	// <PRI> prefix of raw syslog.
	if len(s) > 2 && s[0] == '<' {
		i := 1
		for i < len(s) && i < 5 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i > 1 && i < len(s) && s[i] == '>' {
			s = s[i+1:]
			if len(s) > 2 && s[0] == '1' && s[1] == ' ' {
				return p.parse5424(s[2:], l)
			}
		}
	}
	if len(s) < 16 {
		return false
	}
	var rest string
	switch {
	case isMonth(s):
		n, ok := p.parse3164Time(s, l)
		if !ok {
			return false
		}
		rest = s[n:]
	case isDigit(s[0]) && len(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == ' ':
		// Exim main log: "2024-01-02 03:04:05[.ddd][ +0100] [[pid]] ..."
		return p.parseEximMain(s, l)
	case isDigit(s[0]) && len(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T':
		n, ok := p.parseISOTime(s, l)
		if !ok {
			return false
		}
		rest = s[n:]
	default:
		return false
	}
	// " host tag: message"
	if len(rest) < 2 || rest[0] != ' ' {
		return false
	}
	if !p.parseHostTag(rest[1:], l) {
		return false
	}
	p.parseBody(l)
	return true
}

// hostTag is a remembered "host program" prefix of a line: a log's lines
// come from one host and a handful of programs, so comparing the prefix
// with the last few seen is cheaper than finding the host's end and
// scanning the tag byte by byte.
type hostTag struct {
	n      int // length of "host program" in text; 0: empty entry
	hostN  int // length of the host
	slash1 int // first and last '/' in the program, -1 when none
	slash2 int
	text   [64]byte
}

// parseHostTag reads "host program[pid]: message" or "host program:
// message".
func (p *Parser) parseHostTag(s string, l *Line) bool {
	for k := range p.tags {
		t := &p.tags[k]
		n := t.n
		// A remembered prefix holds no ' ' past the host and no ':' or
		// '[' at all, so a match followed by '[' or ':' splits the line
		// exactly as the scan below would.
		if n == 0 || n >= len(s) || s[n] != '[' && s[n] != ':' || s[:n] != string(t.text[:n]) {
			continue
		}
		hostN, slash1, slash2 := t.hostN, t.slash1, t.slash2
		if k > 0 {
			p.tags[0], p.tags[k] = p.tags[k], p.tags[0]
		}
		l.Host = s[:hostN]
		return p.parseTag(s[hostN+1:], n-hostN-1, slash1, slash2, l)
	}
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return false
	}
	l.Host = s[:sp]
	tag := s[sp+1:]
	slash1, slash2 := -1, -1
	i := 0
	// One table load per byte instead of four compares: this loop runs
	// over the program name of every line the cache above misses.
	for ; i < len(tag); i++ {
		t := tagBytes[tag[i]]
		if t == 0 {
			continue
		}
		if t != tagSlash {
			break
		}
		if slash1 < 0 {
			slash1 = i
		}
		slash2 = i
	}
	if i == 0 || i >= len(tag) || tag[i] == ' ' {
		return false
	}
	if n := sp + 1 + i; n <= len(p.tags[0].text) {
		copy(p.tags[1:], p.tags[:len(p.tags)-1])
		t := &p.tags[0]
		t.n, t.hostN, t.slash1, t.slash2 = n, sp, slash1, slash2
		copy(t.text[:], s[:n])
	}
	return p.parseTag(tag, i, slash1, slash2, l)
}

// tagBytes classes the bytes of a syslog tag: tagEnd for the bytes that
// end the program name (':', '[', and ' ', which makes the tag invalid),
// tagSlash for the separator of its components, 0 for the rest.
var tagBytes = [256]uint8{':': tagEnd, '[': tagEnd, ' ': tagEnd, '/': tagSlash}

const (
	tagEnd   = 1
	tagSlash = 2
)

// parseTag reads "program[pid]: message" or "program: message" where the
// program, s[:i], is known to end at a '[' or ':' and has its first and
// last '/' at slash1 and slash2 (-1 when none).
func (p *Parser) parseTag(s string, i, slash1, slash2 int, l *Line) bool {
	lb := -1
	prog := s[:i]
	if s[i] == '[' {
		lb = i
		pid := 0
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			pid = pid*10 + int(s[i]-'0')
		}
		if i == lb+1 || i-lb > 12 || i+1 >= len(s) || s[i] != ']' || s[i+1] != ':' {
			return false
		}
		l.PID = pid
		i++
	}
	msg := s[i+1:]
	if len(msg) > 0 && msg[0] == ' ' {
		msg = msg[1:]
	}
	// Solaris syslogd inserts "[ID 197553 mail.info] ".
	if len(msg) > 4 && msg[0] == '[' && strings.HasPrefix(msg, "[ID ") {
		if e := strings.Index(msg, "] "); e > 0 && e < 48 {
			msg = msg[e+2:]
		}
	}
	l.Program = prog
	l.Message = msg
	if slash1 < 0 {
		l.Instance, l.Service = prog, prog
	} else {
		l.Instance, l.Service = prog[:slash1], prog[slash2+1:]
	}
	return true
}

// parseBody dispatches on the program: Exim or Postfix (any other program
// name is tried as Postfix, since syslog_name is free-form).
func (p *Parser) parseBody(l *Line) {
	if isExim(l.Program) {
		l.MTA = "exim"
		msg := l.Message
		// Exim writes its own timestamp into syslog lines too
		// (syslog_timestamp); skip it.
		if len(msg) >= 20 && isDigit(msg[0]) && msg[4] == '-' && msg[10] == ' ' && msg[13] == ':' {
			msg = skipEximTime(msg)
		}
		parseExim(msg, l)
		return
	}
	l.MTA = "postfix"
	parsePostfix(l.Message, l)
}

func isExim(prog string) bool {
	return strings.HasPrefix(prog, "exim")
}

// parse5424 parses "TIMESTAMP HOST APP PROCID MSGID SD MSG" (RFC 5424
// after "<PRI>1 ").
func (p *Parser) parse5424(s string, l *Line) bool {
	field := func() (string, bool) {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			f := s
			s = ""
			return f, f != ""
		}
		f := s[:i]
		s = s[i+1:]
		return f, f != ""
	}
	ts, ok := field()
	if !ok || ts == "-" || len(ts) < 19 {
		return false
	}
	if _, ok := p.parseISOTime(ts, l); !ok {
		return false
	}
	host, ok1 := field()
	app, ok2 := field()
	procid, ok3 := field()
	_, ok4 := field() // MSGID
	if !(ok1 && ok2 && ok3 && ok4) {
		return false
	}
	// STRUCTURED-DATA: "-" or one or more [..] elements.
	if strings.HasPrefix(s, "-") {
		s = strings.TrimPrefix(s[1:], " ")
	} else if strings.HasPrefix(s, "[") {
		for strings.HasPrefix(s, "[") {
			end := sdEnd(s)
			if end < 0 {
				return false
			}
			s = s[end:]
		}
		s = strings.TrimPrefix(s, " ")
	} else {
		return false
	}
	s = strings.TrimPrefix(s, "\ufeff")
	if host != "-" {
		l.Host = host
	}
	if app == "-" {
		return false
	}
	l.Program = app
	if procid != "-" {
		pid := 0
		for i := 0; i < len(procid); i++ {
			if !isDigit(procid[i]) || i > 10 {
				pid = -1
				break
			}
			pid = pid*10 + int(procid[i]-'0')
		}
		l.PID = pid
	}
	l.Message = s
	setProgramParts(l)
	p.parseBody(l)
	return true
}

// sdEnd returns the index after one "[id param="value" ...]" element.
func sdEnd(s string) int {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ']' && !inQuote:
			return i + 1
		}
	}
	return -1
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func monthIndex(s string) int {
	if len(s) < 3 {
		return -1
	}
	for i, m := range months {
		if s[0] == m[0] && s[1] == m[1] && s[2] == m[2] {
			return i
		}
	}
	return -1
}

func isMonth(s string) bool { return len(s) > 4 && s[3] == ' ' && monthIndex(s) >= 0 }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits2(s string, i int) (int, bool) {
	if i+2 > len(s) || !isDigit(s[i]) || !isDigit(s[i+1]) {
		return 0, false
	}
	return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
}

// parse3164Time reads "Mmm dd hh:mm:ss" (day space-padded or not, optional
// fraction of a second) and returns its length.
func (p *Parser) parse3164Time(s string, l *Line) (int, bool) {
	mon := monthIndex(s)
	i := 4
	if s[i] == ' ' {
		i++
	}
	day := 0
	j := i
	for j < len(s) && isDigit(s[j]) && j-i < 2 {
		day = day*10 + int(s[j]-'0')
		j++
	}
	if j == i || day < 1 || day > 31 || j+9 > len(s) || s[j] != ' ' {
		return 0, false
	}
	j++
	h, ok1 := digits2(s, j)
	m, ok2 := digits2(s, j+3)
	sec, ok3 := digits2(s, j+6)
	if !ok1 || !ok2 || !ok3 || s[j+2] != ':' || s[j+5] != ':' || h > 23 || m > 59 || sec > 60 {
		return 0, false
	}
	end := j + 8
	ns := 0
	if end < len(s) && s[end] == '.' {
		var k int
		ns, k = readFraction(s, end+1)
		if k == end+1 {
			return 0, false
		}
		end = k
	}
	l.RawTime = s[:end]
	// The time is the cached start of its hour plus minutes and seconds:
	// log lines come in hour-long runs.
	hourKey := s[:j+2]
	if hourKey != p.hourKey || p.hourKind != 1 {
		loc := p.Location
		if loc == nil {
			loc = time.UTC
		}
		year := 0
		if !p.Ref.IsZero() {
			slack := p.FutureSlack
			if slack == 0 {
				slack = 48 * time.Hour
			}
			ref := p.Ref.In(loc)
			year = ref.Year()
			if time.Date(year, time.Month(mon+1), day, h, 0, 0, 0, loc).After(ref.Add(slack)) {
				year--
			}
		}
		p.hourKey, p.hourKind, p.hourBase = strings.Clone(hourKey), 1, time.Date(year, time.Month(mon+1), day, h, 0, 0, 0, loc)
	}
	l.Time = p.hourBase.Add(time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(ns))
	return end, true
}

// parseISOTime reads "YYYY-MM-DDThh:mm:ss[.frac][Z|+hh:mm|+hhmm]" and
// returns its length. Without a zone the time is in Parser.Location.
func (p *Parser) parseISOTime(s string, l *Line) (int, bool) {
	if len(s) < 19 {
		return 0, false
	}
	if p.hourKind == 2 {
		// Consecutive lines often share their second; a cached second lies
		// in the cached hour, so one comparison settles both.
		sameSec := p.secValid && s[:19] == string(p.secKey[:])
		if sameSec || s[:13] == p.hourKey {
			if n, ok := p.isoSameHour(s, sameSec, l); ok {
				return n, true
			}
		}
	}
	p.secValid = false
	y1, ok1 := digits2(s, 0)
	y2, ok2 := digits2(s, 2)
	mo, ok3 := digits2(s, 5)
	d, ok4 := digits2(s, 8)
	h, ok5 := digits2(s, 11)
	mi, ok6 := digits2(s, 14)
	sec, ok7 := digits2(s, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || s[13] != ':' || s[16] != ':' ||
		mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return 0, false
	}
	i := 19
	ns := 0
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		var k int
		ns, k = readFraction(s, i+1)
		if k == i+1 {
			return 0, false
		}
		i = k
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	zoneAt := i
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			loc = time.UTC
			i++
		case '+', '-':
			oh, okh := digits2(s, i+1)
			if !okh {
				return 0, false
			}
			j := i + 3
			om := 0
			if j < len(s) && s[j] == ':' {
				j++
			}
			if v, ok := digits2(s, j); ok {
				om = v
				j += 2
			}
			off := oh*3600 + om*60
			if s[i] == '-' {
				off = -off
			}
			loc = p.zone(off)
			i = j
		}
	}
	l.RawTime = s[:i]
	if s[:13] != p.hourKey || p.hourKind != 2 || p.hourLoc != loc || s[zoneAt:i] != p.hourZone {
		p.hourKey, p.hourKind, p.hourLoc, p.hourZone = strings.Clone(s[:13]), 2, loc, strings.Clone(s[zoneAt:i])
		p.hourBase = time.Date(y1*100+y2, time.Month(mo), d, h, 0, 0, 0, loc)
	}
	l.Time = p.hourBase.Add(time.Duration(mi)*time.Minute + time.Duration(sec)*time.Second + time.Duration(ns))
	return i, true
}

// isoSameHour reads minutes, seconds, fraction and zone of an ISO time
// whose "YYYY-MM-DDThh" is the cached hour's. It reports false when the
// zone differs (or the text is malformed), leaving the full parse to
// decide. sameSec says s[:19] is the cached second.
func (p *Parser) isoSameHour(s string, sameSec bool, l *Line) (int, bool) {
	var base time.Time
	if sameSec {
		base = p.secBase // same second as the last line
	} else {
		mi, ok1 := digits2(s, 14)
		sec, ok2 := digits2(s, 17)
		if !ok1 || !ok2 || s[13] != ':' || s[16] != ':' || mi > 59 || sec > 60 {
			return 0, false
		}
		base = p.hourBase.Add(time.Duration(mi)*time.Minute + time.Duration(sec)*time.Second)
		copy(p.secKey[:], s[:19])
		p.secBase, p.secValid = base, true
	}
	i := 19
	ns := 0
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		var k int
		ns, k = readFraction(s, i+1)
		if k == i+1 {
			return 0, false
		}
		i = k
	}
	// The zone text must be the cached one's.
	z := i
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			i++
		case '+', '-':
			i++
			for i < len(s) && (isDigit(s[i]) || s[i] == ':') && i-z <= 6 {
				i++
			}
		}
	}
	if s[z:i] != p.hourZone {
		return 0, false
	}
	l.RawTime = s[:i]
	l.Time = base.Add(time.Duration(ns))
	return i, true
}

// zone returns a cached fixed zone for an offset in seconds.
func (p *Parser) zone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	for _, z := range p.zones {
		if z.loc != nil && z.off == off {
			return z.loc
		}
	}
	loc := time.FixedZone("", off)
	p.zones[p.zoneNext] = zoneCache{off, loc}
	p.zoneNext = (p.zoneNext + 1) % len(p.zones)
	return loc
}

// setProgramParts splits Program into Instance (first component) and
// Service (last component).
func setProgramParts(l *Line) {
	prog := l.Program
	if i := strings.IndexByte(prog, '/'); i >= 0 {
		l.Instance = prog[:i]
		l.Service = prog[strings.LastIndexByte(prog, '/')+1:]
	} else {
		l.Instance = prog
		l.Service = prog
	}
}

// readFraction reads the digits of a fraction of a second at s[i:] and
// returns it in nanoseconds (digits past the ninth are skipped) and the
// index after the digits.
func readFraction(s string, i int) (ns, end int) {
	// Fast path for exactly six digits (rsyslog's RFC 3339 timestamps):
	// no loop, one multiplication by a constant.
	if i+6 <= len(s) && (i+6 == len(s) || !isDigit(s[i+6])) {
		d0, d1, d2, d3, d4, d5 := s[i]-'0', s[i+1]-'0', s[i+2]-'0', s[i+3]-'0', s[i+4]-'0', s[i+5]-'0'
		if d0 <= 9 && d1 <= 9 && d2 <= 9 && d3 <= 9 && d4 <= 9 && d5 <= 9 {
			us := int(d0)*100000 + int(d1)*10000 + int(d2)*1000 + int(d3)*100 + int(d4)*10 + int(d5)
			return us * 1000, i + 6
		}
	}
	k := i
	for k < len(s) && isDigit(s[k]) {
		if k-i < 9 {
			ns = ns*10 + int(s[k]-'0')
		}
		k++
	}
	if n := k - i; n < 9 {
		ns *= fracScale[n]
	}
	return ns, k
}

var fracScale = [9]int{1e9, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 1e2, 1e1}
