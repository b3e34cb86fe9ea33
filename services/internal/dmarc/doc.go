// Package dmarc reads DMARC aggregate reports: the XML documents in which
// a mail receiver tells a domain owner what it saw of all the mail that
// carried the domain in its From header, per sending IP, and what it did
// with it.
//
// # The format
//
// A domain asks for aggregate reports with the rua= tag of its DMARC
// record (RFC 7489 section 7.2). Receivers send one report per reporting
// period (usually a day) as an XML document whose schema is RFC 7489
// appendix C:
//
//	<feedback>
//	  <version>                      (optional)
//	  <report_metadata>              who reports: org_name, email,
//	                                 extra_contact_info, report_id,
//	                                 date_range (begin, end: Unix seconds, UTC)
//	  <policy_published>             the DMARC record the receiver found:
//	                                 domain, adkim, aspf, p, sp, pct, fo
//	  <record>...                    one per (source IP, identifiers, results):
//	    <row>                        source_ip, count, policy_evaluated
//	                                 (disposition, dkim, spf: the aligned
//	                                 results; reason: type, comment)
//	    <identifiers>                header_from, envelope_from, envelope_to
//	    <auth_results>               the raw results: dkim (domain, selector,
//	                                 result, human_result)..., spf (domain,
//	                                 scope, result)...
//	</feedback>
//
// RFC 9990 (DMARCbis aggregate reporting) revises it: the document is in
// the namespace urn:ietf:params:xml:ns:dmarc-2.0, <policy_published> gains
// <np> (the policy for non-existent subdomains), <testing> (the t= tag, y
// or n) and <discovery_method> (psl or treewalk), loses <pct>, and the
// metadata gains <generator>. Older reports follow drafts of the schema
// (e.g. a dkim <human_result>), and many carry a namespace of their own.
//
// # Tolerance
//
// Reports are written by hundreds of programs and damaged in the ways the
// shared corpus shows, so Parse reads what it can:
//
//   - elements are matched by local name, in any namespace or none;
//   - bytes that are not valid UTF-8 are replaced with U+FFFD before
//     decoding (a document that declares another charset is converted
//     first), so one bad byte in a domain does not lose the report;
//   - text before the XML declaration (or before <feedback> when there is
//     none) and after </feedback> is ignored;
//   - values are trimmed; results, dispositions, policies, domains and
//     identifiers are lower-cased ("Pass" is "pass");
//   - a count written with a zero fraction ("3.0") is read, and an
//     IPv4-mapped IPv6 source address is the IPv4 address;
//   - a missing <pct> is 100 (RFC 7489 section 6.3; RFC 9990 has none);
//   - a report with no <record> is a report with no rows (it says the
//     receiver saw nothing); a record with empty fields is kept as it is.
//
// What Parse refuses, with an error that says which: input that is not
// XML (ErrNotXML), XML whose root is not <feedback> (ErrNoFeedback), a
// <feedback> without <report_metadata> (ErrNoMetadata), and numbers that
// are not numbers (a date, count or pct; ErrBadValue).
//
// # Where the documents come from
//
// Receivers mail the report to the rua= address, compressed (gzip as RFC
// 7489 section 7.2.1.1 asks, or zip; application/gzip and application/zip
// are registered by RFC 6713) and attached under the conventional name
//
//	receiver!policy-domain!begin!end[!unique].xml[.gz|.zip]
//
// Unwrapping the document from mail, gzip or zip, within size limits, is
// package reportfile's job; this package reads the XML.
//
// The package is pure: it reads the bytes it is given, has no clock, no
// I/O and no logging. Work is linear in the document's size (element
// nesting is bounded by MaxDepth).
package dmarc
