// Package bounceclass tells why a remote mail server refused, deferred or
// bounced a message, from the text of its reply. It is a pure package (no
// I/O, no metrics, no globals that change) shared by every worker that sees a
// remote reply: the Postfix/Exim log parser (the text in "said: ..." of a
// delivery line), the DSN parser (the Diagnostic-Code field of a bounce) and
// the ARF/FBL ingester.
//
// # The domain
//
// An SMTP server answers every command with a reply (RFC 5321 section 4.2):
// a three-digit reply code, an optional enhanced status code and free text,
// possibly over several lines ("550-5.7.26 ...", "550 5.7.26 ...").
//
//   - The reply code's first digit is the class: 2 success, 4 transient
//     failure (the client should retry), 5 permanent failure. The second
//     digit is a coarse category (x0x syntax, x2x connection, x5x mail
//     system). Providers use 421, 450, 451, 550 and 554 for nearly
//     everything, so the reply code alone says little.
//   - The enhanced status code (RFC 3463, with the IANA registry set up by
//     RFC 5248) is class.subject.detail: subject 1 addressing, 2 mailbox, 3
//     mail system, 4 network and routing, 5 protocol, 6 content, 7 security
//     or policy; e.g. 5.1.1 bad destination mailbox, 5.2.2 mailbox full,
//     5.7.1 delivery not authorized. Later RFCs added 5.7.20-5.7.26 (DKIM,
//     SPF, reverse DNS, RFC 7372), 5.1.10/5.7.27 (null MX, RFC 7505),
//     5.7.30 (REQUIRETLS, RFC 8689). Providers add their own details
//     (Microsoft 5.7.606-649 banned sending IP, 5.7.515 authentication
//     level; Gmail 4.7.28 unusual rate of unsolicited mail).
//   - A delivery status notification (DSN, RFC 3464) carries, per
//     recipient, "Status:" (the enhanced status code the reporting MTA
//     settled on), "Action:" (failed, delayed, ...) and
//     "Diagnostic-Code: smtp; <the remote reply>". Postfix logs the same
//     as "dsn=5.1.1, status=bounced (host x[1.2.3.4] said: 550 5.1.1 ...
//     (in reply to RCPT TO command))".
//
// The status an MTA reports is not always the remote server's: Postfix logs a
// banner-time "554 ... poor reputation" as dsn=4.0.0 status=deferred because
// it will try the next MX. So the text decides.
//
// # How a text is classified
//
// Classify normalises the text once (ASCII lower case, white space runs as
// one space, typographic apostrophes as "'", the "550-5.7.1 " prefixes of
// continuation lines dropped) and runs it through one Aho-Corasick automaton
// built from every pattern of the rule tables, so the cost is one pass over
// the bytes whatever the number of rules. Then:
//
//  1. The first rule of Rules (an ordered, documented Go table) whose
//     patterns occur gives the reason; Result.Rule is its id and
//     Result.Matched is true. A rule may narrow its reason with the
//     enhanced status (IfStatus: "message too big" with 5.2.3 is the
//     per-mailbox limit, exceedlimit) or with the SMTP command the reply
//     answered when the text names it (IfPhase: "User unknown" after the
//     end of DATA is a filter, in reply to MAIL FROM it is the sender).
//  2. Only when no rule matches do the codes decide: the enhanced status
//     through the RFC 3463 subject/detail table (StatusReason), then the
//     reply code for the few codes with a specific meaning (452, 5.5.x
//     syntax codes, 521/556, 530/535, 551, 552). Result.Matched is false.
//  3. Nothing at all: ReasonUndefined, Matched false. Callers count and
//     sample the texts with Matched == false to write new rules.
//
// Rules are ordered from the most specific to the most general (see the
// comment on Rules): documented provider replies first (Gmail, Microsoft,
// Yahoo, Apple, Orange, Cox, GoDaddy ...), because their wording holds
// generic words ("blocked", "spam", "rate limited") that later rules would
// misread; then blocklists and reputation; authentication and reverse DNS;
// rate and connection limits; the recipient's mailbox, the recipient's
// domain, the message, the sender, policy and security; transport and
// remote-system trouble; generic refusals last. Each rule is tested on its
// own in testdata/rules.golden.
//
// # Split-half agreement
//
// The rules were written against the visible corpora, so agreement on them
// flatters the classifier. corpus_test.go therefore also scores the
// rejection corpus (../shared/corpora/rejections/rejections.jsonl) in two
// halves made of whole groups: a row's group is origin.mta_group, else its
// provider. The group names are sorted, shuffled with math/rand/v2's PCG
// seeded with 3463 (both words), and each group in turn goes to the half
// with fewer rows so far. A rule that only fits one MTA's wording then helps
// one half only; a rule is kept when it holds on both. The test prints the
// agreement of each half next to the whole, from the text alone (how
// `mailmon inspect rejection -` reads it) and with the row's codes, and
// fails when the lower half, text alone, drops below 85 %.
//
// Signatures (a separate ordered table) name the blocklist or provider error
// a text cites: "spamhaus", "barracuda", "spamcop", "talos", ...,
// "outlook-S3150", "yahoo-TSS04", and "gmail-<status>" / "outlook-<status>"
// for replies that only name the provider.
//
// Reasons use Sisimai's vocabulary (https://libsisimai.org/en/reason/);
// CategoryOf groups them into the coarse categories operators chart.
//
// ParseReply splits a logged reply or a Diagnostic-Code into code, status
// and text; FindCodes finds codes inside a longer text. Classify finds the
// codes itself when Input lacks them.
package bounceclass
