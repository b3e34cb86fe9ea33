// Package postfixlog reads Postfix and Exim logs: it parses each line
// (Parser), joins the lines of one message by queue id (Joiner) and emits
// one Delivery per recipient attempt and per expiry, and one Reject per
// client command our own MTA refused. It is pure: no I/O, no clock, no
// goroutines. The caller reads the log, owns time (Parser.Ref for the year
// of RFC 3164 timestamps, the lines' own timestamps for eviction) and
// decides what to do with the records; the mta-log-tailer worker publishes
// them as delivery.attempted events.
//
// # Line format
//
// Postfix logs through syslog. A line is a syslog header and a message:
//
//	Jan  2 03:04:05 mx1 postfix/smtp[4711]: 3F1A22C0A1: to=<a@example.org>, ...
//	2024-01-02T03:04:05.123456+01:00 mx1 postfix/smtp[4711]: 3F1A22C0A1: ...
//	<22>1 2024-01-02T03:04:05Z mx1 postfix/smtp 4711 - - 3F1A22C0A1: ...
//
// The timestamp is RFC 3164's "Mmm dd hh:mm:ss" (day padded with a space,
// no year, no zone; a fraction of a second is accepted), ISO 8601 / RFC
// 3339 as rsyslog's high-precision format and journalctl -o short-iso
// write it (zone "Z", "+01:00" or "+0100"), or a full RFC 5424 frame
// ("<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"). An RFC 3164 line has
// no year: it gets the latest year in which it lies no more than
// Parser.FutureSlack (2 days) after Parser.Ref, so a log read on 2 January
// places "Dec 31" in the year before. Zone-less times are in
// Parser.Location.
//
// The syslog tag is the service's syslog_name and the daemon, with its pid:
// "postfix/smtp", "postfix/submission/smtpd" (master.cf "-o
// syslog_name=postfix/submission", same instance), "postfix-10.1.2.3/smtp"
// (a second instance, its own queue). Line.Instance is the first component
// (which queue), Line.Service the last (which daemon). Any tag is accepted:
// the message decides what a line is, so renamed instances and transports
// (postfix/amavis/smtp) parse like the default ones.
//
// # Queue ids and a message's life
//
// A queue id is short (upper-case hex from the time's microseconds and the
// queue file's inode, e.g. 3F1A22C0A1) or, with enable_long_queue_ids, long
// (10 base-52 characters of time, 'z', the inode: 4PbC4x469Jz3tBr). Short
// ids are reused once the file is gone; NOQUEUE stands for "not queued".
// A message's lines, in the order Postfix writes them, interleaved with
// every other message's:
//
//	smtpd    QID: client=host[ip], sasl_method=PLAIN, sasl_username=u    (or pickup: QID: uid=1000 from=<u>)
//	cleanup  QID: message-id=<id@example.com>
//	cleanup  QID: warning: header X-Mailmon-Track: v=1; ... from host[ip]; from=<s> to=<r> proto=ESMTP helo=<h>
//	qmgr     QID: from=<s>, size=1234, nrcpt=2 (queue active)
//	smtp     QID: to=<r>, relay=mx.example.org[192.0.2.7]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)
//	smtp     QID: to=<r2>, relay=..., dsn=4.7.1, status=deferred (host mx[ip] said: 451 4.7.1 try later (in reply to RCPT TO command))
//	qmgr     QID: from=<s>, size=1234, nrcpt=2 (queue active)         (again at each retry)
//	qmgr     QID: from=<s>, status=expired, returned to sender        (after maximal_queue_lifetime)
//	qmgr     QID: removed
//
// A delivery line's fields: to= the recipient, orig_to= the address before
// aliasing (when different), relay= the next hop as host[ip]:port, or none,
// local, virtual, a pipe transport's name, or host[private/socket] for a
// UNIX-domain socket; conn_use= the deliveries a cached connection had
// carried; delay= seconds since the message was queued; delays=a/b/c/d the
// seconds before the queue manager, in it, in connection setup (DNS, HELO,
// TLS) and in transmission; dsn= the enhanced status code; status= sent,
// deferred, bounced (expired from qmgr; deliverable/undeliverable for
// address probes; SOFTBOUNCE with soft_bounce=yes); then, in parentheses,
// the remote reply as Postfix words it ("host X[ip] said: 550 5.1.1 ...
// (in reply to RCPT TO command)") or Postfix's own explanation. Every
// delivery agent writes this one format: smtp, lmtp, local, virtual, pipe,
// error, retry and discard.
//
// NOQUEUE rejects are smtpd's (and postscreen's) refusals before a queue
// file exists, written as
//
//	NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 <r>: Relay access denied; from=<s> to=<r> proto=ESMTP helo=<h>
//
// (postscreen separates the key-values with commas; milter-reject, and a
// queue id instead of NOQUEUE once a recipient was accepted, follow the same
// form). They are Reject records.
//
// The tracking header is logged by a header_checks rule with the WARN
// action, e.g. "/^X-Mailmon-Track:/ WARN". cleanup logs at most 200 bytes
// of "Name: value" (cleanup_act_log's %.200s), so a longer header arrives
// cut; MessageContext.TrackingTruncated flags that. The value is captured
// raw; schemas/tracking verifies it.
//
// # Joining
//
// Joiner keys messages by host, instance and queue id. It records the
// context lines (client, pickup, message-id, tracking header, qmgr
// sender/size/nrcpt) and emits a Delivery the moment a delivery or expiry
// line arrives, with whatever context it has then; lines that come late or
// never only leave fields empty. "removed" retires a queue id but keeps it
// for RemovedTTL for late lines; a start line (client=, pickup) for a queue
// id that was removed or already delivered begins a new message (queue-id
// reuse). A content filter that re-injects a message (amavis on
// 127.0.0.1:10024, "250 ... queued as NEWQID", or smtpd's orig_queue_id=
// from XFORWARD) links the new queue id to the original, so deliveries of
// the re-injected copy carry the original's client, message-id and tracking
// header. Memory is bounded by JoinerConfig: MaxMessages queue ids (least
// recently seen dropped first), MaxAge by log time, and MaxRemoved /
// RemovedTTL for retired ones.
//
// # Exim
//
// Exim's main log (or its syslog lines) has a line per event, keyed by the
// message id (1rABCD-000123-AB, or 6-11-4 characters since 4.97):
//
//	2024-01-02 03:04:05 1rABCD-000123-AB <= s@example.com H=client [192.0.2.1] P=esmtps S=1234 id=m@example.com
//	2024-01-02 03:04:06 1rABCD-000123-AB => r@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.7] C="250 2.0.0 OK"
//	2024-01-02 03:04:06 1rABCD-000123-AB -> r2@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.7] C="250 OK"
//	2024-01-02 03:04:06 1rABCD-000123-AB ** r3@example.net R=dnslookup T=remote_smtp H=mx.example.net [192.0.2.8]: SMTP error from remote mail server after RCPT TO:<r3@example.net>: 550 5.1.1 unknown
//	2024-01-02 03:04:06 1rABCD-000123-AB == r4@example.com R=dnslookup T=remote_smtp defer (-44) H=mx.example.com [192.0.2.9]: SMTP error from remote mail server after RCPT TO:<r4@example.com>: 451 4.7.1 later
//	2024-01-02 03:04:07 1rABCD-000123-AB Completed
//
// "=>" is a delivery, "->" a further address delivered in the same
// transaction, "**" a permanent failure, "==" a deferral, "<=" the
// arrival, "Completed" the end. H= is the remote host and [ip]:port, R= the
// router, T= the transport, C= the remote confirmation; the error text of
// "**" and "==" follows the first colon after the fields. A "rejected RCPT"
// line is a Reject.
//
// # Status codes
//
// dsn= is an enhanced mail system status code (RFC 3463):
// class.subject.detail, class 2 success, 4 persistent transient failure
// (retry), 5 permanent failure; subject 1 addressing (5.1.1 bad
// destination mailbox), 2 mailbox (4.2.2 full), 3 mail system, 4 network
// and routing (4.4.1 no answer, 4.4.7 delivery time expired), 5 mail
// delivery protocol, 6 content, 7 security or policy (5.7.1 delivery not
// authorised; 5.7.26 and friends for authentication). Postfix derives it
// from the remote reply when the server sends one and makes one up
// otherwise, so the TEXT of the reply says more: a banner-time "554 ...
// poor reputation" is logged as dsn=4.0.0 deferred. Deliveries are
// therefore classified by their remote reply text with
// services/internal/bounceclass, which lets the text decide over the codes.
//
// # Work
//
// Parser.Parse and Joiner.Add are linear in the line (every key=value
// list is read in one pass, however its values are written) and do work
// per line that does not grow with the lines before it; the joiner's
// memory is bounded by JoinerConfig. The work of one line is therefore
// bounded by its length, which the caller caps (the mta-log-tailer's
// max_line_bytes, 64 KiB by default; `mailmon inspect postfix-log` cuts
// lines at 1 MiB).
package postfixlog
