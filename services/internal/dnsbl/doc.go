// Package dnsbl is the domain model of DNS blocklists (DNSxLs, RFC 5782):
// the zone catalogue, the names to query, and what an answer means. It does
// no I/O; the dns-sweeper worker and the `mailmon dnsbl check` command send
// the queries and hand the answers back here.
//
// # How a DNSBL answers (RFC 5782)
//
// An IP blocklist is a DNS zone. To ask whether 192.0.2.99 is listed on
// bl.example, reverse the octets and ask for the A record of
// 99.2.0.192.bl.example (section 2.1). An IPv6 address is written as 32
// reversed nibbles, like ip6.arpa (section 2.4). A domain blocklist is
// asked for the domain itself: spammy.example.dbl.example (section 3).
//
//   - NXDOMAIN means not listed.
//   - An A record inside 127.0.0.0/8 means listed; the last octets say why
//     (a "return code"), and a TXT record at the same name often gives a
//     reason and a lookup URL.
//   - 127.0.0.1 is never a valid answer: lists must not use it, because a
//     broken setup that answers "localhost" for everything would then list
//     every address (section 2.1).
//   - Lists publish test entries: 127.0.0.2 must be listed and 127.0.0.1
//     must not (section 5); domain lists use TEST and INVALID, or their own
//     test names (Spamhaus DBL: dbltest.com).
//
// # Why a checker goes wrong, and what this package does about it
//
// Real-world answers are messier than the RFC, and a checker that counts
// every 127.x answer as a listing reports listings that do not exist:
//
//   - Error codes. Spamhaus answers 127.255.255.252 (typing error in the
//     zone name), 127.255.255.254 (query via a public/open resolver) and
//     127.255.255.255 (too many queries), and its DBL answers 127.0.1.255
//     when it is asked about an IP address. These are refusals, not
//     listings. The catalogue gives every zone's codes a class, listed or
//     error, and Interpret turns an error code into an error result with
//     its meaning.
//   - NXDOMAIN rewriting. Some resolvers (ISP "search helpers", captive
//     portals) answer a name that does not exist with the address of a
//     web server. Such an answer is outside 127.0.0.0/8, so it is an error
//     (cause nxdomain_rewrite), never a listing.
//   - A zone that stopped working (SORBS was shut down in 2024; a key
//     expires; a resolver is rate-limited) may answer NXDOMAIN for
//     everything, which looks like "clean". Callers run SelfTest on every
//     zone before trusting it: if 127.0.0.2 is not listed or 127.0.0.1 is,
//     the zone's answers mean nothing for that sweep.
//
// The rule throughout: a listing is reported only for an answer that is
// certainly one. Anything doubtful is an error with a cause, and an error
// is neither listed nor clean.
//
// # The catalogue
//
// zones.yaml (embedded; see Default) describes the blocklists that matter
// for outbound mail today: per zone its kind (ip or domain), whether it
// lists IPv6, a weight (how much a listing hurts delivery), the meaning
// and class of each return code, whether it refuses public resolvers, its
// Spamhaus DQS zone (queried as <key>.<dqs_zone> with a Data Query Service
// key, which works from any resolver), a delist URL template, and its test
// entries. A zone that no longer exists carries a `retired` note, and
// Select warns when one is configured.
package dnsbl
