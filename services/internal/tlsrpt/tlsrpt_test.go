package tlsrpt

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// reportArrays is a small hand-written report with "mx-host" and
// "policy-string" as arrays, as RFC 8460 section 4.4 describes them.
const reportArrays = `{
  "organization-name": "Sender Org",
  "date-range": {"start-datetime": "2025-03-01T00:00:00Z", "end-datetime": "2025-03-01T23:59:59Z"},
  "contact-info": "tlsrpt@sender.example",
  "report-id": "2025-03-01-a",
  "policies": [
    {"policy": {"policy-type": "STS", "policy-string": ["version: STSv1", "mode: enforce"],
                "policy-domain": "Rcpt.Example", "mx-host": ["mx1.rcpt.example", "*.mx.rcpt.example"]},
     "summary": {"total-successful-session-count": 90, "total-failure-session-count": 10},
     "failure-details": [
       {"result-type": "certificate-host-mismatch", "sending-mta-ip": "192.0.2.25",
        "receiving-mx-hostname": "MX1.rcpt.example", "receiving-mx-helo": "mx1", "receiving-ip": "203.0.113.5",
        "failed-session-count": 10, "additional-information": "https://sender.example/x", "failure-reason-code": "X509_ERR"}
     ]},
    {"policy": {"policy-type": "no-policy-found", "policy-domain": "other.example"},
     "summary": {"total-successful-session-count": 7, "total-failure-session-count": 0}}
  ]
}`

var wantArrays = &Report{
	Organization: "Sender Org", ContactInfo: "tlsrpt@sender.example", ReportID: "2025-03-01-a",
	Begin: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 3, 1, 23, 59, 59, 0, time.UTC),
	Policies: []Policy{
		{
			Type: "sts", Domain: "rcpt.example", Strings: []string{"version: STSv1", "mode: enforce"},
			MXHosts: []string{"mx1.rcpt.example", "*.mx.rcpt.example"}, Success: 90, Failure: 10,
			Failures: []Failure{{
				ResultType: "certificate-host-mismatch", SendingMTAIP: "192.0.2.25", ReceivingMXHostname: "mx1.rcpt.example",
				ReceivingMXHelo: "mx1", ReceivingIP: "203.0.113.5", FailedSessions: 10,
				AdditionalInformation: "https://sender.example/x", FailureReasonCode: "X509_ERR",
			}},
		},
		{Type: "no-policy-found", Domain: "other.example", Success: 7},
	},
}

// reportStrings has "mx-host" and "policy-string" as lone strings and a
// date with an offset.
const reportStrings = `{"organization-name":"o","report-id":"r",
 "date-range":{"start-datetime":"2025-03-01T01:00:00+01:00","end-datetime":"2025-03-01T23:59:59"},
 "policies":[{"policy":{"policy-type":"tlsa","policy-string":"3 1 1 abcd","policy-domain":"d.example","mx-host":"mx.d.example"},
   "summary":{"total-successful-session-count":1,"total-failure-session-count":2}}]}`

var wantStrings = &Report{
	Organization: "o", ReportID: "r",
	Begin: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 3, 1, 23, 59, 59, 0, time.UTC),
	Policies: []Policy{{Type: "tlsa", Domain: "d.example", Strings: []string{"3 1 1 abcd"}, MXHosts: []string{"mx.d.example"}, Success: 1, Failure: 2}},
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Report
	}{
		{"arrays", reportArrays, wantArrays},
		{"lone strings", reportStrings, wantStrings},
		{"junk around", "\xef\xbb\xbfjunk " + reportArrays + "\n}}trailing", wantArrays},
		{"counts as strings and with a zero fraction", `{"policies":[{"policy":{"policy-domain":"d.example"},"summary":{"total-successful-session-count":"7","total-failure-session-count":2.0},"failure-details":[{"failed-session-count":" 2 "}]}]}`,
			&Report{Policies: []Policy{{Domain: "d.example", Success: 7, Failure: 2, Failures: []Failure{{FailedSessions: 2}}}}}},
		{"no policies in the array", `{"organization-name":"o","policies":[]}`, &Report{Organization: "o", Policies: []Policy{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"empty", "", ErrNotJSON},
		{"XML", "<feedback></feedback>", ErrNotJSON},
		{"truncated", `{"policies":[{"policy":`, ErrNotJSON},
		{"negative count", `{"policies":[{"summary":{"total-successful-session-count":-1}}]}`, ErrBadValue},
		{"fractional count", `{"policies":[{"summary":{"total-successful-session-count":1.5}}]}`, ErrBadValue},
		{"policies not an array", `{"policies":{"policy":{}}}`, ErrBadValue},
		{"no policies", `{"organization-name":"o","report-id":"r"}`, ErrNoPolicies},
		{"null policies", `{"policies":null}`, ErrNoPolicies},
		{"bad date", `{"date-range":{"start-datetime":"yesterday"},"policies":[]}`, ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.doc))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if r != nil {
				t.Errorf("a report with the error: %+v", r)
			}
		})
	}
}
