// Package fblingester is the fbl-ingester worker: it receives the reports
// mailbox providers send about our mail — feedback-loop complaints (ARF,
// RFC 5965; Microsoft JMRP; Yahoo CFL), authentication-failure reports (RFC
// 6591) and bounces (RFC 3464 DSNs and text bounces) — and publishes them
// as events traced to the customer and sending IP they are about.
//
// # Inputs
//
//   - An SMTP listener (go-smtp) for configured addresses and domains only:
//     any other recipient is refused 550 5.7.1, so it never relays. Message
//     size, recipients per message, connections and read/write times are
//     bounded; STARTTLS is offered when a certificate is configured.
//   - IMAP mailboxes pulled every interval; a message is deleted (or moved)
//     only after its events are stored.
//   - Directories or maildirs; an imported file is moved to DIR/done/.
//
// # Nothing lost, nothing counted twice
//
// Every input acknowledges a message (SMTP 250, IMAP delete, file move)
// only after JetStream confirmed its events, or, for a message no parser
// understands, its copy in mailmon.dlq.fbl-ingester with the reason. When
// that fails (NATS away) the listener answers 451 4.3.0 and the sender
// retries; the mailbox and the directory keep the message for the next
// pull. Event ids are derived from the message (its Message-ID, else a hash
// of its body) and, for a bounce, the recipient, so a message handled again
// publishes the same ids and JetStream's duplicate window, the
// complaint-evaluator and ClickHouse drop the copy.
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
// # Tracing
//
// Recipients are usually redacted, so they are never used. A report is
// traced by our tracking header in the returned original, verified with the
// tracking keyring (a forged or damaged header is ignored and counted as
// invalid); else by its DKIM d= domain or Message-ID domain through
// configured tables; else by a reported Source-IP in our networks.
// Complaints that match nothing are counted, and an alert is raised when
// their share over a window passes a threshold.
package fblingester
