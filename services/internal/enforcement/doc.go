// Package enforcement is the shared vocabulary of mailmon's enforcement
// loop: the subjects a decision applies to, how they are written as keys of
// the `enforcement` KV bucket, and the record stored under each key. The
// complaint-evaluator writes records, the policy-service watches them and
// answers Postfix from them, and `mailmon enforcement` lists, explains and
// lifts them.
//
// # Subjects
//
// A subject is written the way events carry it (schemas.DecisionTarget):
//
//	customer:acme                  all of one customer's mail
//	ip:192.0.2.10                  all mail of one sending IP
//	customer:acme/provider:gmail   one customer's mail to one provider
//
// # Keys
//
// KV keys may only hold A-Z a-z 0-9 - _ / = and dots, and dots separate
// tokens, so a subject is stored under "<scope>.<escaped value>[.<escaped
// provider>]" where every byte outside A-Z a-z 0-9 - _ is written "=XX"
// (upper-case hex): "customer.acme", "source_ip.192=2E0=2E2=2E10",
// "customer_provider.acme.gmail". Each subject has exactly one key, and the
// key decodes back to the subject.
//
// # Records
//
// A record is the JSON form of Record. It is created with a per-key TTL
// equal to the decision's duration (jetstream.KeyTTL), so the server
// removes it when the decision expires even when no mailmon process runs;
// a decision that lasts until lifted has no TTL. Readers also ignore a
// record whose Until has passed, so an answer never depends on when the
// server gets round to expiring a key.
package enforcement
