// Package rawmail reads mail messages the way report parsers need them:
// tolerant of everything real mail servers get wrong, and fast.
//
// Feedback reports (package arf) and bounces (package dsn) are written by
// thousands of different programs, many of them old, and they arrive as
// they were written. A strict parser (net/mail, mime/multipart) stops at the
// first broken line and loses the report. This package never fails: it
// returns whatever structure it could recognise, and the callers decide
// what is missing.
//
// What it does, and the RFCs it follows where the input lets it:
//
//   - Header blocks (RFC 5322 section 2.2): fields in order, folded lines
//     joined with one space, bare LF or CRLF, an mbox "From " line skipped,
//     a header that runs into its body without a blank line ended at the
//     first line that is not a field.
//   - MIME (RFC 2045, 2046): media type and parameters read by a lenient
//     parser (unquoted boundaries, stray semicolons, upper case), multipart
//     bodies split on their boundary lines even when the closing delimiter
//     is missing, base64 and quoted-printable bodies decoded while skipping
//     damage, and message/rfc822, message/global, text/rfc822-headers and
//     message/rfc822-headers parts parsed as the message (or header) they
//     carry. Nesting depth and part count are bounded, so hostile input
//     costs bounded work.
//   - Character sets: Part.Text converts a text body to UTF-8 with
//     github.com/emersion/go-message/charset (ISO-2022-JP, Shift_JIS,
//     KOI8-R, windows-125x and the rest), and DecodeHeader decodes RFC 2047
//     encoded words.
//   - Dates (ParseDate): RFC 5322 dates and the many broken forms reports
//     carry (named zones, missing seconds or zone, two-digit years, asctime,
//     ISO 8601, comments), returned in UTC.
//
// # Work
//
// Every function is linear in its input: a header block is read once,
// whatever follows it is not looked at (ParseHeader costs the header
// alone, so a caller may read one header block after another), a folded
// value is built once, and each MIME level reads its bytes a fixed number
// of times (header, transfer decoding, boundary search), so a message
// costs at most its size times its nesting depth.
//
// On top of that, ParseWith, ParseShallowWith, ParseHeaderWith and
// Part.FullWith charge their work to a Budget: bytes scanned, header and
// field lines, MIME parts and nesting depth, against Limits
// (DefaultLimits: 256 MiB scanned, 500,000 lines, MaxParts parts, MaxDepth
// levels; the largest report in the shared corpora uses under 1% of
// each). When a limit runs out, parsing stops and Budget.Err returns an
// error wrapping ErrBudgetExceeded that names the limit. The report
// parsers built on this package (arf, dsn) charge their own passes to the
// same budget and return that error; the fbl-ingester dead-letters such a
// message with the error as its reason. Work is counted, never timed:
// the package has no clock.
//
// The package is pure: no I/O beyond the bytes it is given, no logging, and
// it is safe for concurrent use.
package rawmail
