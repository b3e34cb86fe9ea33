// Package fblingester is the fbl-ingester worker: it receives the reports
// mailbox providers send about our mail — feedback-loop complaints (ARF,
// RFC 5965; Microsoft JMRP; Yahoo CFL), authentication-failure reports (RFC
// 6591), bounces (RFC 3464 DSNs and text bounces), DMARC aggregate reports
// (RFC 7489 appendix C, RFC 9990) and SMTP TLS reports (RFC 8460) — and
// publishes them as events traced to the customer and sending IP they are
// about.
//
// # Inputs
//
//   - An SMTP listener (go-smtp) for configured addresses and domains only:
//     any other recipient is refused 550 5.7.1, so it never relays. Message
//     size, recipients per message, connections and read/write times are
//     bounded; STARTTLS is offered when a certificate is configured.
//   - IMAP mailboxes pulled every interval; a message is deleted (or moved)
//     only after its events are stored.
//   - Directories or maildirs; an imported file is moved to DIR/done/. A
//     file is a mail, or a report file as saved from one: XML, JSON, gzip
//     or zip (RFC 6713 media types), read as a report only.
//
// # Nothing lost, nothing counted twice
//
// Every input acknowledges a message (SMTP 250, IMAP delete, file move)
// only after JetStream confirmed its events, or, for a message no parser
// understands, its copy in mailmon.dlq.fbl-ingester with the reason. When
// that fails (NATS away) the listener answers 451 4.3.0 and the sender
// retries; the mailbox and the directory keep the message for the next
// pull. A message whose events can never be stored (over max_payload,
// invalid) is dead-lettered, refused 552 over SMTP, and cleared from the
// mailbox or directory, which go on with the next message.
//
// Event ids are derived from the message: for a complaint, from the
// message complained about (below); for a bounce or an auth-failure
// report, from the report's Message-ID, else a hash of its body (and a
// bounce's recipient); for a DMARC or TLS report, from the report itself
// (below). A message handled again publishes the same ids, and
// JetStream's duplicate window, the complaint-evaluator and ClickHouse drop
// the copy.
//
// # Classification
//
// ARF (and the non-ARF complaint formats) first: an auth-failure report
// becomes mailmon.authfailure.received, never a complaint; any other report
// becomes mailmon.complaint.received with counted=true only for abuse (and
// fraud and virus when configured) — not-spam, opt-out and other are
// recorded with counted=false, which the complaint-evaluator skips. Then
// DSN: one mailmon.bounce.received per failed or delayed recipient with the
// shared classifier's reason and category. Auto-replies and delivery
// confirmations publish nothing. Everything else is dead-lettered.
//
// DMARC aggregate and SMTP TLS reports are recognised after ARF and before
// DSN (a report is never dead-lettered as "not a bounce"): a mail with a
// report attachment (gzip, zip, XML, application/tlsrpt+gzip or +json), or
// a report file. Unpacking is bounded (services/internal/reportfile: input,
// document and total sizes, compression ratio, member count): a
// compression bomb, or a document no parser reads, is dead-lettered with
// the reason and counted (reports_refused_total), and the input goes on —
// over SMTP it is answered 250 like any dead letter, since sending it
// again cannot help. An attachment that only looked like a report and
// cannot be unpacked is judged after DSN: a bounce returning a message
// that carries one is still a bounce.
//
// Each <record> becomes one mailmon.dmarc.record and each TLS policy one
// mailmon.tlsrpt.result. The time is the start of the report's period and
// the id derives from the reporter (org name, lower-cased), the report id,
// the policy domain and the record's position (TLS: organisation, report
// id, policy position) — not from the mail that carried it — so the same
// report mailed twice, once gzip and once zip, or by SMTP and from a
// mailbox, is stored once. A report's events are published without
// waiting for each PubAck (a large receiver's report holds thousands of
// records, at most 512 unconfirmed at once), and the message is
// acknowledged only when all of them are confirmed.
//
// # Trust
//
// Anyone can send a report, so a complaint is evidence (trusted=true, the
// only kind the complaint-evaluator counts) only when its origin is
// verified: a DKIM signature on the report by a configured feedback-loop
// operator (only operators' keys are looked up), an SMTP client in a
// reporter network or authenticated with AUTH PLAIN, or a mailbox,
// directory or import marked trusted. Everything else is stored with
// trusted=false and alerts nothing.
//
// # Tracing
//
// Recipients are usually redacted, so they are never used. A report is
// traced by our tracking header in the returned original, verified with the
// tracking keyring (a forged or damaged header is ignored and counted as
// invalid); else by its DKIM d= domain — verified when the original came
// back in full, taken on the report's word only when the report is
// trusted — or Message-ID domain through configured tables; else by a
// reported Source-IP in our networks (these two for trusted reports only).
// Trusted complaints that match nothing are counted, and an alert is
// raised when their share over a window passes a threshold.
//
// A DMARC record is ours (our_source) when its source_ip is inside
// trace.source_networks (none is when that list is empty), and belongs to
// the customer whose domain its header From is: trace.from_domains, else
// trace.dkim_domains, each matching the domain or a parent of it
// (a.b.example.com, then b.example.com, then example.com). A TLS result is
// ours when one of its failures' sending MTA IPs is in our networks. Report
// events carry no trust: they only feed alerts and the console, and never
// make mailmon act on mail.
//
// # One complaint, one event
//
// A complaint's id derives from the complained-about message (tracking id,
// else original Message-ID and recipient), never from the report's own
// Message-ID, so the same complaint reported twice is one event.
package fblingester
