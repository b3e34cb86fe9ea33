package suppression

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// maxEntryBytes bounds a stored value; an entry is a few hundred bytes.
const maxEntryBytes = 8 << 10

// maxReplyBytes bounds the reply text kept with a bounce entry.
const maxReplyBytes = 300

// Entry is the value stored under an entry's key: its suppression.added
// event without the header, plus the event's id and time.
type Entry struct {
	schemas.SuppressionTarget
	Reason         string    `json:"reason"`
	BounceReason   string    `json:"bounce_reason,omitempty"`
	BounceCategory string    `json:"bounce_category,omitempty"`
	Status         string    `json:"status,omitempty"`
	Reply          string    `json:"reply,omitempty"`
	SourceEventIDs []string  `json:"source_event_ids,omitempty"`
	Expires        time.Time `json:"expires,omitzero"`
	Operator       string    `json:"operator,omitempty"`
	Note           string    `json:"note,omitempty"`
	// AddedID and Created are the id and time of the suppression.added
	// event that made the entry.
	AddedID string    `json:"added_id"`
	Created time.Time `json:"created"`
}

// Active reports whether the entry counts at now.
func (e Entry) Active(now time.Time) bool { return e.Expires.IsZero() || now.Before(e.Expires) }

// Marshal encodes the entry as stored in the bucket.
func (e Entry) Marshal() []byte {
	b, _ := json.Marshal(e) // plain data: cannot fail
	return b
}

// Unmarshal decodes a stored entry and checks what the policy service
// relies on.
func Unmarshal(data []byte) (Entry, error) {
	if len(data) > maxEntryBytes {
		return Entry{}, fmt.Errorf("suppression entry of %d bytes, over %d", len(data), maxEntryBytes)
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("suppression entry: %w", err)
	}
	switch e.Scope {
	case schemas.SuppressCustomerRecipient, schemas.SuppressCustomerDomain:
		if e.Customer == "" {
			return Entry{}, fmt.Errorf("suppression entry: scope %s without a customer", e.Scope)
		}
	case schemas.SuppressGlobalRecipient:
	default:
		return Entry{}, fmt.Errorf("suppression entry: unknown scope %q", e.Scope)
	}
	if e.RecipientHash == "" || e.Key == "" {
		return Entry{}, fmt.Errorf("suppression entry: no key or recipient hash")
	}
	return e, nil
}

// Added is the suppression.added event of the entry (not yet stamped: the
// caller stamps it, then sets its id and time from the entry).
func (e Entry) Added() *schemas.SuppressionAdded {
	return &schemas.SuppressionAdded{
		SuppressionTarget: e.SuppressionTarget,
		Reason:            e.Reason, BounceReason: e.BounceReason, BounceCategory: e.BounceCategory,
		Status: e.Status, Reply: e.Reply, SourceEventIDs: e.SourceEventIDs,
		Expires: e.Expires, Operator: e.Operator, Note: e.Note,
	}
}

// Removed is the suppression.removed event of the entry ending at now for
// cause.
func (e Entry) Removed(cause string, now time.Time, sources []string, operator, note string) *schemas.SuppressionRemoved {
	held := now.Sub(e.Created)
	if held < 0 {
		held = 0
	}
	return &schemas.SuppressionRemoved{
		SuppressionTarget: e.SuppressionTarget,
		Cause:             cause, Reason: e.Reason, AddedID: e.AddedID, HeldMs: held.Milliseconds(),
		SourceEventIDs: sources, Operator: operator, Note: note,
	}
}

// NewEntry builds the entry for target: its key and digest from h, the
// address in clear only when h is not keyed.
func NewEntry(h Hasher, t Target, reason string, created, expires time.Time) Entry {
	digest := h.Digest(t.Value)
	e := Entry{
		SuppressionTarget: schemas.SuppressionTarget{
			Key:   KeyOf(t.Scope, t.Customer, digest),
			Scope: t.Scope, Customer: t.Customer, RecipientHash: digest, RecipientDomain: t.Domain,
		},
		Reason: reason, Created: created.UTC(), Expires: expires.UTC(),
	}
	if expires.IsZero() {
		e.Expires = time.Time{}
	}
	if !h.Keyed() {
		e.Recipient = t.Value
	}
	return e
}

// CutReply bounds a reply text kept in an entry.
func CutReply(s string) string {
	if len(s) > maxReplyBytes {
		return s[:maxReplyBytes]
	}
	return s
}
