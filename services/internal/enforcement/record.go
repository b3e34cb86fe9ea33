package enforcement

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mailmon/mailmon/schemas"
)

// Record is one current decision, the value stored under its subject's key.
// It holds everything the decision event holds, so the event can be
// (re)published from the record alone.
type Record struct {
	// DecisionID is the id of the decision.cutoff or decision.reroute event.
	DecisionID string `json:"decision_id"`
	// Action is "cutoff" or "reroute".
	Action string `json:"action"`
	schemas.DecisionTarget
	schemas.DecisionTerm
	// DecidedAt is the decision's time, the time of its event.
	DecidedAt time.Time `json:"decided_at"`
	// PolicyAction and PolicyText are the Postfix answer for a cut-off,
	// e.g. "DEFER_IF_PERMIT" and "4.7.1 Sending suspended ...".
	PolicyAction string `json:"policy_action,omitempty"`
	PolicyText   string `json:"policy_text,omitempty"`
	// Transport is the Postfix transport of a reroute, e.g. "ndr".
	Transport string `json:"transport,omitempty"`
	// Summary is one line for a human, as the decision's alert says it.
	Summary string `json:"summary,omitempty"`
	// Severity is the severity of the decision's alert; its resolved
	// notice repeats it.
	Severity string `json:"severity,omitempty"`
	// Source is the worker and host that decided.
	Source   schemas.Source           `json:"source"`
	Evidence schemas.DecisionEvidence `json:"evidence"`
}

// SubjectOf returns the record's subject.
func (r Record) SubjectOf() Subject {
	return Subject{Scope: r.Scope, Customer: r.Customer, SourceIP: r.SourceIP, Provider: r.Provider}
}

// Active reports whether the decision is in force at now: it has not
// expired (a zero Until lasts until lifted).
func (r Record) Active(now time.Time) bool {
	return r.Until.IsZero() || now.Before(r.Until)
}

// Marshal encodes the record as stored in the bucket.
func (r Record) Marshal() []byte {
	b, _ := json.Marshal(r) // plain data: cannot fail
	return b
}

// Unmarshal decodes a stored record and checks it names its subject.
func Unmarshal(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("enforcement record: %w", err)
	}
	if !r.SubjectOf().Valid() || r.SubjectOf().String() != r.Subject {
		return Record{}, fmt.Errorf("enforcement record: subject %q does not match its scope fields", r.Subject)
	}
	if r.Action != schemas.ActionCutoff && r.Action != schemas.ActionReroute {
		return Record{}, fmt.Errorf("enforcement record %s: unknown action %q", r.Subject, r.Action)
	}
	return r, nil
}

// Event returns the decision event the record stands for.
func (r Record) Event() schemas.Event {
	h := schemas.Header{ID: r.DecisionID, Time: r.DecidedAt, Source: r.Source}
	if r.Action == schemas.ActionReroute {
		h.Type = schemas.TypeDecisionReroute
		return &schemas.DecisionReroute{Header: h, DecisionTarget: r.DecisionTarget, DecisionTerm: r.DecisionTerm, Transport: r.Transport, DecisionEvidence: r.Evidence}
	}
	h.Type = schemas.TypeDecisionCutoff
	return &schemas.DecisionCutoff{Header: h, DecisionTarget: r.DecisionTarget, DecisionTerm: r.DecisionTerm, PolicyAction: r.PolicyAction, PolicyText: r.PolicyText, DecisionEvidence: r.Evidence}
}

// FromEvent rebuilds a record from a decision.cutoff or decision.reroute
// event; ok is false for any other event.
func FromEvent(ev schemas.Event) (Record, bool) {
	switch e := ev.(type) {
	case *schemas.DecisionCutoff:
		return Record{DecisionID: e.ID, Action: schemas.ActionCutoff, DecisionTarget: e.DecisionTarget, DecisionTerm: e.DecisionTerm,
			DecidedAt: e.Time, PolicyAction: e.PolicyAction, PolicyText: e.PolicyText, Source: e.Source, Evidence: e.DecisionEvidence}, true
	case *schemas.DecisionReroute:
		return Record{DecisionID: e.ID, Action: schemas.ActionReroute, DecisionTarget: e.DecisionTarget, DecisionTerm: e.DecisionTerm,
			DecidedAt: e.Time, Transport: e.Transport, Source: e.Source, Evidence: e.DecisionEvidence}, true
	}
	return Record{}, false
}

// Ended describes the record as a decision that stopped at end.
func (r Record) Ended(end time.Time) schemas.EndedDecision {
	return schemas.EndedDecision{
		DecisionID:     r.DecisionID,
		Action:         r.Action,
		DecisionTarget: r.DecisionTarget,
		Rule:           r.Rule,
		Offence:        r.Offence,
		DecidedAt:      r.DecidedAt,
		HeldMs:         end.Sub(r.DecidedAt).Milliseconds(),
	}
}

// DedupeKey is the alert dedupe key of a decision on subject: the firing
// alert of the decision and its resolved notice share it.
func DedupeKey(subject string) string { return "enforcement/" + subject }

// StableID derives an event id from seed: a UUIDv7 whose time part is t
// (so ids still sort by time) and whose other bits are a hash of seed.
// The same seed and time give the same id, so an event republished after
// a crash, or by a second copy of a worker, is dropped by the stream's
// duplicate window instead of being stored twice.
func StableID(t time.Time, seed ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(seed, "\x00")))
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[0:6], ts[2:8])
	copy(u[6:], sum[:10])
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 4122 variant
	return u.String()
}

// ValidTransport reports whether s can be a Postfix master.cf service
// name, the transport a reroute record names: letters, digits, '-', '_'
// and '.', at most 64 bytes. Anything else could smuggle a next hop or a
// second action into the FILTER answer.
func ValidTransport(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
