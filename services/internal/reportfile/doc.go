// Package reportfile finds the report documents in what a reporter sends:
// a mail with the report attached, a compressed file, or the bare
// document. It is the unwrapping step in front of the DMARC aggregate
// report parser (package dmarc) and the SMTP TLS report parser (package
// tlsrpt).
//
// # How reports travel
//
// DMARC aggregate reports (RFC 7489 section 7.2 and appendix C; revised
// by RFC 9990) are XML documents that a receiver mails to the address in
// the domain's rua= tag. The XML is almost always compressed: RFC 7489
// section 7.2.1.1 asks for gzip, and many receivers send zip instead. The
// attachment is named by convention
//
//	receiver!policy-domain!begin!end[!unique].xml[.gz|.zip]
//
// (e.g. google.com!example.com!1718236800!1718323199.zip) and its media
// type is one of application/gzip, application/zip (both registered by RFC
// 6713), their pre-registration aliases application/x-gzip and
// application/x-zip-compressed, text/xml or application/xml for an
// uncompressed report, and, from careless senders,
// application/octet-stream with one of the names above.
//
// SMTP TLS reports (RFC 8460) are JSON documents, mailed (section 5.3) as
// application/tlsrpt+gzip or application/tlsrpt+json inside a
// multipart/report; report-type=tlsrpt message, and named by convention
// sender!policy-domain!begin!end[!unique].json[.gz]. They may also be
// posted over HTTPS, which is how a bare or gzipped JSON file arrives.
//
// # What Extract does
//
// Extract takes the input as it came (a message, a gzip file, a zip file,
// or a bare XML or JSON document) and returns the documents in it that are
// reports. Inside a message it walks the MIME tree with package rawmail
// (which removes the transfer encodings) and takes the parts whose media
// type says report, or whose name does, or whose bytes do (the gzip magic
// 1f 8b, the zip local header PK\x03\x04, an XML <feedback> root, a JSON
// object with "policies"). A gzip stream with bytes after its first member
// (seen in real reports) is read up to the end of that member.
//
// A document is a DMARC report when it is XML with a <feedback> root
// element (in any namespace: RFC 7489 reports have none, RFC 9990 ones
// urn:ietf:params:xml:ns:dmarc-2.0), and a TLS report when it is a JSON
// object with a "policies" member. Anything else in an archive is left
// out.
//
// # Hostile input
//
// A report arrives from anyone on the Internet, and a compressed file is
// the classic way to make a small input cost a lot of memory (a zip or
// gzip bomb: a few kilobytes that inflate to gigabytes). Every
// decompressor is read through an io.LimitReader, so memory stays bounded
// by Limits whatever the input says about itself: the decompressed size of
// one document (MaxDocument) and of all together (MaxTotal), the ratio of
// decompressed to compressed size (MaxRatio), the number of zip entries and
// documents (MaxDocuments) and the raw input size (MaxInput). Archives may
// nest two deep (a gzip inside a zip is fine; anything deeper is refused).
// Running into any of these gives an error wrapping ErrLimit, which the
// caller treats as a dead letter. Work is linear in the bytes read.
//
// The package is pure: no I/O beyond the bytes it is given, no clock, no
// logging; it is safe for concurrent use.
package reportfile
