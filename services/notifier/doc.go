// Package notifier is the notifier worker: it delivers mailmon's alerts
// (mailmon.alert.>) to people through webhooks and e-mail, never through
// the MTA being monitored.
//
// It reads the ALERT stream through the durable consumer `notifier`. An
// alert joins its subject's group; group_wait after the group's first
// alert, each alert is judged, per route, against what that route was
// told of the alert's condition (its fingerprint: rule, dedupe key, and
// the provider when only the alert names it). A route is told of a first
// firing, a change of severity, a new member (a zone or provider the
// condition now spans), a resolution of a firing it was told of, and of
// an unchanged firing again only after repeat_interval; a resolution of a
// firing it was never told of is held, and sent after that firing if the
// firing turns up late. What each route was told is in the KV bucket
// notifier_state (state.go), written after the route took the
// notification; the message is acked after the write. So a restart
// neither repeats nor forgets, and a crash between a send and its write
// repeats that one notification.
//
// A route that fails — any status, 4xx included — is retried attempts
// times with exponential backoff, then the message goes back to JetStream
// and returns after the redelivery delays. Once the notifier's clock is
// max_age past the alert's time, the alert is dead-lettered and counted
// (alerts_undeliverable_total): never acked unsent. Silences (package
// silence) hold back firing alerts, never resolutions.
//
// Routes: a generic JSON webhook (Notification), a Slack-compatible
// incoming webhook ({"text": ...}), the Alertmanager API v2
// (POST /api/v2/alerts; labels alertname, dedupe_key, subject, severity,
// so a resolved notice closes its alert through endsAt) and e-mail: one
// plain-text message per notification through an SMTP relay of the
// operator's (email.go; never the MTA being monitored). URLs, tokens and
// passwords are config.Secret: they never appear in logs or errors.
package notifier
