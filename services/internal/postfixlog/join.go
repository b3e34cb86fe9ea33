package postfixlog

import (
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bounceclass"
)

// Record is what a Joiner emits: a *Delivery or a *Reject.
type Record interface{ record() }

// LogHeader holds what every record takes from the header of its line:
// where the line is, when and by whom it was written, and which message it
// is about. Delivery and Reject embed it, so its fields read as theirs and
// encoding/json writes them inline, in this order, as if they were
// written out in each.
type LogHeader struct {
	// Pos is the Line's Pos (a line number or offset chosen by the caller).
	Pos int64
	// Time is the line's timestamp; RawTime is it as written.
	Time    time.Time
	RawTime string
	// MTA is "postfix" or "exim".
	MTA string
	// Host is the syslog host name ("" for an Exim main log).
	Host string
	// Program is the syslog tag without pid ("postfix/smtp",
	// "postfix-out/smtp", "postfix/amavis/smtp", "exim").
	Program string
	// Instance is the Postfix instance (the first component of Program).
	Instance string
	// Agent is the daemon the record speaks for (the last component of
	// Program, Line.Service); Delivery and Reject say which.
	Agent string
	// PID is the process id, -1 when not logged.
	PID int
	// QueueID is the Postfix queue id or the Exim message id, "" when the
	// line named none (NOQUEUE).
	QueueID string
}

// logHeader is the LogHeader of the records made from l.
func logHeader(l *Line) LogHeader {
	return LogHeader{
		Pos: l.Pos, Time: l.Time, RawTime: l.RawTime, MTA: l.MTA, Host: l.Host,
		Program: l.Program, Instance: l.Instance, Agent: l.Service, PID: l.PID,
		QueueID: l.QueueID,
	}
}

// Delivery is one delivery attempt for one recipient (a Postfix delivery
// agent's status line or an Exim "=>", "->", "**", "==" line), or one
// expiry (Postfix qmgr "status=expired"), with the message context the log
// gave for the same queue id before it.
//
// Strings taken from the line are substrings of the line passed to
// Parser.Parse; context strings are the Joiner's own copies.
type Delivery struct {
	// LogHeader says which line this is and who wrote it. Its Agent is the
	// delivery agent: smtp, lmtp, local, virtual, pipe, error, retry,
	// discard, ... (the last component of Program); qmgr for an expiry;
	// the transport (T=) for Exim.
	LogHeader

	// Recipient is the envelope recipient (to=). For an expiry it is the
	// one recipient still deferred when there was exactly one (else "";
	// see Pending).
	Recipient string
	// OrigRecipient is orig_to= (the address before aliasing), "" when
	// not logged.
	OrigRecipient string
	// Pending lists, for an expiry, the recipients whose last logged
	// attempt was a deferral.
	Pending []string

	// Status is sent, deferred, bounced or expired (Postfix also logs
	// undeliverable / deliverable for address probes and SOFTBOUNCE with
	// soft_bounce=yes; Exim "*>" is "suppressed").
	Status string
	// DSN is the enhanced status code (RFC 3463), e.g. "5.7.1".
	DSN string

	// Relay is the relay= value as written ("host[ip]:port", "none",
	// "local", a transport name); for Exim the H= value.
	Relay     string
	RelayHost string
	RelayIP   string
	// RelayPath is a UNIX-domain socket in brackets (private/dovecot-lmtp).
	RelayPath string
	RelayPort int
	// ConnUse is conn_use=, -1 when not logged (a fresh connection).
	ConnUse int
	// Delay is delay= in seconds (Exim QT=), -1 when not logged.
	Delay float64
	// Delays is delays=a/b/c/d in seconds (before qmgr, in qmgr,
	// connection setup, transmission), each -1 when not logged.
	Delays [4]float64
	// TLS is Postfix's tls= note, when logged.
	TLS string

	// Reply is the text in parentheses after the status, verbatim (Exim:
	// the C="..." confirmation or the error after the colon).
	Reply string
	// Truncated is set when the line was cut before the reply ended.
	Truncated bool
	// RemoteReply is the remote server's own reply inside Reply (without
	// "host X[ip] said: " and " (in reply to CMD command)"), or Reply when
	// it quotes none.
	RemoteReply string
	// ReplyCode is the remote SMTP reply code, 0 when there was none.
	ReplyCode int
	// Command is the SMTP command the remote reply answered ("RCPT TO",
	// "MAIL FROM", "end of DATA"), "" when unknown.
	Command string
	// QueuedAs is the next hop's queue id when its reply says "queued as
	// X" (a content filter on this host re-injecting the message).
	QueuedAs string
	// Router and Transport are Exim's R= and T=.
	Router, Transport string

	// Classification is the bounce classifier's verdict on the reply
	// ("delivered" for a sent attempt, "expired" for an expiry).
	Classification bounceclass.Result

	// MessageContext is what the log said about the message before this
	// line (zero values when it did not).
	MessageContext
}

