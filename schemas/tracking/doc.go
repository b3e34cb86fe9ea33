// Package tracking builds and verifies the X-Mailmon-Track header.
//
// # Why
//
// When a provider sends a complaint (an ARF feedback report) or a bounce
// about a message, it usually redacts the recipient and often rewrites or
// drops the Message-ID, so the report alone rarely says which customer sent
// the message or through which IP. The applications that send mail through
// the monitored MTAs therefore add one header to every message, and mailmon
// adds it to every probe. Reports quote the original headers, so the header
// comes back with the complaint or bounce and names the customer, the
// sending source and the message.
//
// Counting complaints against a customer can cut that customer off, so the
// header must not be forgeable: anyone can write a header into a message
// and get it reported back. The header is therefore signed with an
// HMAC-SHA256 key that only mailmon and the signing applications hold. A
// header that does not verify (tampered, foreign, signed with an unknown
// key, or too old) is rejected and counted, never trusted.
//
// # Format (version 1)
//
//	X-Mailmon-Track: v=1; k=2024-06; c=acme; s=192.0.2.10; m=0190f0c2-...; t=1718000000; h=<43 chars>
//
// The tags appear exactly once and in this order:
//
//	v  format version, "1"
//	k  id of the signing key: 1-32 of A-Z a-z 0-9 - _ .
//	c  customer (1-64 bytes)
//	s  sending source: IP address or source name (1-64 bytes)
//	m  message id, or probe id for a probe (1-128 bytes)
//	t  signing time, decimal seconds since 1970 (whole seconds)
//	h  HMAC-SHA256 over the signed text, base64url without padding
//
// c, s and m are UTF-8 without control characters, written with every byte
// outside A-Z a-z 0-9 - . _ ~ : @ / + percent-encoded as %XX with upper-case
// hex, and no other byte encoded. So ";", "=", "%", spaces and line breaks
// can never end a field or start a forged one, and each value has exactly
// one spelling.
//
// The signed text is the header from "v=" up to, not including, ";h=",
// with all whitespace removed:
//
//	v=1;k=2024-06;c=acme;s=192.0.2.10;m=0190f0c2-...;t=1718000000
//
// Whitespace (space, tab, CR, LF) anywhere in a received value is ignored,
// since MTAs fold long headers in transit and no field contains raw
// whitespace. A verifier needs only these rules, HMAC-SHA256 and base64url;
// testdata/vectors.json has test vectors for other implementations.
//
// # Keys
//
// Secrets are at least 32 random bytes. A Keyring signs with its Current
// key and verifies with Current and every Previous key, which is how keys
// are rotated without rejecting mail already in flight or complaints about
// it arriving weeks later. Key and Keyring never print their secrets.
package tracking
