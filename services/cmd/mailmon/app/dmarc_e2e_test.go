package app

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// The world of the DMARC end-to-end test: our sending network and the
// customer's domain, as the fbl-ingester is configured with them.
const (
	dmarcE2EDomain  = "shop.example"
	dmarcE2EOurIP   = "192.0.2.10"  // passes everywhere
	dmarcE2EBadIP   = "192.0.2.11"  // ours, failing alignment at google.com
	dmarcE2EForeign = "203.0.113.5" // not ours, sending as shop.example
)

// dmarcE2ERow is one <record> of the test's aggregate report.
type dmarcE2ERow struct {
	ip, headerFrom, dkim, spf string
	count                     uint64
	ours, pass                bool
}

var dmarcE2ERows = []dmarcE2ERow{
	{dmarcE2EOurIP, dmarcE2EDomain, "pass", "pass", 900, true, true},
	{dmarcE2EBadIP, dmarcE2EDomain, "fail", "fail", 150, true, false},
	{dmarcE2EForeign, dmarcE2EDomain, "fail", "fail", 1500, false, false},
	{dmarcE2EOurIP, "news." + dmarcE2EDomain, "pass", "fail", 50, true, true},
}

// TestDMARCReportsEndToEnd mails a DMARC aggregate report and an SMTP TLS
// report, each twice (gzip, then zip or another Message-ID), to the
// fbl-ingester's SMTP listener, with the clickhouse-sink and the
// complaint-evaluator running on a real NATS and a real ClickHouse:
//
//   - every record lands as one row in dmarc_record, once, and the daily
//     rollup sums each message once;
//   - the rows are traced: our sending IPs (trace.source_networks) and the
//     customer of the header From domain (trace.from_domains, parents too);
//   - our IP failing alignment at google.com raises dmarc_alignment, the
//     foreign IP sending 1500 messages as our domain dmarc_unknown_source,
//     and the TLS failures tlsrpt_failure, each once.
func TestDMARCReportsEndToEnd(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP.Addr = ""
	fb := &cfg.FBLIngester
	fb.SMTP.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fb.SMTP.Addresses = []string{"fbl@reports.example"}
	fb.Trace.SourceNetworks = []string{"192.0.2.0/24"}
	fb.Trace.FromDomains = map[string]string{dmarcE2EDomain: "acme"}
	cfg.ClickHouseSink.BatchAge = config.Duration(200 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	workers, err := SelectWorkers("fbl-ingester,clickhouse-sink,complaint-evaluator")
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("warnings and errors logged:\n%s", log.String())
		}
	}()
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, stopMailmon := runMailmon(t, ctx, cfg, logger, workers)
	defer stopMailmon()
	testwait.Eventually(t, 30*time.Second, "the fbl-ingester's SMTP listener", func() bool {
		c, err := net.DialTimeout("tcp", fb.SMTP.Listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// Yesterday's report, as receivers send it early in the morning.
	begin := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	end := begin.Add(24*time.Hour - time.Second)
	xml := dmarcE2EReport("google.com", "e2e-report-1", begin, end)
	name := fmt.Sprintf("google.com!%s!%d!%d.xml", dmarcE2EDomain, begin.Unix(), end.Unix())
	submitFBL(t, fb.SMTP.Listen, dmarcE2EMail("agg-1@google.com", "application/gzip", name+".gz", e2eGzip(t, xml)))
	submitFBL(t, fb.SMTP.Listen, dmarcE2EMail("agg-2@google.com", "application/zip", name+".zip", e2eZip(t, name, xml)))

	tls := dmarcE2ETLSReport(t, "e2e-tls-1", begin, end)
	tlsName := fmt.Sprintf("google.com!%s!%d!%d!e2e.json.gz", dmarcE2EDomain, begin.Unix(), end.Unix())
	submitFBL(t, fb.SMTP.Listen, dmarcE2EMail("tls-1@google.com", "application/tlsrpt+gzip", tlsName, e2eGzip(t, tls)))
	submitFBL(t, fb.SMTP.Listen, dmarcE2EMail("tls-2@google.com", "application/tlsrpt+gzip", tlsName, e2eGzip(t, tls)))

	// Stored by JetStream once: the ids derive from the report.
	if n := len(streamMessages(t, rt.JetStream, "DMARC")); n != len(dmarcE2ERows) {
		t.Errorf("DMARC stream holds %d records after the report came twice, want %d", n, len(dmarcE2ERows))
	}
	if n := len(streamMessages(t, rt.JetStream, "TLSRPT")); n != 1 {
		t.Errorf("TLSRPT stream holds %d results, want 1", n)
	}

	ch := rt.ClickHouse
	query := func(q string, dest ...any) {
		t.Helper()
		if err := ch.QueryRow(ctx, q).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := uint64(len(dmarcE2ERows))
	testwait.Eventually(t, 60*time.Second, "the records in dmarc_record", func() bool {
		var n uint64
		query("SELECT count() FROM dmarc_record", &n)
		return n >= want
	})
	testwait.Eventually(t, 60*time.Second, "the result in tlsrpt_result", func() bool {
		var n uint64
		query("SELECT count() FROM tlsrpt_result", &n)
		return n >= 1
	})
	var distinct, final, all uint64
	query("SELECT count(DISTINCT id) FROM dmarc_record", &distinct)
	query("SELECT count() FROM dmarc_record FINAL", &final)
	query("SELECT count() FROM dmarc_record", &all)
	if distinct != want || final != want || all != want {
		t.Errorf("dmarc_record: %d distinct ids, %d rows FINAL, %d rows; want %d each", distinct, final, all, want)
	}

	var total, pass, ours uint64
	for _, r := range dmarcE2ERows {
		total += r.count
		if r.pass {
			pass += r.count
		}
		if r.ours {
			ours += r.count
		}
	}
	var records, messages, passed, ourMessages uint64
	rollup := "FROM dmarc_record_1d WHERE domain = '" + dmarcE2EDomain + "'"
	// The view's insert into the rollup becomes visible a moment after the
	// rows in dmarc_record.
	testwait.Eventually(t, 30*time.Second, "the records in dmarc_record_1d", func() bool {
		query("SELECT countMerge(records) "+rollup, &records)
		return records >= want
	})
	query("SELECT sumMerge(messages) "+rollup, &messages)
	query("SELECT sumMerge(messages_dmarc_pass) "+rollup, &passed)
	query("SELECT sumMerge(messages) FROM dmarc_record_1d WHERE domain = '"+dmarcE2EDomain+"' AND our_source = 1 AND customer = 'acme'", &ourMessages)
	if records != want || messages != total || passed != pass || ourMessages != ours {
		t.Errorf("dmarc_record_1d: %d records, %d messages, %d passing, %d from our sources for acme; want %d, %d, %d, %d",
			records, messages, passed, ourMessages, want, total, pass, ours)
	}
	var bucket time.Time
	query("SELECT min(bucket) FROM dmarc_record_1d", &bucket)
	if !bucket.Equal(begin) {
		t.Errorf("rollup day %v, want the report's %v", bucket, begin)
	}
	var foreign uint64
	query("SELECT sumMerge(messages) FROM dmarc_record_1d WHERE our_source = 0 AND source_ip = '"+dmarcE2EForeign+"'", &foreign)
	if foreign != 1500 {
		t.Errorf("messages from the foreign source %d, want 1500", foreign)
	}

	var tlsRows, tlsResults, tlsOK, tlsFailed uint64
	testwait.Eventually(t, 30*time.Second, "the result in tlsrpt_result_1d", func() bool {
		query("SELECT countMerge(results) FROM tlsrpt_result_1d", &tlsResults)
		return tlsResults >= 1
	})
	query("SELECT count() FROM tlsrpt_result FINAL", &tlsRows)
	query("SELECT sumMerge(successful_sessions), sumMerge(failed_sessions) FROM tlsrpt_result_1d WHERE policy_domain = '"+dmarcE2EDomain+"'", &tlsOK, &tlsFailed)
	if tlsRows != 1 || tlsOK != 900 || tlsFailed != 100 {
		t.Errorf("tlsrpt_result: %d rows FINAL, rollup %d successful and %d failed sessions; want 1, 900, 100", tlsRows, tlsOK, tlsFailed)
	}

	keys := []string{
		"dmarc_alignment/ip:" + dmarcE2EBadIP + "/reporter:google.com",
		"dmarc_unknown_source/domain:" + dmarcE2EDomain + "/ip:" + dmarcE2EForeign,
		"tlsrpt_failure/domain:" + dmarcE2EDomain,
	}
	firing := func() map[string]int {
		out := map[string]int{}
		for _, a := range alertsOnStream(t, rt.JetStream) {
			if a.Status == schemas.AlertFiring {
				out[a.DedupeKey]++
			}
		}
		return out
	}
	testwait.Eventually(t, 60*time.Second, "the report alerts", func() bool {
		f := firing()
		for _, k := range keys {
			if f[k] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // an alert raised twice would be on the stream by now
	f := firing()
	for _, k := range keys {
		if f[k] != 1 {
			t.Errorf("%s: fired %d times, want once", k, f[k])
		}
	}
	if k := "dmarc_alignment/ip:" + dmarcE2EOurIP + "/reporter:google.com"; f[k] != 0 {
		t.Errorf("%s fired though every message from it passed", k)
	}
}

// dmarcE2EReport renders the aggregate report (RFC 7489 appendix C).
func dmarcE2EReport(org, reportID string, begin, end time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata><org_name>%s</org_name><email>noreply-dmarc-support@%s</email><report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
  <policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>
`, org, org, reportID, begin.Unix(), end.Unix(), dmarcE2EDomain)
	for _, r := range dmarcE2ERows {
		fmt.Fprintf(&b, `  <record>
    <row><source_ip>%s</source_ip><count>%d</count>
      <policy_evaluated><disposition>none</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><dkim><domain>%s</domain><selector>s1</selector><result>%s</result></dkim>
      <spf><domain>bounces.%s</domain><result>%s</result></spf></auth_results>
  </record>
`, r.ip, r.count, r.dkim, r.spf, r.headerFrom, r.headerFrom, r.dkim, dmarcE2EDomain, r.spf)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// dmarcE2ETLSReport renders an RFC 8460 report: google.com's sessions to
// our MX, 100 of 1000 failing on an expired certificate.
func dmarcE2ETLSReport(t *testing.T, reportID string, begin, end time.Time) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"organization-name": "google.com",
		"date-range":        map[string]string{"start-datetime": begin.Format(time.RFC3339), "end-datetime": end.Format(time.RFC3339)},
		"contact-info":      "smtp-tls-reporting@google.com",
		"report-id":         reportID,
		"policies": []any{map[string]any{
			"policy":  map[string]any{"policy-type": "sts", "policy-domain": dmarcE2EDomain, "mx-host": []string{"mx1." + dmarcE2EDomain}},
			"summary": map[string]any{"total-successful-session-count": 900, "total-failure-session-count": 100},
			"failure-details": []any{map[string]any{"result-type": "certificate-expired", "sending-mta-ip": "209.85.220.41",
				"receiving-mx-hostname": "mx1." + dmarcE2EDomain, "failed-session-count": 100}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// dmarcE2EMail attaches a report file to a mail as google.com sends it.
func dmarcE2EMail(messageID, contentType, filename string, data []byte) []byte {
	var b strings.Builder
	b.WriteString("From: noreply-dmarc-support@google.com\r\nTo: fbl@reports.example\r\n")
	fmt.Fprintf(&b, "Subject: Report domain: %s Submitter: google.com\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n",
		dmarcE2EDomain, time.Now().UTC().Format(time.RFC1123Z), messageID)
	if strings.HasPrefix(contentType, "application/tlsrpt") {
		fmt.Fprintf(&b, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: google.com\r\n", dmarcE2EDomain)
		b.WriteString("Content-Type: multipart/report; report-type=tlsrpt; boundary=\"B\"\r\n\r\n")
	} else {
		b.WriteString("Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n")
	}
	b.WriteString("--B\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n")
	fmt.Fprintf(&b, "--B\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		contentType, filename, filename)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--B--\r\n")
	return []byte(b.String())
}

func e2eGzip(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func e2eZip(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