// MessageContext is what the log tells about a queued message: from smtpd
// (client), pickup, cleanup (message-id, the tracking header), qmgr
// (sender, size, nrcpt), or Exim's "<=" line.
type MessageContext struct {
	// MessageID is the Message-ID header without angle brackets;
	// MessageIDSet says cleanup logged one (it may be empty: "<>").
	MessageID    string
	MessageIDSet bool
	// TrackingHeader is the raw value of the tracking header as logged by
	// a header_checks WARN rule (not verified here). Postfix logs at most
	// 200 bytes of "Name: value"; TrackingTruncated says the logged header
	// reached that limit and may be cut.
	TrackingHeader    string
	TrackingTruncated bool
	// Sender is the envelope sender (qmgr from=); SenderSet says it was
	// logged ("" with SenderSet is the null sender of a bounce).
	Sender    string
	SenderSet bool
	// Size is the queued size in bytes and Nrcpt the number of
	// recipients (qmgr), -1 when not logged.
	Size  int64
	Nrcpt int
	// ClientHost and ClientIP are the client that submitted the message
	// (smtpd client=); for a message re-injected by a content filter, the
	// original message's client. ClientHost is "local" for pickup.
	ClientHost string
	ClientIP   string
	// SASLUsername is the authenticated submitter, when logged.
	SASLUsername string
	// ParentQueueID is the queue id of the message this one was
	// re-injected from (content filter), when known.
	ParentQueueID string
}

func (*Delivery) record() {}

// Reject is a client command our own MTA refused before the message was
// queued (Postfix "NOQUEUE: reject: RCPT from ..", postscreen, milter
// rejects, cleanup header/body rejects; Exim "rejected RCPT").
type Reject struct {
	// LogHeader says which line this is and who wrote it. Its Agent is the
	// daemon that refused (smtpd, postscreen, cleanup, exim); its QueueID
	// is set when the refusal named a queue id (a recipient refused after
	// another was accepted, a milter or header reject).
	LogHeader
	// Action is reject, milter-reject or (Exim) rejected.
	Action string
	// Stage is the SMTP stage (CONNECT, HELO, MAIL, RCPT, DATA,
	// END-OF-MESSAGE) or "header" for a header_checks reject.
	Stage      string
	ClientHost string
	ClientIP   string
	ClientPort int
	Sender     string
	SenderSet  bool
	Recipient  string
	Proto      string
	Helo       string
	// Reply is our reply to the client, e.g. "554 5.7.1 <x@y>: Relay
	// access denied"; ReplyCode and DSN are its codes.
	Reply     string
	ReplyCode int
	DSN       string
	// Classification is the bounce classifier's verdict on Reply.
	Classification bounceclass.Result
	// MessageContext is set for a reject with a queue id.
	MessageContext
}

func (*Reject) record() {}

