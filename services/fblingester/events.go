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
