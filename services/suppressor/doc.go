// Package suppressor is the suppressor worker: it keeps the suppression
// lists (package suppression, KV bucket `suppression`) from what happens
// to our mail, so that a recipient whose mail hard-bounced or who
// complained gets no more mail from that customer, without anyone doing it
// by hand. The policy service enforces the entries at RCPT TO; the
// suppressor only writes them.
//
// It consumes bounce.received (BOUNCE), delivery.attempted (DELIVERY) and
// complaint.received (COMPLAINT) through its durables `suppressor`, and
// writes every change through suppression.Writer: the bucket entry and
// its suppression.added or suppression.removed event, with ids derived
// from the cause, so a redelivered event changes nothing twice. A message
// is acked only once its writes and events are stored.
//
// # What suppresses
//
//   - A permanent bounce. RFC 5321 4.2.1 makes a 5yz reply a permanent
//     negative completion ("do not repeat the exact request"), and RFC 3463
//     makes a status of class 5 a permanent failure, class 4 a persistent
//     transient one. A failure is permanent when its status is 5.x.x, or,
//     without a status, when its reply is 5yz. That alone is not enough: a
//     550 5.7.1 "blocked" is permanent for that message but says nothing
//     about the address. Only the classifier's categories that are facts
//     about the recipient suppress, those given an expiry in
//     suppression.expiry: by default user_unknown (5.1.1 "bad destination
//     mailbox address", 90 days), mailbox_disabled (5.2.1, 180 days) and
//     domain_unknown (5.1.2 "bad destination system address", 30 days).
//     Blocks, policy, content, rate and network categories never do. A
//     status naming the recipient (X.1.1, X.1.2, X.1.10 null MX per RFC
//     7505, X.2.1) decides before the classifier's category, whose reason
//     follows the SMTP stage as well: an unknown user refused after DATA
//     is reported "filtered", and is no less unknown.
//     The failure is read from a bounce.received (Action failed) or from
//     our own MTA's log (delivery.attempted, status bounced): Postfix logs
//     status=bounced both for a 550 at RCPT TO and for one after DATA.
//   - A complaint: a feedback-loop report (RFC 5965) that counts (abuse;
//     fraud and virus when the fbl-ingester counts them) and is trusted, for each
//     Original-Rcpt-To the provider did not redact (RFC 6590). It never
//     expires by default: the recipient said they do not want the mail.
//   - Repeated soft failures, when soft_bounces.count is set: that many
//     deferrals or bounces of the configured categories (mailbox_full) of
//     one address within soft_bounces.window. Each event id counts once.
//
// Entries go to the customer's list (scope customer_recipient) or, with
// scope global_recipient, to everyone's; an event without a customer
// always goes to the global list. An entry is dated by the event and
// expires that long after it. An entry already stored under the key is
// replaced only by one that lasts longer (never expiring is longest), and
// a bounce never replaces a complaint, manual or unsubscribe entry still
// in force.
//
// # Why bounces must be traced and complaints trusted
//
// A bounce is a message to our return path with a null sender (RFC 5321
// 4.5.5): nothing authenticates it, and anyone can mail one naming any
// address. Taken at its word, it would let a stranger stop a customer's
// mail to any recipient. So only bounces traced to our own message by
// the verified (HMAC) tracking header count; those traced by DKIM domain,
// Message-ID or source IP are counted as untraced and ignored. Our own
// MTA's log is ours, so its bounced attempts count as they are. A
// feedback report is a message as well, and RFC 5965 section 8 warns that
// reports can be forged; the fbl-ingester marks a report trusted only when
// its origin is verified (operator DKIM, reporter network, SMTP AUTH, a
// trusted input), and only counted, trusted complaints suppress.
//
// Our own refusals never suppress: a delivery.attempted with status
// rejected is our MTA refusing the message (the policy service's own
// suppression REJECT among them), not a fact about the address. Our
// probes to seed mailboxes are ignored altogether.
//
// # What clears
//
//   - A later successful delivery (status sent) to the address, with
//     clear_on_delivery: the address came back. It removes the address's
//     hard_bounce and soft_bounces entries for every customer and the
//     global list, created no later than the delivery; complaint, manual and
//     unsubscribe entries stay, and so does a bounce entry newer than the
//     delivery.
//   - Expiry: every sweep_interval the suppressor reads the whole bucket
//     and removes the entries whose expiry has passed (cause expired). The
//     policy service stops enforcing an entry at its expiry anyway; the
//     sweep makes the list and its events say so.
//   - An operator: `mailmon suppression remove` and bulk release.
//
// # Limits
//
// Soft-failure counts are kept in memory only (at most 100 000 addresses
// at once): a restart forgets them, which can only delay a soft_bounces
// entry, never make one that should not exist. Addresses come from
// outside: one that does not normalise is counted (ignored_total{why=
// "bad_address"}) and its event acked, never retried. Every successful
// delivery looks up the address's keys in the bucket (one stream info
// request filtered by subject: BenchmarkSentDelivery measured it at about
// 2.5 times a KV get), and the sweep reads every entry (BenchmarkSweep:
// about 6 us per entry, a minute per pass at ten million entries; raise
// sweep_interval for lists that large).
package suppressor