// JoinerConfig bounds a Joiner. Zero values take the defaults.
type JoinerConfig struct {
	// TrackingHeader is the header whose header_checks log line carries
	// the tracking value. Default tracking.HeaderName (X-Mailmon-Track).
	TrackingHeader string
	// MaxMessages bounds the queue ids held (the least recently seen go
	// first). Default 200,000.
	MaxMessages int
	// MaxAge drops a queue id not seen for this long (by log time).
	// Default 6 days (Postfix's maximal_queue_lifetime is 5 days).
	MaxAge time.Duration
	// RemovedTTL keeps a removed queue id this long (by log time) for
	// late lines before forgetting it. Default 10 minutes.
	RemovedTTL time.Duration
	// MaxRemoved bounds the removed queue ids kept. Default 20,000.
	MaxRemoved int
	// Classify classifies a remote reply. Default bounceclass.Classify.
	Classify func(bounceclass.Input) bounceclass.Result
	// ReuseRecords makes Add return the same *Delivery (and *Reject) each
	// time, overwritten by the next Add, instead of allocating one per
	// record: for callers that are done with a record before they add the
	// next line (a record points into its line anyway).
	ReuseRecords bool
}

// JoinerStats counts what a Joiner did.
type JoinerStats struct {
	// Messages is the number of queue ids held now (Removed of them
	// already removed).
	Messages, Removed int
	// Deliveries and Rejects are the records emitted.
	Deliveries, Rejects int64
	// Evicted counts queue ids dropped by age or count before "removed";
	// Reused counts queue ids seen again for a new message.
	Evicted, Reused int64
	// Orphans counts deliveries emitted with no message context at all.
	Orphans int64
}

// Joiner joins parsed lines by queue id and emits one record per delivery
// attempt, expiry and reject as soon as its line arrives. It is pure: it
// uses only the lines' own timestamps (for eviction by age) and never
// reads a clock. It copies every string it keeps, so the lines' memory may
// be reused once the records returned for them have been used (records
// point into their line). Not safe for concurrent use.
type Joiner struct {
	cfg       JoinerConfig
	msgs      map[stateKey]*msgState
	active    stateList
	removed   stateList
	now       time.Time
	instances map[string][]string // host -> instances seen
	intern    map[string]string
	stats     JoinerStats
	// free holds dropped states for create to reuse: queue ids come and
	// go all the time, and a state is a few hundred bytes.
	free []*msgState
	// reusedDelivery and reusedReject are the records handed out with
	// ReuseRecords.
	reusedDelivery Delivery
	reusedReject   Reject
}

type stateKey struct{ host, instance, qid string }

type msgState struct {
	key stateKey
	ctx MessageContext
	// started: a start line (client=, pickup, cleanup, qmgr) was seen;
	// attempts: delivery lines seen.
	started    bool
	clientSeen bool
	attempts   int
	parentKey  stateKey
	deferred   []string
	isRemoved  bool
	last       time.Time
	prev       *msgState
	next       *msgState
}

type stateList struct {
	head, tail *msgState // head = most recently touched
	n          int
}

func (q *stateList) pushFront(s *msgState) {
	s.prev, s.next = nil, q.head
	if q.head != nil {
		q.head.prev = s
	}
	q.head = s
	if q.tail == nil {
		q.tail = s
	}
	q.n++
}

func (q *stateList) remove(s *msgState) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		q.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		q.tail = s.prev
	}
	s.prev, s.next = nil, nil
	q.n--
}

// NewJoiner returns a Joiner with cfg's bounds.
func NewJoiner(cfg JoinerConfig) *Joiner {
	if cfg.TrackingHeader == "" {
		cfg.TrackingHeader = tracking.HeaderName
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 200000
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 6 * 24 * time.Hour
	}
	if cfg.RemovedTTL <= 0 {
		cfg.RemovedTTL = 10 * time.Minute
	}
	if cfg.MaxRemoved <= 0 {
		cfg.MaxRemoved = 20000
	}
	if cfg.Classify == nil {
		cfg.Classify = bounceclass.Classify
	}
	return &Joiner{
		cfg:       cfg,
		msgs:      make(map[stateKey]*msgState),
		instances: make(map[string][]string),
		intern:    make(map[string]string),
	}
}

// Stats returns the Joiner's counters.
func (j *Joiner) Stats() JoinerStats {
	s := j.stats
	s.Messages = len(j.msgs)
	s.Removed = j.removed.n
	return s
}

