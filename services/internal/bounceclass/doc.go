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
// the bytes whatever the number of rules. The evidence is then weighed in
// this order, the first that names a reason deciding:
//
//  1. The SMTP stage: the command the reply answered, named in the text
//     (Phases: Postfix "in reply to end of DATA command", Exim "after RCPT
//     TO", qmail "did not like our final DATA") or else given by the caller
//     (Input.Phase: a DSN's or a log line's stage, `mailmon inspect
//     rejection`'s "command" or -stage). The stage does not decide alone;
//     it narrows what the other evidence says (IfPhase): "User unknown" at
//     the end of DATA is a content filter's verdict (filtered), in reply to
//     MAIL FROM it is about the sender (rejected), at HELO a block. When
//     no stage is known, an unknown-user wording with a status other than
//     X.1.x (bad destination mailbox, what MTAs that check recipients at
//     RCPT TO answer) reads as filtered too: a mailbox (X.2.x), undefined
//     (X.0.0) or security (X.7.x) status with that wording is a filter's.
//  2. The enhanced status code, where its registered meaning (RFC 3463 and
//     the IANA registry of RFC 5248) names one reason so plainly that no
//     wording overrules it: decisiveStatus (x.1.6 moved, x.2.2 mailbox
//     full, x.4.7 delivery time expired, x.7.13 account disabled, x.7.25
//     reverse DNS, x.7.26 multiple authentication checks failed). Details
//     whose use varies between MTAs (x.0.0, x.1.1, x.2.1, x.7.1, the RFC
//     7372 details that Gmail uses with its own meaning) are left to the
//     text and only fill in at step 5.
//  3. Provider status codes whose meaning the provider documents, outside
//     the registry: ProviderCodes (Microsoft 5.7.501-5.7.515,
//     5.7.606-5.7.649, 5.7.700-5.7.750), each entry with its page.
//  4. Phrases and provider tokens: the first rule of Rules (an ordered,
//     documented Go table) whose patterns occur gives the reason;
//     Result.Rule is its id and Result.Matched is true. A rule may narrow
//     its reason with the enhanced status (IfStatus: "message too big" with
//     5.2.3 is the per-mailbox limit, exceedlimit) or the stage (IfPhase).
//     Provider tokens come first in the table (Yahoo "[TSS04]", Outlook
//     "(S3150)", Cox "AUP#CXRBL", GoDaddy "IB103", Orange "OFR_102"), then
//     the phrases of each reason, written from what MTAs and providers
//     document (Postfix, Exim, Sendmail, Exchange NDR texts, the provider
//     pages below), with Sisimai's reason definitions as the vocabulary.
//     A rule marked OnlyWithoutCodes ("Did not reach the following
//     recipient", no cause: onhold) gives way to any code that names a
//     reason.
//  5. Only when no rule matches do the remaining codes decide: the enhanced
//     status through the RFC 3463 subject/detail table (StatusReason), then
//     the reply code for the few codes with a specific meaning (452, 5.5.x
//     syntax codes, 521/556, 530/535, 551, 552). Result.Matched is false.
//  6. Nothing else: a reply with words but no evidence of a cause is
//     ReasonOnHold (Sisimai's reason for a bounce with too little detail
//     to judge), one without any words (codes alone, or empty) is
//     ReasonUndefined; Matched is false. Callers count and sample the
//     texts with Matched == false to write new rules.
//
// When step 2 or 3 overrules a rule of step 4, Result.Rule is empty and
// Matched false; the signature the text cites is kept.
//
// Rules are ordered from the most specific to the most general (see the
// comment on Rules): documented provider replies first (Gmail, Microsoft,
// Yahoo, Apple, Orange, Cox, GoDaddy ...), because their wording holds
// generic words ("blocked", "spam", "rate limited") that later rules would
// misread; then connection limits, blocklists and reputation;
// authentication and reverse DNS; rate limits; the recipient's mailbox,
// the recipient's domain, the message, the sender, policy and security;
// transport and remote-system trouble; generic refusals last. Each rule is
// tested on its own in testdata/rules.golden.
//
// # Provider code tables and their sources
//
// Each provider's documented codes are a table, in ProviderCodes (status
// details) or in the first section of Rules (tokens and sentences), with
// the page that documents them:
//
//   - Gmail: rules gmail-* (4.7.28/5.7.28 unusual rate of unsolicited mail,
//     the 5.7.26 family of unauthenticated mail, 5.7.25 PTR, 4.7.23 PTR,
//     5.2.2 over quota, 5.1.1 no such user, 5.2.3/5.3.4 size limits ...):
//     https://support.google.com/a/answer/3726730 (SMTP error reference)
//     and https://support.google.com/mail/answer/81126 (sender guidelines).
//   - Microsoft Exchange Online / Outlook.com: ProviderCodes (5.7.501-515,
//     5.7.606-649, 5.7.700-750) and rules outlook-* (S3140, S3150, S3113,
//     S3115, RP-/SC-/DY-/OU- codes):
//     https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online,
//     .../fix-error-code-5-7-606-through-5-7-649-in-exchange-online,
//     .../fix-error-code-5-7-700-through-5-7-750 and
//     https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx.
//   - Yahoo / AOL: rules yahoo-* ([TSS04] deferred for volume or
//     complaints, [TSS09]/[TSS11]/[TSS12] permanently deferred, [PH01]
//     policy): https://senders.yahooinc.com/smtp-error-codes.
//   - Apple iCloud: rules apple-* ([CS01], [HM08]):
//     https://support.apple.com/HT204137.
//   - Cox: rules cox-* (AUP#CXRBL, AUP#CXCNCT, ...):
//     https://www.cox.com/residential/support/email-error-codes.html.
//   - GoDaddy: rules godaddy-* (IB101-IB705):
//     https://www.godaddy.com/help/fix-rejected-email-with-a-bounce-error-40685.
//   - Orange: rules orange-* (OFR_nnn):
//     https://www.postmastery.com/orange-postmaster-smtp-error-codes-ofr/.
//   - Cisco IronPort (Secure Email): rule ironport-reputation ("sending MTA's
//     poor reputation", the default HAT reject text) and the "talos"
//     signature: https://www.cisco.com/c/en/us/support/security/email-security-appliance/products-user-guide-list.html
//     (Mail Flow Policies) and https://talosintelligence.com/reputation_center.
//   - Proofpoint: rule blocklist-listed ("blocked - see http" with
//     ipcheck.proofpoint.com) and the "proofpoint" signature:
//     https://www.proofpoint.com/us/postmaster.
//   - Mimecast: rules policy ("email rejected due to security policies"),
//     sender-rejected ("envelope blocked", "administrative prohibition")
//     and the "mimecast" signature:
//     https://community.mimecast.com/s/article/Mimecast-SMTP-Error-Codes-842605754.
//   - Barracuda: rule dnsbl-named ("Barracuda Reputation", b.barracudacentral.org)
//     and the "barracuda" signature:
//     https://www.barracudacentral.org/rbl and https://campus.barracuda.com/product/emailsecuritygateway/doc/167976859/.
//   - Spamhaus: rules dnsbl-named (SBL/XBL/PBL/CSS, zen.spamhaus.org,
//     return codes 127.0.0.2-127.0.0.11: a block of the sending IP) and
//     dbl-content (DBL on a link of the body: spamdetected):
//     https://www.spamhaus.org/faqs/dnsbl-usage/ (return codes).
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
