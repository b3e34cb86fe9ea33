package fblingester

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/corpustest"
	"github.com/mailmon/mailmon/services/internal/reportfile"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// reportConfig is testConfig with sender.example mapped to customer acme
// by its From domain, and room for report attachments.
func reportConfig() Config {
	cfg := testConfig()
	cfg.Trace.FromDomains = map[string]string{"sender.example": "acme"}
	cfg.MaxMessageBytes = 1 << 20
	return cfg
}

// testRows are what google.com saw of mail as sender.example: our IPs
// (192.0.2.0/24) passing, failing alignment, passing on SPF only, and a
// foreign IP sending as our domain.
var testRows = []dmarcRow{
	{ip: "192.0.2.10", headerFrom: "sender.example", dkim: "pass", spf: "pass", count: 120},
	{ip: "192.0.2.11", headerFrom: "news.sender.example", dkim: "fail", spf: "fail", count: 7},
	{ip: "192.0.2.12", headerFrom: "sender.example", dkim: "fail", spf: "pass", count: 5},
	{ip: "203.0.113.5", headerFrom: "sender.example", dkim: "fail", spf: "fail", count: 40},
}

func googleMail(id, contentType, name string, data []byte) []byte {
	return reportMail(id+"@google.com", "noreply-dmarc-support@google.com",
		"Report domain: sender.example Submitter: google.com Report-ID: 1234567890", contentType, name, data)
}

// dmarcStored returns the DMARC records in the stream, checking each
// message's id is its event's.
func dmarcStored(t *testing.T, js jetstream.JetStream) []*schemas.DMARCRecord {
	t.Helper()
	msgs := storedMsgs(t, js, "DMARC", schemas.SubjectDMARCRecord)
	evs := decode[schemas.DMARCRecord](t, msgs)
	for i, m := range msgs {
		if got := m.Header.Get(jetstream.MsgIDHeader); got != evs[i].ID {
			t.Errorf("message id %q, event id %q", got, evs[i].ID)
		}
	}
	return evs
}

func ids[E schemas.Event](evs []E) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventHeader().ID)
	}
	slices.Sort(out)
	return out
}