// Evict drops the queue ids not seen since now minus MaxAge, and removed
// ones older than RemovedTTL, by the caller's clock. Add does the same by
// the newest log time seen, so a caller needs Evict only when the log goes
// quiet. It returns the number dropped.
func (j *Joiner) Evict(now time.Time) int {
	if now.After(j.now) {
		j.now = now
	}
	return j.evict()
}

// Add takes one parsed line and returns the record it completes, or nil.
// Lines may come interleaved, out of order or with some missing: a record
// carries whatever context was seen before it.
func (j *Joiner) Add(l *Line) Record {
	if l.Kind == KindOther || l.Kind == KindRemote {
		return nil // nothing to join; a later line's time advances the clock
	}
	advanced := false
	if l.Time.After(j.now) {
		j.now = l.Time
		advanced = true
	}
	var rec Record
	switch l.Kind {
	case KindClient, KindPickup, KindArrival:
		s := j.startState(l)
		if l.Kind == KindClient {
			if l.ClientHost != "" || l.ClientIP != "" {
				s.ctx.ClientHost = j.str(l.ClientHost)
				s.ctx.ClientIP = j.str(l.ClientIP)
			}
		} else if l.Kind == KindPickup {
			s.ctx.ClientHost = "local"
			s.ctx.ClientIP = ""
		} else {
			s.ctx.ClientHost = j.str(l.ClientHost)
			s.ctx.ClientIP = j.str(l.ClientIP)
		}
		if l.SASLUsername != "" {
			s.ctx.SASLUsername = strings.Clone(l.SASLUsername)
		}
		if l.FromSet {
			s.ctx.Sender, s.ctx.SenderSet = strings.Clone(l.From), true
		}
		if l.Size >= 0 {
			s.ctx.Size = l.Size
		}
		if l.MessageID != "" {
			s.ctx.MessageID, s.ctx.MessageIDSet = strings.Clone(l.MessageID), true
		}
		if l.OrigQueueID != "" {
			if p := j.findAny(l.Host, l.OrigQueueID, l.Instance); p != nil {
				s.parentKey = p.key
				inherit(&s.ctx, p)
			}
		}
	case KindMessageID:
		s := j.beginState(l)
		s.ctx.MessageID, s.ctx.MessageIDSet = strings.Clone(l.MessageID), true
	case KindHeader:
		if strings.EqualFold(l.HeaderName, j.cfg.TrackingHeader) {
			s := j.beginState(l)
			s.ctx.TrackingHeader = cleanHeader(l.HeaderValue)
			s.ctx.TrackingTruncated = len(l.HeaderName)+2+len(l.HeaderValue) >= 200
		}
	case KindQueued:
		s := j.beginState(l)
		if l.FromSet {
			s.ctx.Sender, s.ctx.SenderSet = strings.Clone(l.From), true
		}
		if l.Size >= 0 {
			s.ctx.Size = l.Size
		}
		if l.Nrcpt >= 0 {
			s.ctx.Nrcpt = l.Nrcpt
		}
	case KindDelivery, KindExpired:
		rec = j.delivery(l)
	case KindRemoved:
		if s := j.lookup(l); s != nil && !s.isRemoved {
			j.active.remove(s)
			s.isRemoved = true
			s.last = j.now
			j.removed.pushFront(s)
		}
	case KindReject:
		if r := j.reject(l); r != nil {
			rec = r
		}
	}
	if advanced || j.active.n > j.cfg.MaxMessages || j.removed.n > j.cfg.MaxRemoved {
		j.evict()
	}
	return rec
}

