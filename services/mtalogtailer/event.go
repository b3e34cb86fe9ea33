package mtalogtailer

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/postfixlog"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// eventID derives an event's id from where its line is: the file (by its
// content fingerprint), the line's offset and the recipient. Reading the
// line again — after a crash, from a rotated name, from a copytruncate copy
// — gives the same id, so JetStream's duplicate window and ClickHouse's
// deduplication on id drop the copy. The id is laid out as a UUIDv7 whose
// time is the log line's, so ids still sort by time.
func eventID(fileID string, offset int64, recipient string, t time.Time) string {
	h := sha256.New()
	h.Write([]byte("mailmon.delivery.attempted\x00"))
	h.Write([]byte(fileID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(offset, 10)))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(recipient)))
	sum := h.Sum(nil)

	var u uuid.UUID
	ms := max(t.UnixMilli(), 0)
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(ms))
	copy(u[0:6], ts[2:8])
	copy(u[6:], sum[:10])
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // RFC 9562 variant
	return u.String()
}

// trackResult is what a delivery's tracking header says once verified.
type trackResult struct {
	status string // schemas.Tracking*
	fields tracking.Fields
	err    error // why an invalid header was refused
}

// verifyTracking checks a logged header value with the keyring, at the
// log line's time (so reading an old log again decides the same way). A
// nil keyring cannot verify anything: a present header is then invalid.
func verifyTracking(track worker.Tracking, value string, at time.Time) trackResult {
	if strings.TrimSpace(value) == "" {
		return trackResult{status: schemas.TrackingMissing}
	}
	f, err := track.Verify(value, at)
	if err != nil {
		return trackResult{status: schemas.TrackingInvalid, err: err}
	}
	return trackResult{status: schemas.TrackingValid, fields: f}
}

// eventStatus maps a logged status to the event vocabulary; ok is false
// for statuses that are not delivery attempts (address-verification
// probes, Exim's suppressed deliveries).
func eventStatus(status string) (string, bool) {
	switch strings.ToLower(status) {
	case "sent", "delivered":
		return schemas.StatusSent, true
	case "deferred", "softbounce": // soft_bounce=yes turns bounces into deferrals
		return schemas.StatusDeferred, true
	case "bounced", "failed":
		return schemas.StatusBounced, true
	case "expired":
		return schemas.StatusExpired, true
	}
	return "", false
}

// domainOf returns the lower-cased domain of an address, "" if it has none.
func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
}

// millis converts logged seconds to milliseconds, -1 when not logged.
func millis(seconds float64) int64 {
	if seconds < 0 || math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return -1
	}
	return int64(math.Round(seconds * 1000))
}

func clampU32(n int64) uint32 {
	switch {
	case n <= 0:
		return 0
	case n > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(n)
}

func clampU16(n int) uint16 {
	switch {
	case n <= 0:
		return 0
	case n > math.MaxUint16:
		return math.MaxUint16
	}
	return uint16(n)
}

// applyContext copies what the log said about the message.
func applyContext(ev *schemas.DeliveryAttempted, c postfixlog.MessageContext) {
	ev.MessageID = c.MessageID
	ev.Sender = c.Sender
	ev.SizeBytes = clampU32(c.Size)
	ev.Nrcpt = clampU32(int64(c.Nrcpt))
	ev.ClientHost = c.ClientHost
	ev.ClientIP = c.ClientIP
	ev.SASLUsername = c.SASLUsername
}
