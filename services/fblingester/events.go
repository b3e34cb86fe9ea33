package fblingester

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// maxExcerpt is the evidence kept of an original's header (the schema's
// headers_excerpt limit).
const maxExcerpt = 4096

// identity names one received message independently of how it reached us:
// its Message-ID, else a hash of its body (the body is what a relay leaves
// alone; it adds Received lines to the header). A report delivered again
// (an SMTP retry after a 451, the same mail pulled twice, a file imported
// again) has the same identity, so its events have the same ids and
// JetStream's duplicate window, the evaluator and ClickHouse drop the copy.
type identity struct {
	key  string
	date time.Time // the message's Date, for the time part of event ids
}

func identify(raw []byte) identity {
	hdr, body := rawmail.ParseHeader(raw)
	var id identity
	if mid := strings.ToLower(arf.StripAngle(hdr.Get("Message-ID"))); mid != "" {
		id.key = "mid:" + mid
	} else {
		sum := sha256.Sum256(body)
		id.key = "body:" + hex.EncodeToString(sum[:])
	}
	if d, ok := rawmail.ParseDate(hdr.Get("Date")); ok && d.Year() >= 1970 && d.Year() < 2100 {
		id.date = d
	}
	return id
}

// complaintIdentity names the complaint a report makes, not the report:
// the same complaint reported twice (a new report Message-ID, another
// input, a copy forwarded by hand) has the same identity, so one event.
// What identifies it, best first: our verified tracking id; else the
// original's Message-ID with the complaining recipient; else the
// original's header with the recipient; else, with nothing of the original
// returned, the report's body (never its Message-ID, which every resend
// renews). The feedback type is part of it (a recipient's abuse and later
// not-spam are two facts), and so is whether the report is trusted: a
// forged report about a message, sent first, must not take the id of the
// genuine one and have it dropped as its duplicate.
//
// The time part is when the provider received the original (Arrival-Date),
// else the original's Date, else the report's, the first that is
// plausible: a resend then makes the same ClickHouse row too.
func complaintIdentity(raw []byte, rep *arf.Report, t traced, ft string, trusted bool, now time.Time) identity {
	var key strings.Builder
	rcpt := complainingRecipient(rep)
	switch {
	case t.trackingID != "":
		key.WriteString("track:" + strings.ToLower(t.trackingID))
	case rep.Original != nil && arf.StripAngle(rep.Original.MessageID) != "":
		key.WriteString("orig:" + strings.ToLower(arf.StripAngle(rep.Original.MessageID)) + "\x00rcpt:" + rcpt)
	case rep.Original != nil && len(rep.Original.Header) > 0:
		sum := sha256.Sum256([]byte(excerpt(rep.Original.Header)))
		key.WriteString("orighdr:" + hex.EncodeToString(sum[:]) + "\x00rcpt:" + rcpt)
	default:
		_, body := rawmail.ParseHeader(raw)
		sum := sha256.Sum256(body)
		key.WriteString("body:" + hex.EncodeToString(sum[:]))
	}
	key.WriteString("\x00ft:" + ft)
	if trusted {
		key.WriteString("\x00trusted")
	}
	id := identity{key: key.String()}
	var candidates []time.Time
	candidates = append(candidates, rep.ArrivalDate)
	if rep.Original != nil {
		if d, ok := rawmail.ParseDate(rep.Original.Date); ok {
			candidates = append(candidates, d)
		}
	}
	candidates = append(candidates, rep.ReportDate)
	for _, d := range candidates {
		if plausible(d, now) {
			id.date = d
			break
		}
	}
	return id
}

// complainingRecipient is the recipient a report is about, lower-cased:
// Original-Rcpt-To, else JMRP's original recipient, else the original's
// To ("" when none is given).
func complainingRecipient(rep *arf.Report) string {
	for _, r := range rep.OriginalRcptTo {
		if r = arf.StripAngle(r); r != "" {
			return strings.ToLower(r)
		}
	}
	if r := arf.StripAngle(rep.JMRPOriginalRecipient); r != "" {
		return strings.ToLower(r)
	}
	if rep.Original != nil {
		return strings.ToLower(strings.TrimSpace(rep.Original.To))
	}
	return ""
}

// eventID derives an event's id from the message identity, the event type
// and a part (the recipient of a bounce). It is laid out as a UUIDv7 whose
// time is the message's Date, so ids still roughly sort by time and pass
// the contract's UUID check.
func eventID(id identity, typ, part string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(id.key))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(part)))
	sum := h.Sum(nil)
	var u uuid.UUID
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(max(id.date.UnixMilli(), 0)))
	copy(u[0:6], ts[2:8])
	copy(u[6:], sum[:10])
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // RFC 9562 variant
	return u.String()
}

// deadLetterID names the dead-letter copy of a message the same way, so a
// message dead-lettered again is stored once.
func deadLetterID(id identity) string {
	sum := sha256.Sum256([]byte(id.key))
	return "dlq." + WorkerName + "." + hex.EncodeToString(sum[:16])
}

// excerpt renders the start of a header block as evidence: one line per
// field, cut at a field boundary to at most maxExcerpt bytes.
func excerpt(h rawmail.Header) string {
	var b strings.Builder
	for _, f := range h {
		line := f.Name + ": " + f.Value
		if b.Len() > 0 {
			line = "\r\n" + line
		}
		if b.Len()+len(line) > maxExcerpt {
			if b.Len() == 0 { // one huge field: keep its start
				line = strings.ToValidUTF8(line[:maxExcerpt], "")
				b.WriteString(line)
			}
			break
		}
		b.WriteString(line)
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// storableTime drops dates ClickHouse's DateTime cannot hold (a broken
// Arrival-Date must not make the whole event invalid).
func storableTime(t time.Time) time.Time {
	if t.IsZero() || t.Year() < 1971 || t.Year() > 2105 {
		return time.Time{}
	}
	return t.UTC()
}

func domainOf(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.TrimRight(addr[i+1:], ".>"))
	}
	return ""
}