func (j *Joiner) delivery(l *Line) *Delivery {
	s := j.lookup(l)
	if s == nil {
		s = j.create(l)
	} else {
		j.touch(s)
	}
	s.attempts++
	d := &j.reusedDelivery
	if !j.cfg.ReuseRecords {
		d = new(Delivery)
	}
	*d = Delivery{
		LogHeader: logHeader(l), Recipient: l.To, OrigRecipient: l.OrigTo,
		Status: l.Status, DSN: l.DSN, Relay: l.Relay, RelayHost: l.RelayHost,
		RelayIP: l.RelayIP, RelayPath: l.RelayPath, RelayPort: l.RelayPort,
		ConnUse: l.ConnUse, Delay: l.Delay, Delays: l.Delays, TLS: l.TLS,
		Reply: l.Reply, Truncated: l.Truncated, Router: l.Router, Transport: l.Transport,
	}
	if l.Kind == KindExpired {
		d.Status = "expired"
		d.Agent = l.Service
		if len(s.deferred) > 0 {
			d.Pending = append([]string(nil), s.deferred...)
			if len(s.deferred) == 1 {
				d.Recipient = s.deferred[0]
			}
		}
		s.deferred = s.deferred[:0]
	} else {
		s.trackRecipient(l.To, l.Status)
	}
	if l.MTA == "exim" {
		d.RemoteReply, d.Command = EximRemoteReply(l.Reply)
	} else {
		d.RemoteReply, d.Command = RemoteReply(l.Reply)
	}
	code, st := leadingCodes(d.RemoteReply)
	d.ReplyCode = code
	if d.DSN == "" {
		d.DSN = st
	}
	d.QueuedAs = queuedAs(l.Reply)
	if d.QueuedAs != "" && (isLoopback(l.RelayIP) || l.RelayPath != "") {
		if c := j.findAny(l.Host, d.QueuedAs, l.Instance); c != nil && c != s {
			c.parentKey = s.key
			inherit(&c.ctx, s)
		} else if c == nil {
			// The next hop's lines have not come yet: hold its context.
			nl := Line{Host: l.Host, Instance: l.Instance, QueueID: d.QueuedAs, Time: l.Time}
			c := j.create(&nl)
			c.parentKey = s.key
			inherit(&c.ctx, s)
		}
	}
	if s.parentKey.qid != "" {
		if p := j.msgs[s.parentKey]; p != nil {
			inherit(&s.ctx, p)
		}
	}
	d.MessageContext = s.ctx
	if !s.started && !s.ctx.MessageIDSet && !s.ctx.SenderSet && s.ctx.ClientHost == "" {
		j.stats.Orphans++
	}
	d.Classification = j.classify(d.Status, d.RemoteReply, d.ReplyCode, d.DSN)
	j.stats.Deliveries++
	return d
}

func (j *Joiner) classify(status, text string, code int, dsn string) bounceclass.Result {
	switch status {
	case "sent", "deliverable", "suppressed":
		return bounceclass.Result{Reason: bounceclass.ReasonDelivered, Category: bounceclass.CategoryOf(bounceclass.ReasonDelivered), ReplyCode: code, Status: dsn}
	case "expired":
		return bounceclass.Result{Reason: bounceclass.ReasonExpired, Category: bounceclass.CategoryOf(bounceclass.ReasonExpired), ReplyCode: code, Status: dsn}
	}
	return j.cfg.Classify(bounceclass.Input{Text: text, ReplyCode: code, Status: dsn})
}

func (j *Joiner) reject(l *Line) *Reject {
	switch l.Action {
	case "reject", "milter-reject", "rejected":
	default:
		return nil
	}
	r := &j.reusedReject
	if !j.cfg.ReuseRecords {
		r = new(Reject)
	}
	*r = Reject{
		LogHeader: logHeader(l), Action: l.Action, Stage: l.Stage,
		ClientHost: l.ClientHost, ClientIP: l.ClientIP, ClientPort: l.ClientPort,
		Sender: l.From, SenderSet: l.FromSet, Recipient: l.To, Proto: l.Proto, Helo: l.Helo,
		Reply: l.Reply, ReplyCode: l.ReplyCode, DSN: l.DSN,
	}
	if l.QueueID != "" {
		if s := j.lookup(l); s != nil {
			j.touch(s)
			r.MessageContext = s.ctx
		}
	}
	r.Classification = j.cfg.Classify(bounceclass.Input{Text: r.Reply, ReplyCode: r.ReplyCode, Status: r.DSN})
	j.stats.Rejects++
	return r
}

