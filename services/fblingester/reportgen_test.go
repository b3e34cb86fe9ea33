package fblingester

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// dmarcRow is one <record> of a test aggregate report.
type dmarcRow struct {
	ip, headerFrom, dkim, spf string
	count                     int
}

// testReportBegin is the start of every test report's period.
var testReportBegin = time.Date(2024, 6, 9, 0, 0, 0, 0, time.UTC)

// dmarcXML renders an RFC 7489 appendix C aggregate report.
func dmarcXML(org, reportID, domain string, rows []dmarcRow) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>%s</org_name>
    <email>noreply-dmarc-support@%s</email>
    <report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>
`, org, org, reportID, testReportBegin.Unix(), testReportBegin.Add(24*time.Hour-time.Second).Unix(), domain)
	for _, r := range rows {
		fmt.Fprintf(&b, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>none</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated>
    </row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results>
      <dkim><domain>%s</domain><selector>s1</selector><result>%s</result></dkim>
      <spf><domain>bounces.%s</domain><result>%s</result></spf>
    </auth_results>
  </record>
`, r.ip, r.count, r.dkim, r.spf, r.headerFrom, r.headerFrom, r.dkim, domain, r.spf)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// tlsrptJSON renders an RFC 8460 report with one policy for domain, whose
// failures came from sendingIP.
func tlsrptJSON(t testing.TB, org, reportID, domain, sendingIP string) []byte {
	rep := map[string]any{
		"organization-name": org,
		"date-range": map[string]string{
			"start-datetime": testReportBegin.Format(time.RFC3339),
			"end-datetime":   testReportBegin.Add(24*time.Hour - time.Second).Format(time.RFC3339),
		},
		"contact-info": "smtp-tls-reporting@" + strings.ToLower(org),
		"report-id":    reportID,
		"policies": []any{map[string]any{
			"policy": map[string]any{
				"policy-type":   "sts",
				"policy-string": []string{"version: STSv1", "mode: enforce", "mx: mx1." + domain, "max_age: 86400"},
				"policy-domain": domain,
				"mx-host":       []string{"mx1." + domain},
			},
			"summary": map[string]any{"total-successful-session-count": 970, "total-failure-session-count": 30},
			"failure-details": []any{map[string]any{
				"result-type":           "certificate-expired",
				"sending-mta-ip":        sendingIP,
				"receiving-mx-hostname": "mx1." + domain,
				"receiving-ip":          "198.51.100.25",
				"failed-session-count":  30,
			}},
		}},
	}
	data, err := json.Marshal(rep)
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return data
}

func gzipped(t testing.TB, data []byte) []byte {
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

func zipped(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// reportMail wraps a report file as its sender mails it: a multipart
// message with the file as a base64 attachment. contentType is the
// attachment's (application/gzip, application/zip, application/tlsrpt+gzip);
// a TLS report is a multipart/report; report-type=tlsrpt (RFC 8460 section
// 5.3).
func reportMail(messageID, from, subject, contentType, filename string, data []byte) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: %s", from)
	w("To: dmarc@sender.example")
	w("Subject: %s", subject)
	w("Date: Mon, 10 Jun 2024 03:12:00 +0000")
	w("Message-ID: <%s>", messageID)
	w("MIME-Version: 1.0")
	if strings.HasPrefix(contentType, "application/tlsrpt") {
		w("TLS-Report-Domain: sender.example")
		w("TLS-Report-Submitter: %s", from[strings.IndexByte(from, '@')+1:])
		w("Content-Type: multipart/report; report-type=tlsrpt; boundary=\"RB\"")
	} else {
		w("Content-Type: multipart/mixed; boundary=\"RB\"")
	}
	w("")
	w("--RB")
	w("Content-Type: text/plain; charset=us-ascii")
	w("")
	w("This is an aggregate report.")
	w("")
	w("--RB")
	w("Content-Type: %s; name=\"%s\"", contentType, filename)
	w("Content-Disposition: attachment; filename=\"%s\"", filename)
	w("Content-Transfer-Encoding: base64")
	w("")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		w("%s", enc[:76])
		enc = enc[76:]
	}
	w("%s", enc)
	w("--RB--")
	return []byte(b.String())
}

// zeroDeflate is a raw deflate stream (RFC 1951) of n MiB of zero bytes,
// built without compressing n MiB: one MiB is compressed with a sync
// flush (a non-final block), that block is repeated n times, and a final
// empty block ends the stream. crc is the CRC-32 of the output.
func zeroDeflate(t testing.TB, n int) (stream []byte, crc uint32) {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var blk bytes.Buffer
	fw, err := flate.NewWriter(&blk, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	chunk := blk.Bytes()
	var out bytes.Buffer
	for range n {
		out.Write(chunk)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	out.Write([]byte{0x03, 0x00}) // a final fixed-Huffman block holding only end-of-block
	return out.Bytes(), crc
}

// gzipBomb is a gzip file (RFC 1952) that inflates to n MiB of zero bytes
// from about n KiB.
func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	stream, crc := zeroDeflate(t, n)
	b := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	b = append(b, stream...)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return binary.LittleEndian.AppendUint32(b, uint32(n<<20))
}

// zipBomb is a zip file of one report-named member that inflates to n MiB
// of zero bytes.
func zipBomb(t testing.TB, n int) []byte {
	t.Helper()
	stream, crc := zeroDeflate(t, n)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "google.com!sender.example!1717891200!1717977599.xml", Method: zip.Deflate,
		CRC32: crc, CompressedSize64: uint64(len(stream)), UncompressedSize64: uint64(n) << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(stream); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