func TestDMARCReportOverSMTP(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, reportConfig(), js)
	xml := dmarcXML("google.com", "1234567890", "sender.example", testRows)
	name := "google.com!sender.example!1717891200!1717977599.xml"
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("r1", "application/gzip", name+".gz", gzipped(t, xml))); err != nil {
		t.Fatalf("send: %v", err)
	}
	// 250 came back: every record is stored already.
	evs := dmarcStored(t, js)
	if len(evs) != len(testRows) {
		t.Fatalf("%d records stored right after 250, want %d", len(evs), len(testRows))
	}
	type want struct {
		ours       bool
		dmarc      string
		count      uint64
		headerFrom string
	}
	wants := map[string]want{
		"192.0.2.10":  {true, schemas.DMARCPass, 120, "sender.example"},
		"192.0.2.11":  {true, schemas.DMARCFail, 7, "news.sender.example"},
		"192.0.2.12":  {true, schemas.DMARCPass, 5, "sender.example"},
		"203.0.113.5": {false, schemas.DMARCFail, 40, "sender.example"},
	}
	for _, ev := range evs {
		w, ok := wants[ev.SourceIP]
		if !ok {
			t.Errorf("record for unexpected source %q", ev.SourceIP)
			continue
		}
		if ev.OurSource != w.ours || ev.DMARC != w.dmarc || ev.Count != w.count || ev.HeaderFrom != w.headerFrom {
			t.Errorf("%s: ours %v dmarc %s count %d header_from %s; want %+v", ev.SourceIP, ev.OurSource, ev.DMARC, ev.Count, ev.HeaderFrom, w)
		}
		// news.sender.example is traced through its parent domain.
		if ev.Customer != "acme" {
			t.Errorf("%s: customer %q, want acme (from_domains, parent domain)", ev.SourceIP, ev.Customer)
		}
		if ev.OrgName != "google.com" || ev.ReporterEmail != "noreply-dmarc-support@google.com" || ev.ReportID != "1234567890" ||
			ev.Domain != "sender.example" || ev.Policy != "none" || ev.Percent != 100 || ev.ReceivedVia != schemas.ReceivedViaSMTP {
			t.Errorf("%s: report fields %+v", ev.SourceIP, ev)
		}
		if !ev.Time.Equal(testReportBegin) || !ev.Begin.Equal(testReportBegin) || !ev.End.Equal(testReportBegin.Add(24*time.Hour-time.Second)) {
			t.Errorf("%s: time %v begin %v end %v; want the report's period", ev.SourceIP, ev.Time, ev.Begin, ev.End)
		}
		if len(ev.DKIMDomains) != 1 || ev.DKIMDomains[0] != w.headerFrom || len(ev.SPFResults) != 1 || ev.SPFDomains[0] != "bounces.sender.example" {
			t.Errorf("%s: auth results dkim %v spf %v %v", ev.SourceIP, ev.DKIMDomains, ev.SPFDomains, ev.SPFResults)
		}
	}
	first := ids(evs)
	if len(slices.Compact(slices.Clone(first))) != len(first) {
		t.Errorf("records share ids: %v", first)
	}

	// The same report again, zipped, in another mail: the same ids, so
	// the stream still holds one copy.
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("r2", "application/zip", name+".zip", zipped(t, name, xml))); err != nil {
		t.Fatalf("send again: %v", err)
	}
	again := dmarcStored(t, js)
	if len(again) != len(testRows) {
		t.Errorf("%d records after the report came twice, want %d", len(again), len(testRows))
	}
	if got := counter(t, r.in.m.reports.WithLabelValues("dmarc")); got != 2 {
		t.Errorf("reports counted %v, want 2", got)
	}
	if got := counter(t, r.in.m.messages.WithLabelValues(schemas.ReceivedViaSMTP, outcomeDMARC)); got != 2 {
		t.Errorf("messages counted as dmarc reports %v, want 2", got)
	}
	if n := len(storedMsgs(t, js, "DLQ", "")); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestLargeDMARCReport(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, reportConfig(), js)
	const n = 5000 // a busy domain's daily report from Google
	rows := make([]dmarcRow, n)
	for i := range rows {
		rows[i] = dmarcRow{ip: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), headerFrom: "sender.example", dkim: "pass", spf: "fail", count: i + 1}
	}
	data := gzipped(t, dmarcXML("google.com", "big-1", "sender.example", rows))
	start := time.Now()
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("big1", "application/gzip", "big.xml.gz", data)); err != nil {
		t.Fatalf("send: %v", err)
	}
	t.Logf("%d records (%d bytes gzip): stored and answered 250 in %s", n, len(data), time.Since(start).Round(time.Millisecond))
	evs := dmarcStored(t, js)
	if len(evs) != n {
		t.Fatalf("%d records stored, want %d", len(evs), n)
	}
	var total uint64
	for _, ev := range evs {
		total += ev.Count
	}
	if want := uint64(n * (n + 1) / 2); total != want {
		t.Errorf("messages over all records %d, want %d", total, want)
	}
}

