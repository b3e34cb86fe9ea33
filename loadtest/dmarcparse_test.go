package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

const testAggReport = `<?xml version="1.0"?><feedback><report_metadata><org_name>r.example</org_name><report_id>1</report_id>
<date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>s.example</domain><p>none</p></policy_published>
<record><row><source_ip>192.0.2.1</source_ip><count>2</count></row><identifiers><header_from>s.example</header_from></identifiers></record>
<record><row><source_ip>192.0.2.2</source_ip><count>1</count></row><identifiers><header_from>` + "s\xff.example" + `</header_from></identifiers></record></feedback>`

const testTLSReport = `{"organization-name":"o","report-id":"r","policies":[{"policy":{"policy-type":"sts","policy-domain":"d.example","mx-host":"mx.d.example"}}]}`

// TestDMARCBaseline: the baseline counts the rows of reports attached the
// ways reportMail attaches them, through an mbox.
func TestDMARCBaseline(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	io.WriteString(w, testAggReport)
	w.Close()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create("a.xml")
	io.WriteString(f, testAggReport)
	zw.Close()
	var mbox bytes.Buffer
	for _, m := range [][]byte{
		reportMail("a.xml", []byte(testAggReport)),
		reportMail("a.xml.gz", gz.Bytes()),
		reportMail("a.zip", zb.Bytes()),
		reportMail("t.json", []byte(testTLSReport)),
	} {
		mbox.WriteString("From MAILER-DAEMON Thu Apr 29 23:34:45 2021\n")
		mbox.Write(m)
		mbox.WriteString("\n")
	}
	msgs := dmarcBaselineSplitMbox(mbox.Bytes())
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
	rows := 0
	for i, m := range msgs {
		n, err := dmarcBaselineMessage(m)
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		rows += n
	}
	if rows != 7 {
		t.Errorf("%d rows, want 7 (2 per aggregate report, 1 TLS policy)", rows)
	}
}

func TestParseDMARCParseFlags(t *testing.T) {
	var errOut bytes.Buffer
	if _, err := parseDMARCParseFlags([]string{"-passes", "0"}, &errOut); err == nil {
		t.Error("-passes 0 accepted")
	}
	o, err := parseDMARCParseFlags(nil, &errOut)
	if err != nil || o.passes != 20 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}
