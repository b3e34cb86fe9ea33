// Package complaintevaluator is the complaint-evaluator worker: it judges
// complaint rates and other triggers per subject over sliding windows and,
// past a threshold, cuts the subject off or reroutes its mail through the
// low-reputation (NDR) transport, for a limited time, escalating for repeat
// offenders. It closes mailmon's loop: the fbl-ingester's complaints and
// the mta-log-tailer's deliveries come in, decisions go out to the
// `enforcement` KV bucket, where the policy-service answers Postfix from
// them, and to the DECISION and ALERT streams.
//
// # Windows and rules
//
// A subject is a customer, a sending IP, or a customer × provider
// (package enforcement). A counted and trusted complaint.received (its
// report's origin verified by the fbl-ingester) adds one complaint
// to the windows (1 h, 24 h, 7 d by default) of each of its subjects; a
// delivery.attempted with status sent adds one delivery, the rate's
// denominator. The rate counts once a window holds min_delivered
// deliveries; thresholds are per scope (warn 0.1 %, act 0.3 % by default,
// and optional absolute counts). Windows count in buckets (window.go), so
// a subject costs memory only for the buckets that hold something.
//
// The other triggers run through the same conclusion step (rules.go,
// Engine.conclude): a listing of one of our IPs on a high-weight
// blocklist (dnsbl.listed), a burst of reputation or blocklist rejections
// from one provider (delivery.attempted whose classifier category is
// listed), probes missing at several providers (probe.missing). A finding
// at the warn level alerts once per crossing; at the act level it decides
// when its rule acts, and alerts otherwise.
//
// # Alert rules
//
// The rules of alertrules.go only alert, each about one fingerprint (its
// dedupe key: rule, subject, and provider or check where they apply):
// a provider missing a source's probes in a row, our own MTA refusing
// them, probes filed as spam, a provider's probe latency, listings of our
// IPs and domains (the zones are the members of one alert per target),
// DNS audit findings, and a provider still rejecting an IP for a
// blocklist well after its delisting. Each keeps its own memory (streaks,
// zones, placements, latencies), derives a condition from it, and the
// engine publishes an alert only when the condition differs from the
// last alert published under its key: firing when it starts, again when
// its severity or members change, resolved when it ends. Where the
// existing rules conclude per crossing, these track a state, so that every
// firing alert is eventually resolved.
//
// Their state is rebuilt from the streams too. At start the evaluator
// reads its own alerts from the ALERT stream: the last one per key says
// what was published, and a firing one seeds its rule's memory (a
// listing's zones, a streak), so a condition whose evidence is older than
// the replay is neither forgotten nor published again. The signals are
// then replayed with Replaying set, which updates the conditions without
// publishing, and EvaluateAll publishes only the differences.
//
// # Rules on DMARC and TLS reports
//
// Three alert rules (reportalerts.go) read what receivers report about
// all of our mail: dmarc.record events, one per <record> of a DMARC
// aggregate report (RFC 7489 appendix C, RFC 9990), and tlsrpt.result
// events, one per policy of an SMTP TLS report (RFC 8460).
// dmarc_alignment fires when one of our sending IPs fails DMARC at one
// reporter for at least a share of its messages; dmarc_unknown_source
// when a source outside our sending networks sends more than a number of
// messages a day as one of our domains; tlsrpt_failure when TLS sessions
// to one receiving domain fail above a share.
//
// Their time is the reports' period, not their arrival: a report covers
// a day and arrives hours to a day after it, out of order with the
// others. A rule counts the reports whose period ends within its window
// (48 h by default, so each day is seen whole), judged again as time
// passes (Tick, once a minute), so a condition ends when its reports
// leave the window even when no report comes. A report whose period
// ended before the window changes nothing. Entries are kept per
// condition by event id, so a report received twice counts once; they
// are bounded per condition and in number of conditions, since anyone
// can mail reports to our rua address. At a restart the report streams
// are replayed over the window (a report is stored no earlier than its
// period ends), and a firing alert read back whose reports are all gone
// is resolved.
//
// Engine (engine.go) is the whole logic with no I/O and no clock: every
// method takes the time, so the unit tests drive it with a controlled
// clock, and the worker (evaluator.go) only moves events in and carries
// the engine's outputs out.
//
// # Decisions
//
// A decision is stored first, as a record under the subject's key in the
// `enforcement` bucket with a per-key TTL of its duration (the policy
// service enforces it from that moment), then published as
// decision.cutoff or decision.reroute with the evidence (window, counts,
// rate, threshold, sample complaint ids), then alerted. A first offence
// lasts decisions.first (6 h); offences within decisions.memory (30 d)
// take the next entry of decisions.repeat, where 0 means until lifted by
// hand. When the TTL passes the evaluator publishes decision.release and
// a resolved alert under the decision's dedupe key; the server removes the
// key on its own even when no evaluator runs. After a decision the
// subject's windows restart, so the complaints behind it never decide a
// second time, and a release is not followed at once by a new cut-off on
// old evidence.
//
// Every event id of a decision is derived from the decision
// (enforcement.StableID), so a step repeated after a crash, or by a
// second copy, is dropped by the stream's duplicate window, and the KV
// Create of the key arbitrates between two copies: the loser adopts the
// winner's decision and publishes nothing.
//
// # Restarts: a checkpoint, or state rebuilt from the streams
//
// The streams are the evaluator's truth; its checkpoints (below) only
// shorten reading them. Without a usable checkpoint, at start it reads,
// with ordered consumers (no durable, no acks):
//
//  1. the DECISION stream over the memory window: offences, the decision
//     in force per subject, the point each subject's evidence restarts;
//  2. the bucket, to republish a decision stored but never announced (a
//     crash between the two steps) and to remove a key a lift left behind;
//  3. the ALERT stream, whole: the alerts this worker published, for the
//     alert rules;
//  4. the complaint, delivery, probe and report subjects over the longest
//     window (counting only events after each subject's last decision), and
//     the DNS subjects (listings, delistings, audits) from the start of their
//     stream; one consumer per stream, so each stream's events are judged
//     in its order.
//
// Nothing is judged until all of them caught up; then every subject is
// judged once (acting on what happened while the worker was down) and the
// same consumers continue live. Each stream message is read exactly once
// per start, so a restart cannot count anything twice; a republished
// event (same id, stored again after the stream's duplicate window) is
// dropped by id: complaint ids are remembered for the longest window,
// delivery ids for dedupe_window. Decisions that expired while the worker
// was down are released at start, with the time they expired.
//
// # Checkpoints
//
// Rebuilding reads every delivery of the longest window, which at tens of
// millions a day takes minutes. So every checkpoint.interval and at a
// clean stop the worker saves the engine's whole state (checkpoint.go:
// windows, decisions, offences, the ids it dedupes by, the alert and
// report rules' memory) with, per stream, the sequence of the last
// message the state holds, in the KV bucket evaluator_checkpoints under
// its partition and partition count (checkpointstore.go: gob in chunks
// under a manifest, since a state outgrows one KV value). It saves only
// while no judged decision or alert is still to be carried out, so a
// checkpoint never holds a decision the bucket or the streams lack. A start
// uses the checkpoint when its format, partition, partition count and
// configuration hash match, it is younger than the longest window and no
// stream was created again; it then reads each stream after the covered
// sequence, the same consumers as above, and our own alerts read back then
// only mark what was published (the rules' memory came with the
// checkpoint). The result is the state a rebuild gives, which
// checkpoint_test.go checks on real NATS. Anything else is logged with
// its reason and rebuilt. A change of the partition count finds no
// checkpoint under the new keys and rebuilds once.
//
// While the delivery reader is more than max_delivery_lag messages behind,
// complaints are counted but not judged, so a rate is never computed over
// a denominator that has not caught up.
//
// # Scale-out: hash partitions of the subject key
//
// Copies split the subjects, not the messages: copy `partition` of
// `partitions` keeps state for, and decides on, only the subjects whose
// FNV-1a hash of the subject text modulo `partitions` is its own; every
// copy reads every event. NATS subject-mapping partitions (a
// {{partition(n,...)}} transform into per-partition subjects, one filtered
// consumer per copy) were the alternative. They were not used because one
// event counts for three subjects at once — its customer, its sending IP
// and its customer × provider — which fall into different partitions, so
// no single partition token on the message can route it to every copy
// that needs it; the publishers (fbl-ingester, mta-log-tailer) would also
// have to put customer and IP into the subject. Reading everything costs
// each copy the decoding of every event (about 8 µs), while the state,
// the judging and the decisions are split with no coordination and no
// double counting. Two copies with the same partition would both decide;
// the KV Create and the stable event ids make that harmless (one decision
// wins, its events are stored once), but it is not a supported setup.
package complaintevaluator
