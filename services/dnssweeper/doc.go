// Package dnssweeper is the dns-sweeper worker: it sweeps our sending IPs,
// IP blocks and domains against DNS blocklists, publishes listing changes,
// and audits the DNS records receivers judge us by (PTR, SPF, DKIM, DMARC,
// MX). Package dnsbl holds the zone catalogue and the rules for reading an
// answer; hygiene holds the audit checks; this package sends the queries,
// keeps the state and publishes the events.
//
// # Never wrong about a listing
//
// A sweep starts with every zone's self-test (127.0.0.2, or the domain
// zone's test name, must be listed; 127.0.0.1, or "invalid", must not). A
// zone that fails is unknown for the sweep: none of its targets is asked
// about, none is called clean, and the listings it had stand. Only answers
// that package dnsbl reads as listings count: an error code (Spamhaus
// 127.255.255.252/254/255, DBL 127.0.1.255), 127.0.0.1, an address outside
// 127.0.0.0/8 (a resolver rewriting NXDOMAIN), SERVFAIL, REFUSED, a
// timeout or a reply truncated with no TCP to repeat it over are errors
// with a cause: neither listed nor clean.
//
// # Queries
//
// All queries go to one configured resolver with miekg/dns. UDP sockets
// are kept and reused (one per query in flight); every reply must answer
// the question asked (id, name, type), so a late reply to an earlier query
// on the same socket is skipped rather than misread. Timeouts, network
// errors and SERVFAIL are retried; a truncated UDP reply is repeated over
// TCP (tcp_fallback). Concurrency is bounded, and each zone has a token
// bucket (zone_rate) that self-tests, target queries, TXT lookups and
// retries all draw from; one feeder per zone hands queries to the shared
// workers, so a throttled zone never holds workers another zone could use.
//
// # State and events
//
// The KV bucket dnsbl_state holds, per (target, zone) pair that is listed
// or failing, its last trustworthy state and current error; per zone its
// self-test state; and what the last complete sweep covered (sweep/last).
// A covered pair without a record was clean: state is sparse because a
// sweep of a /16 would otherwise write a record per address per zone. The
// sweeper compares each answer with the record and publishes on
// transitions only: dnsbl.listed (previous state clean or unknown),
// dnsbl.delisted, dnsbl.error (when a pair's failure starts or changes
// cause; once when a zone starts failing its self-test). A pair's record
// is written after its event is confirmed, so a crash repeats an event
// rather than losing it. Every sweep ends with a dnsbl.checked summary
// with per-zone health. Every event of a sweep has an id derived from the
// sweep id, its type and its pair (zone, for a zone's error; nothing, for
// the summary), so a sweep finished by another copy stores nothing twice.
//
// # Running several copies
//
// Copies elect one leader with the lease dns-sweeper in the KV bucket
// leases (package lease; leader_lease.ttl, 15 s by default): the leader
// sweeps and audits, the others stand by. Every copy consumes deliveries
// for seen_ips (they share the durable, so each delivery is read by one),
// and the leader reads the whole state bucket before each sweep, so it
// sweeps what the others learnt. A standby that becomes the leader reads
// the state, then:
//
//   - if sweep/current names a sweep that sweep/last does not (the old
//     leader died in it) and it started less than an interval ago, it runs
//     that sweep again under the same id and start: pairs whose records
//     the old leader wrote raise nothing, and the events it published
//     without writing their records (at most the last confirmEvery, 2 s,
//     before it died) get the ids they had, so the DNS stream drops them
//     within its duplicate window and ClickHouse and consumers dedupe them
//     by id after it;
//   - else it sweeps when the last complete sweep is an interval old (at
//     once when there is none): a takeover does not add a sweep.
//
// A leader that stops cleanly releases the lease and the standby takes
// over at once; one that dies is replaced within one TTL. A leader whose
// renewal fails stops sweeping at once (its sweep is cut short as at
// shutdown), before any other copy can acquire the lease. A takeover
// starts a new audit pass (audits are snapshots; their ids are new).
//
// # Targets
//
// Configured IPs, CIDRs (every address, up to max_targets in all; IPv6 in
// nibble format, asked only of zones that list IPv6) and domains (asked of
// domain zones), plus, with seen_ips, every global source_ip found in
// mailmon.delivery.attempted (durable dns-sweeper on DELIVERY), kept in the
// bucket under seen/ and forgotten after max_age without deliveries.
//
// # Audit
//
// Every audit.interval the sweeper publishes one dns.audit per sending IP
// (configured IPs and seen ones) and per configured domain, with findings
// of severity ok, info, warning or critical; see package hygiene.
package dnssweeper
