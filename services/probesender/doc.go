// Package probesender is the probe-sender worker: it sends tagged probes
// from each of our outgoing paths to seed mailboxes at each provider, so
// that a provider that starts refusing, deferring or spam-foldering our
// mail shows up within minutes rather than when customers complain.
//
// # Schedule
//
// Every interval a round sends one probe per (source, target), on
// multiples of interval (wall clock), the first at start. Each probe
// starts after a random delay below jitter, so a round does not arrive at
// a provider as a burst, and takes a token from its provider's bucket (a
// per-minute cap summed over sources); a probe the cap cannot fit before
// the round ends is skipped and counted. A round still running when the
// next is due makes that one skip: rounds never pile up behind a slow
// relay.
//
// # Running several copies
//
// Copies elect one leader with the lease probe-sender (package lease, KV
// bucket leases); only the leader sends, so the provider caps hold for
// the whole installation. Rounds start on multiples of interval (wall
// clock) and the leader claims each slot in the same bucket before its
// round, so a copy that takes over in a slot whose round was started
// skips to the next slot: a (slot, source, target) is probed at most once.
// A leader killed mid-round leaves the rest of that round unsent; the next
// leader sends from the next slot, within one lease TTL of the death, or
// at once after a clean stop (the lease is released).
//
// # The message
//
// A well-formed RFC 5322 message from the configured sender: Date, From,
// To, Message-ID (<probe id>@<From domain>), a Subject holding the probe
// id, and the signed X-Mailmon-Track header (schemas/tracking) whose
// message id is the probe id and whose customer is the probe customer; the
// retriever trusts nothing else. Optional DKIM signing (go-msgauth,
// relaxed/relaxed, covering the tracking header) and content variants used
// in turn per round (plain, HTML, List-Unsubscribe with RFC 8058 one-click)
// so that placement can be compared across them. A target may add header
// fields (for tests: X-Spam-Flag).
//
// # Submission
//
// An SMTP source is a relay reached over implicit TLS, STARTTLS (the
// default) or plain TCP, with certificate verification on unless turned
// off, optional AUTH PLAIN/LOGIN, our HELO name and an optional local bind
// address. go-smtp runs the session; the sender does the pre-TLS EHLO and
// STARTTLS itself so the HELO name is ours from the first command, and
// times every phase: connect, banner, EHLO, STARTTLS (the handshake for
// implicit TLS), AUTH, MAIL, RCPT, DATA (to the final reply). A phase not
// reached is -1. The final reply's code, enhanced status and text are
// recorded; a 4xx is a tempfail, a 5xx a refusal, no reply at all (network,
// TLS, local) an error, each with the phase it failed in. A sendmail source
// pipes the message to the local command (exit 75 is a tempfail).
//
// Every probe, accepted or not, is published as mailmon.probe.sent; the
// event time is the final reply, from which the retriever measures. The
// publish is retried until the round ends, since the probe is already out.
package probesender