func TestTLSReportOverSMTP(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, reportConfig(), js)
	doc := tlsrptJSON(t, "Google Inc.", "2024-06-09T00:00:00Z_sender.example", "sender.example", "192.0.2.10")
	mail := func(id string) []byte {
		return reportMail(id+"@google.com", "noreply-smtp-tls-reporting@google.com", "Report Domain: sender.example Submitter: google.com Report-ID: <2024.06.09T00.00.00Z+sender.example@google.com>",
			"application/tlsrpt+gzip", "google.com!sender.example!1717891200!1717977599!001.json.gz", gzipped(t, doc))
	}
	for _, id := range []string{"t1", "t2"} {
		if err := send(r.addr, "noreply-smtp-tls-reporting@google.com", []string{"fbl@sender.example"}, mail(id)); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
	}
	evs := decode[schemas.TLSRPTResult](t, storedMsgs(t, js, "TLSRPT", schemas.SubjectTLSRPTResult))
	if len(evs) != 1 {
		t.Fatalf("%d TLS results after the same report twice, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Organization != "google inc." || ev.PolicyDomain != "sender.example" || ev.PolicyType != "sts" || ev.Success != 970 || ev.Failure != 30 {
		t.Errorf("result %+v", ev)
	}
	if !ev.OurSource || !slices.Equal(ev.FailureSendingIPs, []string{"192.0.2.10"}) || !slices.Equal(ev.FailureResultTypes, []string{"certificate-expired"}) ||
		!slices.Equal(ev.FailureSessionCounts, []uint64{30}) {
		t.Errorf("failures: ours %v ips %v types %v counts %v", ev.OurSource, ev.FailureSendingIPs, ev.FailureResultTypes, ev.FailureSessionCounts)
	}
	if !ev.Time.Equal(testReportBegin) || ev.ReceivedVia != schemas.ReceivedViaSMTP {
		t.Errorf("time %v via %s", ev.Time, ev.ReceivedVia)
	}
	if got := counter(t, r.in.m.messages.WithLabelValues(schemas.ReceivedViaSMTP, outcomeTLSRPT)); got != 2 {
		t.Errorf("messages counted as TLS reports %v, want 2", got)
	}
}

// TestReportBombsAreDeadLettered: a gzip and a zip that inflate to 1 GiB
// each are dead-lettered with the reason (250: the sender must not retry),
// within bounded memory, and the next report is read as usual.
func TestReportBombsAreDeadLettered(t *testing.T) {
	js := startNATS(t)
	cfg := reportConfig()
	cfg.MaxMessageBytes = 4 << 20
	r := startIngester(t, cfg, js)
	const inflated = 1 << 30
	bombs := []struct{ name, contentType string }{
		{"google.com!sender.example!1717891200!1717977599.xml.gz", "application/gzip"},
		{"google.com!sender.example!1717891200!1717977599.zip", "application/zip"},
	}
	data := [][]byte{gzipBomb(t, inflated>>20), zipBomb(t, inflated>>20)}
	for i, b := range bombs {
		msg := googleMail(fmt.Sprintf("bomb%d", i), b.contentType, b.name, data[i])
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"}, msg); err != nil {
			t.Fatalf("%s (%d bytes): %v; want 250 (dead-lettered)", b.name, len(msg), err)
		}
		runtime.ReadMemStats(&after)
		// Everything allocated while the bomb was handled, reads and
		// buffers that were freed included: far below what it inflates to.
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes mailed, %d MiB allocated handling it", b.name, len(msg), alloc>>20)
		if alloc > inflated/4 {
			t.Errorf("%s: %d MiB allocated, want under %d MiB", b.name, alloc>>20, inflated>>22)
		}
	}
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	for _, m := range dl {
		if reason := m.Header.Get(bus.HeaderDeadLetterReason); !strings.Contains(reason, "compression bomb") {
			t.Errorf("dead letter reason %q", reason)
		}
	}
	if got := counter(t, r.in.m.reportsRefused.WithLabelValues(reportRefusedLimit)); got != 2 {
		t.Errorf("reports refused over the limits: %v, want 2", got)
	}
	if n := len(storedMsgs(t, js, "DMARC", "")); n != 0 {
		t.Errorf("%d records stored from bombs", n)
	}
	// The input goes on.
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("after", "application/gzip", "r.xml.gz", gzipped(t, dmarcXML("google.com", "after-1", "sender.example", testRows)))); err != nil {
		t.Fatal(err)
	}
	if n := len(dmarcStored(t, js)); n != len(testRows) {
		t.Errorf("%d records from the report after the bombs, want %d", n, len(testRows))
	}
}

