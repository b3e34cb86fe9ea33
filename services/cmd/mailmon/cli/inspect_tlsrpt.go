package cli

import (
	"context"
	"io"
	"time"

	"github.com/mailmon/mailmon/services/internal/reportfile"
	"github.com/mailmon/mailmon/services/internal/tlsrpt"
)

// tlsrptLine is what `mailmon inspect tlsrpt` prints per policy of an
// SMTP TLS report.
type tlsrptLine struct {
	// File is the name of the attachment or zip entry the report came in.
	File          string    `json:"file,omitempty"`
	ReportID      string    `json:"report_id"`
	Organization  string    `json:"organization"`
	ContactInfo   string    `json:"contact_info,omitempty"`
	Begin         time.Time `json:"begin"`
	End           time.Time `json:"end"`
	PolicyDomain  string    `json:"policy_domain"`
	PolicyType    string    `json:"policy_type"`
	PolicyStrings []string  `json:"policy_strings,omitempty"`
	MXHosts       []string  `json:"mx_hosts,omitempty"`
	Success       uint64    `json:"success"`
	Failure       uint64    `json:"failure"`
	// FailureDetails keep RFC 8460's field names.
	FailureDetails []tlsrptFailure `json:"failure_details"`
}

type tlsrptFailure struct {
	ResultType            string `json:"result-type"`
	SendingMTAIP          string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname   string `json:"receiving-mx-hostname,omitempty"`
	ReceivingMXHelo       string `json:"receiving-mx-helo,omitempty"`
	ReceivingIP           string `json:"receiving-ip,omitempty"`
	FailedSessions        uint64 `json:"failed-session-count"`
	AdditionalInformation string `json:"additional-information,omitempty"`
	FailureReasonCode     string `json:"failure-reason-code,omitempty"`
}

// inspectTLSRPT prints one JSON line per policy of the SMTP TLS reports in
// its input: a report mail, a gzip file or a bare JSON document, or an
// mbox of report mails (see inspectDMARC). An input that holds no
// readable TLS report is an error, with the reason.
func inspectTLSRPT(ctx context.Context, in io.Reader, out io.Writer) error {
	return printReports(ctx, in, out, reportfile.FormatTLSRPT, func(doc reportfile.Document, emit func(any) error) error {
		rep, err := tlsrpt.Parse(doc.Data)
		if err != nil {
			return err
		}
		for _, p := range rep.Policies {
			if err := emit(tlsrptLineOf(doc.Name, rep, p)); err != nil {
				return err
			}
		}
		return nil
	})
}

func tlsrptLineOf(file string, rep *tlsrpt.Report, p tlsrpt.Policy) tlsrptLine {
	l := tlsrptLine{
		File: file, ReportID: rep.ReportID, Organization: rep.Organization, ContactInfo: rep.ContactInfo,
		Begin: rep.Begin, End: rep.End,
		PolicyDomain: p.Domain, PolicyType: p.Type, PolicyStrings: p.Strings, MXHosts: p.MXHosts,
		Success: p.Success, Failure: p.Failure, FailureDetails: []tlsrptFailure{},
	}
	for _, f := range p.Failures {
		l.FailureDetails = append(l.FailureDetails, tlsrptFailure(f))
	}
	return l
}
