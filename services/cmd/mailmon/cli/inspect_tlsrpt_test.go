package cli

import (
	"reflect"
	"testing"
)

func TestInspectTLSRPTCommand(t *testing.T) {
	tests := []struct {
		name, file string
		content    []byte
	}{
		{"bare JSON", "r.json", []byte(inspectTLSReport)},
		{"gzip", "r.json.gz", gzipped(t, inspectTLSReport)},
		{"mail", "r.eml", []byte(reportMail("application/tlsrpt+gzip", "sender.example!rcpt.example!1!2.json.gz", gzipped(t, inspectTLSReport)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, lines, stderr := inspectFile(t, "tlsrpt", tt.file, tt.content)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if len(lines) != 2 {
				t.Fatalf("%d lines, want 2", len(lines))
			}
			first := lines[0]
			for k, want := range map[string]any{
				"report_id": "tls-1", "organization": "Sender Org", "policy_domain": "rcpt.example", "policy_type": "sts",
				"success": 40.0, "failure": 2.0, "begin": "2025-03-01T00:00:00Z",
			} {
				if first[k] != want {
					t.Errorf("%s = %v, want %v", k, first[k], want)
				}
			}
			wantDetails := []any{map[string]any{
				"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10",
				"receiving-mx-hostname": "mx.rcpt.example", "failed-session-count": 2.0,
			}}
			if !reflect.DeepEqual(first["failure_details"], wantDetails) {
				t.Errorf("failure_details = %v, want %v", first["failure_details"], wantDetails)
			}
			if second := lines[1]; second["policy_type"] != "no-policy-found" || second["success"] != 3.0 || !reflect.DeepEqual(second["failure_details"], []any{}) {
				t.Errorf("second line = %v", second)
			}
		})
	}
}
