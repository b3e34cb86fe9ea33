package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// Bucket is the KV bucket that holds what each route was told about each
// alert fingerprint (pipelines/topology.yaml declares it).
const Bucket = "notifier_state"

// maxMembers bounds the member set kept per fingerprint and route; an
// alert naming more members than this is judged on the first ones, sorted.
const maxMembers = 256

// fingerprintOf names the condition an alert is about: its rule and its
// dedupe key (its subject when the key is empty). Raisers put everything
// that sets one condition apart in the dedupe key (the evaluator's rules:
// subject, and the provider, check or finding key), so two providers'
// rejection bursts are two conditions, each with its own firing and
// resolution. Zones are members of one condition (see membersOf).
func fingerprintOf(a *schemas.AlertRaised) string {
	key := a.DedupeKey
	if key == "" {
		key = a.Subject
	}
	return a.Rule + "|" + key
}

// providerOf is the provider an alert is about: its provider field, else
// its "provider" evidence.
func providerOf(a *schemas.AlertRaised) string {
	if a.Provider != "" {
		return a.Provider
	}
	return evidence(a, "provider")
}

// membersOf lists the members of a condition that one alert names: the
// zones listing one target (the comma-separated "zones" evidence, and the
// "zone" evidence of the listing that raised the alert) and the providers
// a condition spans (the "providers" evidence, e.g. the providers whose
// probes from one source IP are missing), as "zone:NAME" and
// "provider:NAME", sorted, without repeats, at most maxMembers.
func membersOf(a *schemas.AlertRaised) []string {
	var out []string
	for _, kind := range []struct{ evidence, prefix string }{{"zones", "zone:"}, {"zone", "zone:"}, {"providers", "provider:"}} {
		for m := range strings.SplitSeq(evidence(a, kind.evidence), ",") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, kind.prefix+m)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), maxMembers)]
}

// evidence is the value of the first evidence figure called name.
func evidence(a *schemas.AlertRaised, name string) string {
	for i, n := range a.EvidenceNames {
		if n == name && i < len(a.EvidenceValues) {
			return a.EvidenceValues[i]
		}
	}
	return ""
}

// routeState is what one route was last told about one fingerprint.
type routeState struct {
	// Status is the status last notified: firing or resolved; empty when
	// nothing was notified yet.
	Status string `json:"status,omitempty"`
	// Severity is the severity last notified.
	Severity string `json:"severity,omitempty"`
	// Members are the members notified while the condition fires; a
	// member outside them is news.
	Members []string `json:"members,omitempty"`
	// NotifiedAt is the notifier's clock when the route took the last
	// notification: a repeat is due repeat_interval later.
	NotifiedAt time.Time `json:"notified_at,omitzero"`
	// AlertID and AlertTime are the id and time of the last alert the
	// route took: a redelivered copy is recognised by its id, an older
	// alert by its time.
	AlertID   string    `json:"alert_id,omitempty"`
	AlertTime time.Time `json:"alert_time,omitzero"`
	// Held is a resolution that came while the route had no firing of
	// this fingerprint: it is not news by itself, but if the firing it
	// ends turns up later (a redelivery after a route outage), both go
	// out together, so the route never keeps a firing alert that ended.
	Held *schemas.AlertRaised `json:"held,omitempty"`
}

// Reasons a route is, or is not, notified of an alert.
const (
	reasonFirst     = "first"      // first firing, or firing again after a resolution
	reasonSeverity  = "severity"   // the severity changed, either way
	reasonMember    = "member"     // a member joined
	reasonRepeat    = "repeat_due" // unchanged, repeat_interval after the last notification
	reasonResolved  = "resolved"   // the notified firing ended
	reasonLate      = "late"       // a firing whose resolution was held: both go out
	reasonDuplicate = "duplicate"  // the alert the route took last, delivered again
	reasonUnchanged = "repeat"     // unchanged within repeat_interval
	reasonStale     = "stale"      // older than what the route was told since
	reasonHeld      = "held"       // a resolution of a firing never notified
)

