// Package console is mailmon's read-only ops console: the pages an
// operator of an outbound mail platform looks at, served by mailmon itself
// at / on its HTTP listener (http.addr), next to /metrics, /healthz and
// /readyz.
//
// Every page is built when it is asked for, from two sources and nothing
// else. History comes from ClickHouse: the 5-minute, hourly and daily
// rollups that materialised views fill as events are inserted
// (delivery_status_5m and _1h, delivery_reply_1h, probe_*_5m and _1h,
// complaint_counted_5m; a range charted in hours reads its whole hours
// from the hourly tables and the minutes at either end from the 5-minute
// ones), never from a scan of the raw delivery or probe
// tables over a range; the low-volume tables (dnsbl_listed/_delisted,
// dns_audit, decision_*, alert_raised) are read raw, always bounded by
// the page's time range. The DMARC & TLS page reads the daily rollups of
// the receivers' reports (dmarc_record_1d, tlsrpt_result_1d): a report
// covers a UTC day and is dated by its start, so that page reads every
// day its range touches. What is in force now comes from NATS KV: the
// decisions in the enforcement bucket (the ones the policy service
// enforces) and the listings in the dns-sweeper's dnsbl_state bucket. The
// only raw reads of deliveries and probes are the trace's, for one
// message, by tracking id, queue id, probe id or recipient, within the
// range.
//
// Rollup counts are counts of rows inserted (countMerge, always grouped):
// a redelivered event inserted twice before ClickHouse merged it away
// counts twice, which the clickhouse-sink makes rare. Pages show the
// figures, not a guarantee to the message.
//
// Every page is server-rendered with html/template, charts are inline SVG
// drawn on the server, and the CSS is embedded: no script, no build step,
// nothing fetched from the network. The same values are answered as JSON
// for a request with Accept: application/json, so a script sees exactly
// what the page shows. Time range (range=1h|24h|7d|30d, or from/to in RFC
// 3339) and filters (provider, source_ip, customer; domain on the DMARC
// page) are URL parameters, so
// a link shows the same page to someone else.
//
// The console does not write anything. Where an operator would act (lift
// a decision), it shows the mailmon command that does.
//
// Access: without a token or basic credentials configured, only loopback
// clients are served (403 for others), and mailmon refuses a config whose
// http.addr is reachable from other machines. With either configured,
// every request must present it, loopback or not; secrets are compared in
// constant time. A reverse proxy on the same machine makes every client
// loopback: configure authentication when proxying.
package console
