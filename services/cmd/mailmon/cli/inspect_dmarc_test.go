package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// inspectDMARCReport is a small hand-written aggregate report with two
// records, in the RFC 9990 namespace.
const inspectDMARCReport = `<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <report_metadata><org_name>receiver.example</org_name><email>agg@receiver.example</email><report_id>rpt-7</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
  <policy_published><domain>sender.example</domain><p>reject</p></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>5</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>
        <reason><type>forwarded</type></reason></policy_evaluated></row>
    <identifiers><header_from>sender.example</header_from><envelope_from>bounce.sender.example</envelope_from><envelope_to>rcpt.example</envelope_to></identifiers>
    <auth_results><dkim><domain>sender.example</domain><selector>s1</selector><result>pass</result></dkim>
      <spf><domain>bounce.sender.example</domain><scope>mfrom</scope><result>fail</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>203.0.113.9</source_ip><count>1</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>sender.example</header_from></identifiers>
    <auth_results><spf><domain>spoofer.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
`

const inspectTLSReport = `{"organization-name":"Sender Org","report-id":"tls-1","contact-info":"tls@sender.example",
 "date-range":{"start-datetime":"2025-03-01T00:00:00Z","end-datetime":"2025-03-01T23:59:59Z"},
 "policies":[{"policy":{"policy-type":"sts","policy-domain":"rcpt.example","mx-host":["mx.rcpt.example"]},
   "summary":{"total-successful-session-count":40,"total-failure-session-count":2},
   "failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.10","receiving-mx-hostname":"mx.rcpt.example","failed-session-count":2}]},
  {"policy":{"policy-type":"no-policy-found","policy-domain":"other.example"},
   "summary":{"total-successful-session-count":3,"total-failure-session-count":0}}]}`

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// reportMail is a report mail with the document attached, base64.
func reportMail(contentType, name string, body []byte) string {
	return "From: noreply@receiver.example\nTo: rua@sender.example\nSubject: Report Domain: sender.example\n" +
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nreport attached\n" +
		"--b\nContent-Type: " + contentType + "; name=\"" + name + "\"\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString(body) + "\n--b--\n"
}

// inspectFile writes content to a file named name and runs
// `mailmon inspect KIND file` on it.
func inspectFile(t *testing.T, kind, name string, content []byte) (code int, lines []map[string]any, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code = Main(context.Background(), []string{"inspect", kind, path}, &out, &errOut)
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, v)
	}
	return code, lines, errOut.String()
}

func TestInspectDMARCCommand(t *testing.T) {
	const zipName = "receiver.example!sender.example!1700000000!1700086399.xml.gz"
	mbox := "From MAILER-DAEMON Thu Apr 29 23:34:45 2021\n" + reportMail("application/gzip", zipName, gzipped(t, inspectDMARCReport)) +
		"\nFrom MAILER-DAEMON Thu Apr 29 23:34:45 2021\n" + reportMail("text/xml", "r.xml", []byte(inspectDMARCReport)) + "\n"
	tests := []struct {
		name, file string
		content    []byte
		lines      int
	}{
		{"bare XML", "r.xml", []byte(inspectDMARCReport), 2},
		{"gzip", "r.xml.gz", gzipped(t, inspectDMARCReport), 2},
		{"mail", "r.eml", []byte(reportMail("application/gzip", zipName, gzipped(t, inspectDMARCReport))), 2},
		{"mbox of two mails", "reports.mbox", []byte(mbox), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, lines, stderr := inspectFile(t, "dmarc", tt.file, tt.content)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if len(lines) != tt.lines {
				t.Fatalf("%d lines, want %d", len(lines), tt.lines)
			}
			first := lines[0]
			for k, want := range map[string]any{
				"report_id": "rpt-7", "org_name": "receiver.example", "begin": "2023-11-14T22:13:20Z", "end": "2023-11-15T22:13:19Z",
				"domain": "sender.example", "policy": "reject", "source_ip": "192.0.2.10", "count": 5.0,
				"disposition": "none", "dkim": "pass", "spf": "fail", "header_from": "sender.example",
				"envelope_from": "bounce.sender.example", "envelope_to": "rcpt.example",
			} {
				if first[k] != want {
					t.Errorf("%s = %v, want %v", k, first[k], want)
				}
			}
			wantAuth := map[string]any{
				"dkim": []any{map[string]any{"domain": "sender.example", "selector": "s1", "result": "pass"}},
				"spf":  []any{map[string]any{"domain": "bounce.sender.example", "scope": "mfrom", "result": "fail"}},
			}
			if !reflect.DeepEqual(first["auth_results"], wantAuth) {
				t.Errorf("auth_results = %v, want %v", first["auth_results"], wantAuth)
			}
			if !reflect.DeepEqual(first["override_reasons"], []any{"forwarded"}) {
				t.Errorf("override_reasons = %v", first["override_reasons"])
			}
			if second := lines[1]; second["source_ip"] != "203.0.113.9" || second["disposition"] != "reject" || second["count"] != 1.0 {
				t.Errorf("second line = %v", second)
			}
		})
	}
}

// TestInspectReportRefused: an input without a readable report of the
// kind asked for exits non-zero and says why.
func TestInspectReportRefused(t *testing.T) {
	tests := []struct {
		name, kind, file string
		content          []byte
		want             string // in the error output
	}{
		{"not XML", "dmarc", "r.xml", []byte("<feedback><report_metadata><email><x@y></email></report_metadata></feedback>"), "not XML"},
		{"no report_metadata", "dmarc", "r.xml", []byte("<feedback><record/></feedback>"), "no report_metadata"},
		{"a TLS report", "dmarc", "r.json", []byte(inspectTLSReport), "mailmon inspect tlsrpt"},
		{"a DMARC report", "tlsrpt", "r.xml", []byte(inspectDMARCReport), "mailmon inspect dmarc"},
		{"a mail with no report", "dmarc", "m.eml", []byte("From: a@b.example\nSubject: hello\n\nhi\n"), "no report found"},
		{"empty", "tlsrpt", "e.json", nil, "no report found"},
		{"JSON without policies", "tlsrpt", "r.json", []byte(`{"organization-name":"x"}`), "no report found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, lines, stderr := inspectFile(t, tt.kind, tt.file, tt.content)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d (%d lines)", code, exitFailure, len(lines))
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", stderr, tt.want)
			}
		})
	}
}
