// Package arf reads feedback-loop reports: the messages a mailbox provider
// sends when one of its users clicks "this is spam" (or when it wants to
// tell the sender about an authentication failure, a fraud or virus
// finding, an opt-out, ...).
//
// # The format
//
// The Abuse Reporting Format (ARF, RFC 5965) is a MIME message of type
// multipart/report; report-type=feedback-report with three parts:
//
//  1. a human-readable text/plain part;
//  2. a machine-readable message/feedback-report part, a block of
//     "Name: value" fields: Feedback-Type (abuse, fraud, virus, other,
//     not-spam, opt-out, auth-failure), User-Agent and Version (required),
//     and Source-IP, Original-Mail-From, Original-Rcpt-To (repeatable),
//     Arrival-Date, Reporting-MTA, Reported-Domain, Reported-URI,
//     Incidents, Original-Envelope-Id, Authentication-Results and
//     Removal-Recipient (optional);
//  3. the reported message, as message/rfc822 or, when only the header is
//     returned, text/rfc822-headers. Some providers send no original.
//
// RFC 6650 (the applicability statement) relaxes what receivers may
// expect: reports may be redacted, the original may be cut to its header,
// and several reports may be aggregated (Incidents). RFC 6591 adds the
// auth-failure type for SPF, DKIM and DMARC failures and its fields:
// Auth-Failure, Delivery-Result, DKIM-Domain, DKIM-Identity, DKIM-Selector,
// DKIM-Canonicalized-Header/-Body, SPF-DNS and Identity-Alignment. RFC
// 6430 registers not-spam. Arrival-Date was called Received-Date in
// draft-era reports (AOL, Yahoo), and Version is often "0.1".
//
// Real reports stray from all of this: the feedback-report part may be
// base64 encoded or sit inside a multipart/mixed, field names vary in case,
// the original may be quoted with an mbox ">From " line or missing
// entirely, and dates come in many broken forms. Parse walks the whole MIME
// tree (package rawmail) and does not fail on damage: it returns what it
// found.
//
// # Work
//
// Parse is linear in the message (each run of feedback fields and each
// quoted header is read once) and charges its work to a rawmail.Budget
// with rawmail.DefaultLimits (ParseLimits takes others). A message that
// costs more is not a report: Parse returns an error wrapping
// ErrBudgetExceeded (rawmail.ErrBudgetExceeded) that names the limit, and
// the fbl-ingester dead-letters it.
//
// # Formats that are not ARF
//
// Some complaint-like messages are not ARF. Parse recognises them and
// returns IsARF false with Format set:
//
//   - "jmrp": Microsoft's legacy Junk Mail Reporting Program report, a
//     multipart/mixed from staff@hotmail.com, "complaint about message
//     from IP", carrying the original with X-HmXmrOriginalRecipient;
//     Amazon SES forwards complaints the same way ("amazon_ses").
//   - "yahoo_cfl": a Yahoo Complaint Feedback Loop message that lacks the
//     feedback-report part.
//   - "apple_unsubscribe": the opt-out mail Apple Mail sends
//     (X-Apple-Unsubscribe: true).
//   - "dmarc_text": a plain-text DMARC failure report (as Exim sends)
//     with the failed message's header inline.
//
// EffectiveFeedbackType tells what such a message means (abuse, opt-out,
// auth-failure) when the report itself carries no Feedback-Type.
//
// # Tracing
//
// Recipients are usually redacted, so a complaint is tied to a customer and
// sending IP through the reported original: first the X-Mailmon-Track
// header (Report.TrackingHeader returns its raw value; the caller verifies
// it with schemas/tracking, since an unverified header proves nothing), then
// the DKIM d= domain, the Message-ID and the Source-IP (Report.Trace).
//
// The package is pure: it does no I/O and keeps no state.
package arf
