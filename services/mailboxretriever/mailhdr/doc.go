// Package mailhdr reads what the mailbox-retriever needs from the header of
// a stored message, leniently, since seed mailboxes hold whatever anyone
// sends them and providers write their headers in their own ways.
//
// Parse splits a header block into fields in order, unfolding continuation
// lines and skipping lines that are not fields instead of failing on them.
//
// ParseAuthResults reads an Authentication-Results field (RFC 8601) the way
// providers write it rather than the way the RFC says: Microsoft omits the
// authserv-id and starts with "spf=pass", which strict parsers (go-msgauth's
// authres among them) reject; Gmail puts the DMARC policy in a comment
// ("dmarc=pass (p=NONE sp=NONE dis=NONE)"); Microsoft adds compauth with a
// reason code. Comments are kept per method, so such details survive.
//
// ReceivedHops counts Received fields; ReceivedTime reads the date after
// the last ";" of one (RFC 5321 4.4), which is when that hop took the
// message.
package mailhdr
