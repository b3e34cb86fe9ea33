// Package notifier is the notifier worker: it delivers mailmon's alerts
// (mailmon.alert.>) to people through webhooks and e-mail, never through
// the MTA being monitored.
//
// It reads the ALERT stream through the durable consumer `notifier`. An
// alert joins its subject's group; group_wait after the group's first
// alert the group goes out as one notification to every route that takes
// it (min_severity, rules). An alert whose dedupe key and status were sent
// within repeat_interval is dropped, so a condition pages once; its
// resolution (status resolved, same dedupe key — e.g. a decision's
// release) is sent as news. A message is acknowledged only once its group
// reached every route; a route that fails is retried attempts times with
// exponential backoff, and then the alert goes back to JetStream and comes
// again later (routes that already took it are skipped). A route that
// answers 4xx (other than 429) cannot be helped by retrying: the failure
// is logged and the alert dropped for that route.
//
// Routes: a generic JSON webhook (Notification), a Slack-compatible
// incoming webhook ({"text": ...}), the Alertmanager API v2
// (POST /api/v2/alerts; labels alertname, dedupe_key, subject, severity,
// so a resolved notice closes its alert through endsAt) and e-mail: one
// plain-text message per notification through an SMTP relay of the
// operator's (email.go; never the MTA being monitored). URLs, tokens and
// passwords are config.Secret: they never appear in logs or errors.
//
// Dedupe marks live in memory: after a restart a condition still firing
// may be notified once more.
package notifier
