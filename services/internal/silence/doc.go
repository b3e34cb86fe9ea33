// Package silence holds back notifications during planned maintenance. A
// silence is a set of matchers over an alert's labels (rule, subject,
// severity, customer, provider, source_ip, recipient_domain) and a time
// span; an alert that every matcher accepts while the silence is active is
// still recorded, but not notified.
//
// # Matchers
//
// A matcher is name=value. The value is compared exactly, or, when it ends
// in "*", as a prefix: provider=gmail, source_ip=192.0.2.*, rule=probe_*.
// "*" alone matches any non-empty value. An alert without the label (an
// empty field) never matches a matcher on it, so customer=* silences only
// alerts about some customer. Every matcher of a silence must match; a
// silence has at least one, and a name at most once. Matching is a byte
// comparison per matcher: linear in the matchers' length, no patterns.
//
// # Storage and trust
//
// Silences live in the KV bucket alert_silences (pipelines/topology.yaml),
// one key per silence id. Only the NATS user silence-cli may write it
// (`mailmon silence add|expire`); the notifier reads it. A silence mutes
// alerts, so a record is checked when read exactly as when written
// (Silence.Validate: bounded matchers, a known label name, printable text,
// at most MaxDuration long, strict JSON of at most MaxRecordBytes); a
// record that fails is refused (counted by Store.Refused) and mutes nothing.
//
// Expiring a silence rewrites it with ends_at = now, so `mailmon silence
// list -all` still shows it; Add deletes the silences that ended more than
// Retention ago, which keeps the bucket bounded without a TTL.
//
// # In-memory copy
//
// Open watches the bucket (a KV watch) and keeps every valid silence in
// memory, so Store.Silenced answers per alert without a round trip. Open
// returns once the current silences are loaded; the watch re-establishes
// itself after a NATS outage, and Store.Synced tells whether it is current.
package silence
