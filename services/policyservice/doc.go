// Package policyservice is the policy-service worker: a Postfix SMTP
// access policy delegation server (SMTPD_POLICY_README) that enforces the
// complaint-evaluator's decisions in the MTA itself.
//
// # Protocol
//
// Postfix connects to `check_policy_service inet:HOST:PORT` and sends, per
// recipient, a request of name=value lines ended by an empty line
// (request=smtpd_access_policy, protocol_state, sender, recipient,
// client_address, sasl_username, ...); the server answers one
// "action=..." line and an empty line, and keeps the connection for the
// next request. ReadRequest parses a request under limits (attributes per
// request, bytes per line) and is fuzzed; a connection that breaks them,
// or stays idle past idle_timeout, is closed.
//
// # Answers
//
// The policy protocol carries no message headers, so a request names its
// customer by its SMTP AUTH name (sasl_username), its envelope sender's
// domain, or its client address (customers section); the recipient
// domain names the provider. The request's subjects (customer:C,
// customer:C/provider:P, ip:<client_address>) are looked up in an
// in-memory copy of the `enforcement` bucket:
//
//	nothing in force    DUNNO
//	cut-off             REJECT 5.7.1 <text> | DEFER_IF_PERMIT 4.7.1 <text> | HOLD <text>
//	reroute             FILTER <transport>:<reroute_nexthop>
//
// A cut-off wins over a reroute. A record counts only until its Until, so
// an expired decision stops at once even before the server removes the key.
//
// # Suppression
//
// Between a cut-off and a reroute comes the suppression list: a recipient
// suppressed for one of the request's customers (the address or its
// domain) or globally is answered "REJECT <suppression.reject_text>", a
// 5.x.x code and a text that never says why. The recipient is normalised
// as the suppressor normalises it, the request's keys are computed by
// suppression.Hasher.RequestKeys, and each is looked up in a set of 64-bit
// key hashes and expiry seconds (suppression.SetKey), a dozen bytes of data
// per entry, so ten million entries fit in a few hundred megabytes. The set
// is kept by a watch of the suppression bucket and saved in a binary
// snapshot, from whose revision a restart resumes the watch. Entries are
// enforced without a live watch too, each until its expiry. A customer in
// dry_run_customers is only counted. See the README's Suppression section.
//
// # What a record may make the service say
//
// Whoever writes the bucket would otherwise steer Postfix, so a record is
// checked once, when it is read (from the watch or the snapshot), and its
// answer line is built then from checked parts: the action must be in
// allowed_actions (OK, PREPEND, REDIRECT and the like can never be), a
// reroute's transport one of reroute_transports, the text printable ASCII
// with a well-formed enhanced status code. A record that fails is left
// out, so its subject is answered DUNNO; each refused revision is counted
// and alerted once (rule policy_invalid_record).
//
// # Freshness, the snapshot and staleness
//
// The copy is kept by a KV watch (jetstream KeyValue.WatchAll): the whole
// bucket is loaded, then every put and delete is applied the moment it
// arrives, so a new decision is answered within milliseconds and a
// request never waits for NATS. If the watch breaks it is re-established
// (the bucket loaded again and swapped in whole). After every change of
// the live copy a snapshot is written to disk (atomically, 0600), and at
// start the snapshot is loaded, so the service enforces while NATS is
// unreachable. Without a live watch the last known decisions are enforced
// for stale_after; then the state is stale and on_stale decides: keep
// enforcing each record until its own until (enforce_unexpired), or
// answer DUNNO to everything (fail_open); an alert (rule
// policy_state_unavailable) is raised either way and resolved when the
// watch is back. With nothing loaded at all, a request waits at most
// answer_timeout, then is answered DUNNO. The readiness check passes only
// while the live watch is up and the accept loop runs.
package policyservice