// TestReportFilesImported: report files as receivers' tools save them —
// bare XML, .xml.gz, .zip, TLS .json — are imported from a directory; the
// same report as XML and as gzip is stored once; a bomb among them is
// dead-lettered and moved like any file, and the files after it are read.
func TestReportFilesImported(t *testing.T) {
	js := startNATS(t)
	cfg := reportConfig()
	cfg.SMTP.Listen = ""
	r := startIngester(t, cfg, js)
	r.stop()
	dir := t.TempDir()
	one := dmarcXML("Yahoo", "y-1", "sender.example", testRows[:2])
	files := map[string][]byte{
		"a-yahoo.xml":    one,
		"b-yahoo.xml.gz": gzipped(t, one),
		"c-bomb.xml.gz":  gzipBomb(t, 256),
		"d-google.zip":   zipped(t, "google.com!sender.example!1717891200!1717977599.xml", dmarcXML("google.com", "g-1", "sender.example", testRows[2:])),
		"e-tls.json":     tlsrptJSON(t, "Microsoft Corporation", "ms-1", "sender.example", "203.0.113.9"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.in.ImportDir(context.Background(), dir, false)
	if err != nil || got != len(files) {
		t.Fatalf("import: %d, %v; want %d", got, err, len(files))
	}
	evs := dmarcStored(t, js)
	if len(evs) != len(testRows) {
		t.Errorf("%d records, want %d (the XML and its gzip stored once)", len(evs), len(testRows))
	}
	for _, ev := range evs {
		if ev.ReceivedVia != schemas.ReceivedViaFile {
			t.Errorf("received via %q", ev.ReceivedVia)
		}
		if ev.ReportID == "y-1" && ev.OrgName != "yahoo" {
			t.Errorf("org name %q, want yahoo (lower-cased)", ev.OrgName)
		}
	}
	tls := decode[schemas.TLSRPTResult](t, storedMsgs(t, js, "TLSRPT", schemas.SubjectTLSRPTResult))
	if len(tls) != 1 || tls[0].OurSource {
		t.Errorf("TLS results %+v; want one, from a sending IP not ours", tls)
	}
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != 1 || dl[0].Header.Get(headerDeadLetterInput) != schemas.ReceivedViaFile {
		t.Fatalf("%d dead letters, want the bomb", len(dl))
	}
	if reason := dl[0].Header.Get(bus.HeaderDeadLetterReason); !strings.Contains(reason, "compression bomb") {
		t.Errorf("bomb dead letter reason %q", reason)
	}
	if done, _ := os.ReadDir(filepath.Join(dir, DoneDir)); len(done) != len(files) {
		t.Errorf("%d files moved to done/, want %d", len(done), len(files))
	}
}

// TestReportOverIMAPAndSMTPStoredOnce: the same report mailed to the
// listener and found in a mailbox (gzip once, zip once) is one set of rows.
func TestReportOverIMAPAndSMTPStoredOnce(t *testing.T) {
	addr, u := startIMAP(t)
	js := startNATS(t)
	r := startIngester(t, reportConfig(), js)
	xml := dmarcXML("google.com", "multi-1", "sender.example", testRows)
	name := "google.com!sender.example!1717891200!1717977599.xml"
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("m1", "application/gzip", name+".gz", gzipped(t, xml))); err != nil {
		t.Fatal(err)
	}
	smtpIDs := ids(dmarcStored(t, js))
	deliver(t, u, googleMail("m2", "application/zip", name+".zip", zipped(t, name, xml)))
	deliver(t, u, googleMail("m3", "application/gzip", name+".gz", gzipped(t, xml)))
	acct := IMAPAccount{Name: "dmarc", Addr: addr, TLS: tlsNone, Username: "fbl@sender.example", Password: "secret"}
	n, err := r.in.pullIMAP(context.Background(), acct)
	if err != nil || n != 2 {
		t.Fatalf("pull: %d, %v; want 2", n, err)
	}
	if c := count(t, u, "INBOX"); c != 0 {
		t.Errorf("INBOX holds %d after the pull, want 0", c)
	}
	evs := dmarcStored(t, js)
	if !slices.Equal(ids(evs), smtpIDs) {
		t.Errorf("ids after SMTP and IMAP %v, want the SMTP ones %v", ids(evs), smtpIDs)
	}
	for _, ev := range evs {
		if ev.ReceivedVia != schemas.ReceivedViaSMTP {
			t.Errorf("stored copy came via %s; the first one (smtp) is kept", ev.ReceivedVia)
		}
	}
	if got := counter(t, r.in.m.messages.WithLabelValues(schemas.ReceivedViaIMAP, outcomeDMARC)); got != 2 {
		t.Errorf("IMAP messages counted as DMARC reports %v, want 2", got)
	}
}

func TestReportTracing(t *testing.T) {
	cfg := TraceConfig{
		SourceNetworks: []string{"192.0.2.0/24", "2001:db8::/32"},
		FromDomains:    map[string]string{"shop.example": "acme"},
		DKIMDomains:    map[string]string{"mail.bulk.example": "bulk", "acme.example": "acme"},
	}
	tr := newTracer(cfg, worker.Tracking{Keyring: &testRing}, time.Now)
	for _, c := range []struct {
		domain, customer string
	}{
		{"shop.example", "acme"},
		{"a.b.shop.example", "acme"},   // parent domains
		{"news.acme.example", "acme"},  // dkim_domains when from_domains has none
		{"bulk.example", ""},           // a parent of a mapped domain is not it
		{"shop.example.evil.test", ""}, // a suffix is not a parent
		{"", ""},
	} {
		if got := tr.customerOfDomain(c.domain); got != c.customer {
			t.Errorf("customerOfDomain(%q) = %q, want %q", c.domain, got, c.customer)
		}
	}
	for _, c := range []struct {
		ip   string
		ours bool
	}{
		{"192.0.2.200", true}, {"::ffff:192.0.2.1", true}, {"2001:db8::25", true}, {"198.51.100.1", false}, {"", false},
	} {
		a, _ := netip.ParseAddr(c.ip)
		if got := tr.ourNetwork(a); got != c.ours {
			t.Errorf("ourNetwork(%q) = %v, want %v", c.ip, got, c.ours)
		}
	}
	// No networks configured: no address is ours.
	if none := newTracer(TraceConfig{}, worker.Tracking{Keyring: &testRing}, time.Now); none.ourNetwork(netip.MustParseAddr("192.0.2.1")) {
		t.Error("an address is ours with no source_networks")
	}
}

// TestCorpusReportsImported imports every file of the DMARC and TLS
// report corpus as `mailmon fbl import` does: each valid one becomes as
// many events as the answer key has rows, each following the contract;
// each invalid one is dead-lettered; the same report as XML, gzip and zip
// (tierpod-test) makes the same ids. Files that reuse a report's reporter,
// id and domain (invalid_utf_8.xml is a damaged copy of
// !example.com!...xml, tierpod-test_empty.xml a variant of tierpod-test)
// are taken for the same report: their records share ids by position.
func TestCorpusReportsImported(t *testing.T) {
	dir := corpustest.Path(t, "dmarc")
	key, err := os.ReadFile(filepath.Join(dir, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	js := startNATS(t)
	cfg := reportConfig()
	cfg.SMTP.Listen = ""
	cfg.MaxMessageBytes = 10 << 20
	r := startIngester(t, cfg, js)
	r.stop()
	allIDs := map[string]bool{}
	sameReport := map[string][]string{} // tierpod-test.* → its ids
	files, rows := 0, 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(key)), "\n") {
		var k struct {
			File  string           `json:"file"`
			Kind  string           `json:"kind"`
			Valid bool             `json:"valid"`
			Rows  []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			t.Fatal(err)
		}
		files++
		res, err := r.in.ImportFile(context.Background(), filepath.Join(dir, filepath.FromSlash(k.File)), false)
		if err != nil {
			t.Fatalf("%s: %v", k.File, err)
		}
		want := map[string]string{"dmarc": outcomeDMARC, "tlsrpt": outcomeTLSRPT}[k.Kind]
		if !k.Valid {
			want = outcomeDeadLetter
		}
		if res.Outcome != want || (k.Valid && len(res.Events) != len(k.Rows)) {
			t.Errorf("%s: %s with %d events (%s); want %s with %d", k.File, res.Outcome, len(res.Events), res.Reason, want, len(k.Rows))
		}
		rows += len(res.Events)
		for _, id := range res.Events {
			allIDs[id] = true
		}
		if strings.Contains(k.File, "tierpod-test.xml") {
			slices.Sort(res.Events)
			sameReport[k.File] = res.Events
		}
	}
	t.Logf("%d files, %d events, %d distinct ids", files, rows, len(allIDs))
	var first []string
	for f, ids := range sameReport {
		if first == nil {
			first = ids
		} else if !slices.Equal(ids, first) {
			t.Errorf("%s: ids %v differ from another copy's %v", f, ids, first)
		}
	}
	if len(sameReport) != 3 {
		t.Errorf("%d copies of tierpod-test found, want 3 (xml, gz, zip)", len(sameReport))
	}
	msgs := append(storedMsgs(t, js, "DMARC", ""), storedMsgs(t, js, "TLSRPT", "")...)
	if len(msgs) != len(allIDs) {
		t.Errorf("streams hold %d events, want the %d distinct ids", len(msgs), len(allIDs))
	}
	// One event is one record or policy: far under NATS's max_payload
	// (1 MiB by default), however large the report.
	largest, sum := 0, 0
	for _, m := range msgs {
		largest, sum = max(largest, len(m.Data)), sum+len(m.Data)
	}
	t.Logf("event sizes: largest %d bytes, mean %d", largest, sum/max(len(msgs), 1))
	if largest > 16<<10 {
		t.Errorf("an event of %d bytes", largest)
	}
}

// TestUnreadableReportAttachment: a mail whose only report-like
// attachment cannot be unpacked is dead-lettered with the reason and
// counted; a bounce returning a message with such an attachment is still
// a bounce.
func TestUnreadableReportAttachment(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, reportConfig(), js)
	junk := []byte("\x1f\x8b\x08\x00 this is no gzip stream at all, only its first bytes")
	if err := send(r.addr, "noreply-dmarc-support@google.com", []string{"fbl@sender.example"},
		googleMail("junk1", "application/gzip", "r.xml.gz", junk)); err != nil {
		t.Fatalf("send: %v; want 250 (dead-lettered)", err)
	}
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if reason := dl[0].Header.Get(bus.HeaderDeadLetterReason); !strings.Contains(reason, "report not unpacked") {
		t.Errorf("reason %q", reason)
	}
	if got := counter(t, r.in.m.reportsRefused.WithLabelValues(reportRefusedUnreadable)); got != 1 {
		t.Errorf("unreadable reports counted %v, want 1", got)
	}

	// A DSN whose returned original carries the same attachment.
	original := string(googleMail("orig1", "application/gzip", "r.xml.gz", junk))
	bounce := strings.Replace(string(dsnBounce("jb1", "")), "\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n",
		"\r\n--B1\r\nContent-Type: message/rfc822\r\n\r\n"+original+"\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n", 1)
	if !reportfile.LooksLikeReport([]byte(bounce)) {
		t.Fatal("the bounce does not carry a report-like attachment: the test proves nothing")
	}
	if err := send(r.addr, "", []string{"bounce-1@bounces.sender.example"}, []byte(bounce)); err != nil {
		t.Fatalf("send bounce: %v", err)
	}
	if n := len(storedMsgs(t, js, "BOUNCE", schemas.SubjectBounceReceived)); n != 2 {
		t.Errorf("%d bounces, want 2", n)
	}
	if n := len(storedMsgs(t, js, "DLQ", "")); n != 1 {
		t.Errorf("%d dead letters after the bounce, want still 1", n)
	}
}