// trackRecipient keeps the list of recipients whose last attempt was
// deferred, for expiries.
func (s *msgState) trackRecipient(rcpt, status string) {
	idx := -1
	for i, r := range s.deferred {
		if r == rcpt {
			idx = i
			break
		}
	}
	if status == "deferred" {
		if idx < 0 && len(s.deferred) < 1000 {
			s.deferred = append(s.deferred, strings.Clone(rcpt))
		}
		return
	}
	if idx >= 0 {
		s.deferred = append(s.deferred[:idx], s.deferred[idx+1:]...)
	}
}

// inherit fills the context a re-injected message lacks from the message it
// came from; the client is the original submitter's.
func inherit(c *MessageContext, p *msgState) {
	pc := &p.ctx
	if !c.MessageIDSet && pc.MessageIDSet || c.MessageID == "" && pc.MessageID != "" {
		c.MessageID, c.MessageIDSet = pc.MessageID, pc.MessageIDSet
	}
	if c.TrackingHeader == "" {
		c.TrackingHeader, c.TrackingTruncated = pc.TrackingHeader, pc.TrackingTruncated
	}
	if !c.SenderSet && pc.SenderSet {
		c.Sender, c.SenderSet = pc.Sender, true
	}
	if pc.ClientHost != "" || pc.ClientIP != "" {
		c.ClientHost, c.ClientIP = pc.ClientHost, pc.ClientIP
	}
	if c.SASLUsername == "" {
		c.SASLUsername = pc.SASLUsername
	}
	c.ParentQueueID = p.key.qid
}

// startState returns the state for a line that starts a message (smtpd
// client=, pickup, Exim "<="), resetting a state whose queue id is being
// reused for a new message.
func (j *Joiner) startState(l *Line) *msgState {
	s := j.lookup(l)
	if s != nil && (s.isRemoved || s.attempts > 0 || s.clientSeen) {
		j.drop(s)
		j.stats.Reused++
		s = nil
	}
	if s == nil {
		s = j.create(l)
	} else {
		j.touch(s)
	}
	s.started = true
	s.clientSeen = true
	return s
}

// beginState returns the state for a line logged while a message is being
// queued (cleanup, qmgr); a removed state is a reused queue id.
func (j *Joiner) beginState(l *Line) *msgState {
	s := j.lookup(l)
	if s != nil && s.isRemoved {
		j.drop(s)
		j.stats.Reused++
		s = nil
	}
	if s == nil {
		s = j.create(l)
	} else {
		j.touch(s)
	}
	s.started = true
	return s
}

func (j *Joiner) key(l *Line) stateKey {
	return stateKey{l.Host, l.Instance, l.QueueID}
}

func (j *Joiner) lookup(l *Line) *msgState {
	return j.msgs[j.key(l)]
}

// findAny looks a queue id up in the preferred instance, then in the other
// instances seen on host (a content filter may re-inject into another).
func (j *Joiner) findAny(host, qid, prefer string) *msgState {
	if s := j.msgs[stateKey{host, prefer, qid}]; s != nil {
		return s
	}
	for _, inst := range j.instances[host] {
		if inst == prefer {
			continue
		}
		if s := j.msgs[stateKey{host, inst, qid}]; s != nil {
			return s
		}
	}
	return nil
}

func (j *Joiner) create(l *Line) *msgState {
	host := j.str(l.Host)
	inst := j.str(l.Instance)
	known := false
	for _, i := range j.instances[host] {
		if i == inst {
			known = true
			break
		}
	}
	if !known && len(j.instances[host]) < 64 {
		j.instances[host] = append(j.instances[host], inst)
	}
	var s *msgState
	if n := len(j.free); n > 0 {
		s = j.free[n-1]
		j.free = j.free[:n-1]
	} else {
		s = new(msgState)
	}
	*s = msgState{
		key:      stateKey{host, inst, strings.Clone(l.QueueID)},
		ctx:      MessageContext{Size: -1, Nrcpt: -1},
		last:     l.Time,
		deferred: s.deferred[:0],
	}
	if s.last.IsZero() {
		s.last = j.now
	}
	j.msgs[s.key] = s
	j.active.pushFront(s)
	return s
}

