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
// # Freshness and failing open
//
// The copy is kept by a KV watch (jetstream KeyValue.WatchAll): the whole
// bucket is loaded, then every put and delete is applied the moment it
// arrives, so a new decision is answered within milliseconds and a
// request never waits for NATS. If the watch breaks it is re-established
// (the bucket loaded again and swapped in whole). While NATS is
// unreachable the last known decisions are enforced for stale_after; after
// that, or before the first load (at most answer_timeout per request),
// every request is answered DUNNO and an alert (rule
// policy_state_unavailable) is raised, resolved when the state is back.
// Mail is never held hostage to mailmon's own outage.
package policyservice
