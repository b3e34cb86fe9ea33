// Package suppression is the suppression list: the addresses (and
// domains) that mail must no longer be sent to, per sending customer or
// for everyone, and why.
//
// # Why a suppression list
//
// A hard bounce (RFC 5321 reply 550 with RFC 3463 status 5.1.1 "bad
// destination mailbox address", 5.1.2 "bad destination system", 5.2.1
// "mailbox disabled") says the address does not exist or takes no mail;
// sending to it again only tells the receiver that the sender does not
// clean its lists, which receivers weigh in the sender's reputation. A
// feedback-loop complaint (RFC 5965 ARF) says the recipient does not want
// the mail at all. Both should stop further mail to that recipient, per
// sending customer, automatically.
//
// # Entries and keys
//
// An entry is keyed by (kind, owner, target):
//
//	r.<owner>.<digest of the address>   a recipient address
//	d.<owner>.<digest of the domain>    every address of a domain
//
// The owner is "all" for the global list, else the first 64 bits of
// SHA-256 of the customer name, in hex. The target digest is 128 bits of
// HMAC-SHA256 under suppression.hash_key of the normalised address, or of
// SHA-256 without a key. KV keys allow only [-/_=.a-zA-Z0-9], so the
// address could not be the key anyway; with a hash key the address is not
// kept in clear anywhere (the value, the events and the CSV export hold
// the digest), and looking one up means hashing it first.
//
// Normalisation is what makes "Gone.User@EXAMPLE.org" and
// "Gone.User@example.org" one entry: the domain is case-folded and put in
// its ASCII (IDNA 2008, RFC 5891) form; the local part is kept as sent
// (RFC 5321 2.4: only the receiving host may interpret it), except under
// per-domain rules the operator configures for providers known to ignore
// dots (Gmail) or to deliver sub-addresses ("+tag", RFC 5233) to the base
// mailbox.
//
// The policy service holds the set as 64-bit hashes of the keys with each
// entry's expiry (SetKey), so ten million entries fit in a few hundred
// megabytes; a request is checked by computing the keys it could match.
package suppression