func (j *Joiner) touch(s *msgState) {
	if j.now.After(s.last) {
		s.last = j.now
	}
	if s.isRemoved {
		return // a late line for a removed message: keep it on the removed clock
	}
	if j.active.head != s {
		j.active.remove(s)
		j.active.pushFront(s)
	}
}

func (j *Joiner) drop(s *msgState) {
	if s.isRemoved {
		j.removed.remove(s)
	} else {
		j.active.remove(s)
	}
	delete(j.msgs, s.key)
	// Nothing keeps a pointer to a dropped state (links between states go
	// by key, records copy the context), so create may reuse it.
	if len(j.free) < 1024 {
		j.free = append(j.free, s)
	}
}

func (j *Joiner) evict() int {
	n := 0
	for t := j.active.tail; t != nil && (j.active.n > j.cfg.MaxMessages || j.now.Sub(t.last) > j.cfg.MaxAge); t = j.active.tail {
		j.drop(t)
		j.stats.Evicted++
		n++
	}
	for t := j.removed.tail; t != nil && (j.removed.n > j.cfg.MaxRemoved || j.now.Sub(t.last) > j.cfg.RemovedTTL); t = j.removed.tail {
		j.drop(t)
		n++
	}
	if len(j.intern) >= 100000 || len(j.instances) > 10000 {
		// Host, instance and client names are few; a flood of distinct
		// ones (a misparsed log) must not grow these tables without bound.
		// Forgetting them costs only copies and cross-instance links.
		clear(j.intern)
		clear(j.instances)
	}
	return n
}

// str returns an interned copy of a short, often repeated string (host,
// instance, client address).
func (j *Joiner) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := j.intern[s]; ok {
		return v
	}
	c := strings.Clone(s)
	if len(j.intern) < 100000 {
		j.intern[c] = c
	}
	return c
}

// cleanHeader copies a logged header value, turning syslog's escaped
// control characters (#011 tab, #012 newline, #015 CR, from a folded
// header) into spaces.
func cleanHeader(v string) string {
	if strings.IndexByte(v, '#') < 0 && strings.IndexAny(v, "\t\r\n") < 0 {
		return strings.Clone(v)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '#' && i+3 < len(v) && v[i+1] == '0' && (v[i+2:i+4] == "11" || v[i+2:i+4] == "12" || v[i+2:i+4] == "15") {
			b.WriteByte(' ')
			i += 3
			continue
		}
		if c == '\t' || c == '\r' || c == '\n' {
			c = ' '
		}
		b.WriteByte(c)
	}
	return b.String()
}

// leadingCodes returns the reply code and enhanced status a remote reply
// starts with ("550 5.1.1 ...", "550-5.1.1 ..."), 0 and "" when it does not
// start with a code.
func leadingCodes(s string) (int, string) {
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
		return 0, ""
	}
	code := int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	return code, enhancedAt(strings.TrimLeft(s[3:], " -"))
}

// queuedAs returns X from the last "queued as X" (Postfix, Sendmail) or
// Exim "id=X" in a reply.
func queuedAs(reply string) string {
	var rest string
	if i := strings.Index(reply, "queued as "); i >= 0 {
		rest = reply[i+len("queued as "):]
		for {
			k := strings.Index(rest, "queued as ")
			if k < 0 {
				break
			}
			rest = rest[k+len("queued as "):]
		}
	} else if i := strings.Index(reply, " id="); i >= 0 {
		rest = reply[i+len(" id="):]
		for {
			k := strings.Index(rest, " id=")
			if k < 0 {
				break
			}
			rest = rest[k+len(" id="):]
		}
	} else {
		return ""
	}
	e := 0
	for e < len(rest) && (rest[e] >= '0' && rest[e] <= '9' || rest[e] >= 'A' && rest[e] <= 'Z' || rest[e] >= 'a' && rest[e] <= 'z' || rest[e] == '-') {
		e++
	}
	if e < 5 {
		return ""
	}
	return rest[:e]
}

func isLoopback(ip string) bool {
	return strings.HasPrefix(ip, "127.") || ip == "::1" || strings.HasPrefix(ip, "::ffff:127.")
}
