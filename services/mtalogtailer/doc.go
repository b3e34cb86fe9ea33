// Package mtalogtailer is the mta-log-tailer worker: it follows the
// outbound MTA's own log (Postfix, or Exim's main log) and publishes one
// mailmon.delivery.attempted event per recipient delivery attempt, per
// expiry and per pre-queue reject of our own MTA.
//
// Lines are read with package logfollow (rotation by rename and
// copytruncate, restarts, standard input), parsed and joined by queue id
// with package postfixlog, whose records carry the bounce classifier's
// verdict on the remote reply (package bounceclass: the reply TEXT decides,
// so a banner-time "554 ... poor reputation" that Postfix logs as a
// dsn=4.0.0 deferral is still a reputation block). Each event adds:
//
//   - customer and tracking id from the tracking header that a Postfix
//     header_checks WARN rule logs, verified with the deployment's keys
//     (schemas/tracking); a header that does not verify is counted and
//     ignored (tracking_status "invalid");
//   - source_ip from the syslog name of the instance or transport that
//     delivered (Postfix does not log its bind address; configured rules,
//     or an IP written in the name);
//   - provider from the recipient domain, or the relay's MX host name for
//     hosted domains (a built-in table of the big providers, extendable).
//
// # Exactly once, at least once
//
// An event's id is derived from where its line is — the file's content
// fingerprint, the line's offset, the recipient — laid out as a UUIDv7 with
// the line's time. Reading a line again (after a crash, from a rotated
// name, from a copytruncate copy, from standard input) republishes the same
// id: JetStream's duplicate window drops it, and ClickHouse deduplicates
// on id after that.
//
// Events are published asynchronously; at most every commit_interval or
// commit_lines the tailer waits for JetStream to confirm them, and only
// then stores the file's checkpoint (logfollow positions) in the KV bucket
// tailer_offsets. A crash therefore repeats at most one commit window of
// lines, never skips one. At start, lookback_bytes of log before the
// checkpoint are read again without publishing, so deliveries of messages
// queued before the restart still get their message-id and tracking header.
//
// Lines that are not log lines are counted, sampled to the log and copied
// to mailmon.dlq.mta-log-tailer with the reason in the headers; so are
// records that would break the event contract.
package mtalogtailer
