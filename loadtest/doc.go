// Command loadtest drives mailmon from the outside and measures it against
// the raw client libraries on the same servers, in the same run.
//
// It is a black box on purpose: of mailmon it imports only the public
// contract (schemas for event types, subjects and tables; pipelines for the
// streams), plus services/peers, which starts Postfix and Dovecot and holds
// no mailmon code, and deploy/grafana, the dashboards' queries as Grafana
// would send them, and it talks to mailmon the way any other producer or dashboard would — it
// publishes events to JetStream with the event id as the message id, and
// reads ClickHouse. So a figure it reports is what a deployment would see,
// and a lost or doubled event is one that a user would see.
//
// Every scenario starts its own servers on loopback (mailmon's embedded
// NATS and a local clickhouse-server, in a temp dir), is bounded in events
// and time, stops every process it started by its pid, and ends by printing
// one JSON object as its last stdout line. See README.md for the scenarios,
// their flags and what each figure means.
package main
