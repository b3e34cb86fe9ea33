// Package report builds the daily and weekly deliverability report: the
// summary a mail operator reads every morning, in the spirit of
// pflogsumm's daily mail, with the feedback-loop review the abuse team
// works from.
//
// A Report covers one period: the 24 hours (Daily) or 7 days (Weekly)
// that end at the start of the hour of Options.End (now when End is zero),
// so `-at 2026-12-07` gives the calendar day of 6 December and the hourly
// and five-minute rollups it reads cover exactly the same span. It answers,
// in pflogsumm's order:
//
//   - Deliveries: attempts by status (sent, deferred, bounced, expired,
//     rejected by our own MTA), the delivered rate (sent of the attempts
//     that concluded: sent + bounced + expired + rejected; a deferral is
//     retried, so it concludes nothing) and the deferral rate (deferrals of
//     all attempts). pflogsumm's "Grand Totals".
//   - Deferrals and bounces by classified reason (the bounce classifier's
//     category) and provider: pflogsumm's "message deferral detail" and
//     "message bounce detail", keyed by reason class instead of relay.
//   - Top remote replies: the reply signatures (the remote text with its
//     variable parts taken out) seen most often, with one sample reply.
//   - Top rejecting recipient domains: the domains whose servers deferred
//     or bounced our mail most.
//   - Probe placement per provider: of the probes that concluded (found in
//     a seed mailbox, or declared missing), the share in the inbox, in spam
//     and missing, with delivery latency p50 and p95.
//   - Blocklist listings that started or ended during the period, and the
//     ones still in force at its end.
//   - Decisions taken: cut-offs and reroutes with their rate and threshold.
//   - The FBL review: per customer, the complaints mailmon counts (counted
//     and from a trusted origin), separately the counted reports whose
//     origin could not be verified, the delivered mail they compare with,
//     and up to three sample reports (subject and a truncated header
//     excerpt) so the abuse team sees what recipients complained about.
//
// Sources. Deliveries and probes are read only from the hourly rollups
// (delivery_status_1h, delivery_reply_1h, probe_sent_1h,
// probe_received_1h, probe_missing_1h; the period is whole hours) and
// complaint_counted_5m, never from delivery_attempted or the probe tables,
// so a weekly report at a million deliveries a day merges rows per hour,
// not per event. The low-volume tables are
// read raw with the period as time bound: dnsbl_listed and dnsbl_delisted
// for the period's listings, decision_cutoff and decision_reroute,
// complaint_received for the untrusted count and the samples. The listings
// in force at the end come from dnsbl_listed_1d and dnsbl_delisted_1d (the
// latest listing and delisting per zone and target), completed from the
// raw tables for the last, partial day.
//
// Counts. The rollups count rows inserted, so an event delivered twice
// before the raw table merges it counts twice there; the raw reads count
// distinct event ids. Outside text (remote replies, complaint subjects and
// headers, blocklist TXT) is flattened to one line without control
// characters and truncated when the report is built, so every renderer
// shows the same, and a terminal never receives escape sequences from it.
//
// Customer filter. Options.Customer restricts deliveries, replies,
// domains, decisions and complaints to one customer. Probes and
// blocklist listings concern our IPs and domains, not a customer, and are
// the same in every customer's report.
//
// Renderers: WriteText (aligned columns like pflogsumm, for mail and
// terminals), WriteHTML (a fragment built with html/template, without an
// <html> wrapper, for the console's page), and encoding/json of the Report
// itself.
package report
