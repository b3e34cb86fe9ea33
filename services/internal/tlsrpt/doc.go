// Package tlsrpt reads SMTP TLS reports (RFC 8460): the JSON documents in
// which a sending organisation tells a receiving domain how many SMTP
// sessions it opened to the domain's MX hosts over a day, and how many of
// them failed to negotiate TLS under the domain's MTA-STS (RFC 8461) or
// DANE (RFC 7672) policy, and why.
//
// # The format
//
// A domain asks for reports with a _smtp._tls TXT record (RFC 8460 section
// 3). The report (section 4) is one JSON object:
//
//	{
//	  "organization-name": "Company-X",
//	  "date-range": {"start-datetime": RFC 3339, "end-datetime": RFC 3339},
//	  "contact-info": "sts-reporting@company-x.example",
//	  "report-id": "5065427c-...",
//	  "policies": [{
//	    "policy": {"policy-type": "sts" | "tlsa" | "no-policy-found",
//	               "policy-string": [...], "policy-domain": "company-y.example",
//	               "mx-host": [...]},
//	    "summary": {"total-successful-session-count": 5326,
//	                "total-failure-session-count": 303},
//	    "failure-details": [{"result-type": "certificate-expired",
//	                         "sending-mta-ip", "receiving-mx-hostname",
//	                         "receiving-mx-helo", "receiving-ip",
//	                         "failed-session-count", "additional-information",
//	                         "failure-reason-code"}, ...]
//	  }]
//	}
//
// It is sent (section 5) gzipped as application/tlsrpt+gzip or plain as
// application/tlsrpt+json, by mail in a multipart/report with
// report-type=tlsrpt or by HTTPS POST, under a file name of the form
// sender!policy-domain!begin-timestamp!end-timestamp[!unique-id].json[.gz].
// Unwrapping it from mail and gzip is package reportfile's job.
//
// # Tolerance
//
// "mx-host" is an array in the RFC's text and a string in its own example
// (and in reports from large senders); both are read, and so is
// "policy-string" as a lone string. Session counts are read from numbers
// with a zero fraction and from strings too ("7", 7.0). Dates that are
// RFC 3339 without a zone are taken as UTC. Policy type and domain are trimmed and
// lower-cased. Text before the JSON object and after it is ignored.
// Parse refuses a document that is not a JSON object (ErrNotJSON), one
// without "policies" (ErrNoPolicies), and a date or count that cannot be
// read or a member of the wrong type (ErrBadValue).
//
// The package is pure: no I/O, no clock, no logging. Work is linear in the
// document's size.
package tlsrpt