// next decides what the route is told of alert a given what it was told
// so far: the state after, the alerts to send (none, a, or a and the held
// resolution) and the reason. The state after is written only once the
// route took the alerts.
func (rs routeState) next(a *schemas.AlertRaised, now time.Time, repeatInterval time.Duration) (routeState, []*schemas.AlertRaised, string) {
	if a.ID == rs.AlertID || (rs.Held != nil && a.ID == rs.Held.ID) {
		return rs, nil, reasonDuplicate
	}
	if a.Status == schemas.AlertResolved {
		if rs.Status != schemas.AlertFiring {
			if rs.Held != nil && !a.Time.After(rs.Held.Time) {
				return rs, nil, reasonStale
			}
			rs.Held = heldCopy(a)
			return rs, nil, reasonHeld
		}
		if a.Time.Before(rs.AlertTime) {
			return rs, nil, reasonStale // the condition fired again after this resolution
		}
		return routeState{Status: schemas.AlertResolved, Severity: a.Severity, NotifiedAt: now, AlertID: a.ID, AlertTime: a.Time}, []*schemas.AlertRaised{a}, reasonResolved
	}

	if h := rs.Held; h != nil && h.Time.After(a.Time) && !a.Time.Before(rs.AlertTime) {
		// The firing ended before the route heard of it: tell both.
		return routeState{Status: schemas.AlertResolved, Severity: h.Severity, NotifiedAt: now, AlertID: h.ID, AlertTime: h.Time},
			[]*schemas.AlertRaised{a, h}, reasonLate
	}
	if a.Time.Before(rs.AlertTime) {
		return rs, nil, reasonStale
	}
	members := membersOf(a)
	after := routeState{Status: schemas.AlertFiring, Severity: a.Severity, Members: members, NotifiedAt: now, AlertID: a.ID, AlertTime: a.Time}
	var reason string
	switch {
	case rs.Status != schemas.AlertFiring:
		reason = reasonFirst
	case rs.Severity != a.Severity:
		reason = reasonSeverity
	case hasNew(rs.Members, members):
		reason = reasonMember
	case now.Sub(rs.NotifiedAt) >= repeatInterval:
		reason = reasonRepeat
	default:
		return rs, nil, reasonUnchanged
	}
	if rs.Status == schemas.AlertFiring {
		// Members accumulate while the condition fires: one that leaves
		// and comes back is not news again until a resolution.
		after.Members = union(rs.Members, members)
	}
	return after, []*schemas.AlertRaised{a}, reason
}

// maxHeldIDs and maxHeldText bound the copy of a held resolution kept in
// the state: one per route, so an entry stays far below a KV value's limit
// whatever the alert carried.
const (
	maxHeldIDs  = 10
	maxHeldText = 2048
)

// heldCopy is a resolution as the state keeps it: its sample ids, evidence
// and summary cut to a bound.
func heldCopy(a *schemas.AlertRaised) *schemas.AlertRaised {
	h := *a
	h.EventIDs = h.EventIDs[:min(len(h.EventIDs), maxHeldIDs)]
	h.Summary = cutText(h.Summary, maxHeldText)
	n := min(len(h.EvidenceNames), len(h.EvidenceValues), 32)
	h.EvidenceNames, h.EvidenceValues = make([]string, n), make([]string, n)
	for i := range n {
		h.EvidenceNames[i], h.EvidenceValues[i] = cutText(a.EvidenceNames[i], 128), cutText(a.EvidenceValues[i], maxHeldText)
	}
	return &h
}

// cutText cuts s to at most max bytes, on a rune boundary.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// hasNew reports whether sorted set b has an element sorted set a lacks.
func hasNew(a, b []string) bool {
	for _, m := range b {
		if _, found := slices.BinarySearch(a, m); !found {
			return true
		}
	}
	return false
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), maxMembers)]
}

// record is one fingerprint's entry in the bucket: per route, what it was
// told.
type record struct {
	Fingerprint string                `json:"fingerprint"`
	Routes      map[string]routeState `json:"routes"`
	// revision is the entry's KV revision when read, 0 when new: the write
	// succeeds only if no one wrote in between.
	revision uint64
}

// stateKey is the bucket key of a fingerprint: a hash, since rules and
// subjects may hold characters a key may not.
func stateKey(fingerprint string) string {
	sum := sha256.Sum256([]byte(fingerprint))
	return "fp." + hex.EncodeToString(sum[:16])
}

// store reads and writes records in the bucket.
type store struct {
	kv jetstream.KeyValue
}

func (s store) load(ctx context.Context, fingerprint string) (*record, error) {
	entry, err := s.kv.Get(ctx, stateKey(fingerprint))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return &record{Fingerprint: fingerprint, Routes: map[string]routeState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notification state: %w", err)
	}
	rec := &record{}
	if err := json.Unmarshal(entry.Value(), rec); err != nil || rec.Fingerprint != fingerprint {
		// An unreadable entry (or a hash collision) is replaced: the
		// worst that follows is one repeated notification.
		rec = &record{Fingerprint: fingerprint}
	}
	if rec.Routes == nil {
		rec.Routes = map[string]routeState{}
	}
	rec.revision = entry.Revision()
	return rec, nil
}

// save writes rec if the entry is still at the revision it was read at.
func (s store) save(ctx context.Context, rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode notification state: %w", err)
	}
	key := stateKey(rec.Fingerprint)
	var rev uint64
	if rec.revision == 0 {
		rev, err = s.kv.Create(ctx, key, data)
	} else {
		rev, err = s.kv.Update(ctx, key, data, rec.revision)
	}
	if err != nil {
		return fmt.Errorf("write notification state: %w", err)
	}
	rec.revision = rev
	return nil
}
