// Package hygiene audits the DNS records that decide whether receivers
// trust our mail, for the dns-sweeper's `dns.audit` events:
//
//   - for a sending IP: a PTR record, and forward-confirmed reverse DNS
//     (FCrDNS: a PTR name whose A/AAAA records include the IP again), which
//     Gmail, Outlook and most large receivers require;
//   - for a sending domain: an SPF record (RFC 7208) that is present,
//     unique, syntactically valid, within the limit of 10 DNS-querying
//     terms and 2 void lookups, and that authorises each of our sending IPs
//     (check_host is evaluated for real: include, redirect, a, mx, ptr,
//     exists, ip4, ip6, with macros); DKIM public keys (RFC 6376) at the
//     configured selectors, with their key sizes; a DMARC record (RFC 7489)
//     and its policy; and MX records (RFC 5321, with RFC 7505 null MX).
//
// Every check ends in a Finding with a severity: ok, info, warning or
// critical. The package does no I/O of its own: DNS answers come through
// the Resolver interface, which the worker implements with miekg/dns and
// tests implement with a map.
package hygiene
