package dnssweeper

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// Bucket is the KV bucket (declared in pipelines/topology.yaml) that holds
// the sweeper's state. Keys:
//
//	ip/<address>/<zone>   a (target, zone) pair that is listed or failing;
//	domain/<name>/<zone>  IPv6 colons are written as "-"
//	zone/<zone>           the zone's self-test state
//	sweep/last            what the last complete sweep covered
//	sweep/current         the sweep in progress (its id and start)
//	seen/<address>        a sending IP learnt from delivery events
//
// "/" separates the parts because no address, domain or zone contains it.
//
// The state is sparse: a pair has a record only while it is listed or its
// checks fail. A pair that sweep/last covered (its target was swept and its
// zone passed the self-test) and that has no record was not listed then.
// Storing every clean pair would cost one write per address per zone on
// the first sweep of a /16 and buy nothing a reader needs: the listings
// are the records.
const Bucket = "dnsbl_state"

// Record states. A record's State is the last trustworthy answer; an error
// does not change it (a listing seen before a timeout is still a listing),
// it only sets ErrorCause until a trustworthy answer arrives again.
const (
	stateListed = "listed"
	stateClean  = "clean"
)

const lastSweepKey = "sweep/last"

// currentSweepKey names the sweep in progress, or the one a leader left
// unfinished: the next leader finishes it under the same id.
const currentSweepKey = "sweep/current"

// record is the state of one listed or failing (target, zone) pair.
type record struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Zone   string `json:"zone"`
	// State is "listed", "clean" (the pair was clean before its checks
	// started failing), or "" (no trustworthy answer yet).
	State       string    `json:"state,omitempty"`
	Codes       []string  `json:"codes,omitempty"`
	Meanings    []string  `json:"meanings,omitempty"`
	TXT         string    `json:"txt,omitempty"`
	ListedSince time.Time `json:"listed_since,omitzero"`
	// ErrorCause and ErrorCode describe the failure of the latest check,
	// while it lasts.
	ErrorCause string `json:"error_cause,omitempty"`
	ErrorCode  string `json:"error_code,omitempty"`
	// Changed is when the record last changed; SweepID the sweep that
	// changed it.
	Changed time.Time `json:"changed"`
	SweepID string    `json:"sweep_id,omitempty"`
}

// zoneRecord is a zone's self-test state.
type zoneRecord struct {
	Zone string `json:"zone"`
	// State is schemas.ZoneOK or schemas.ZoneUnknown.
	State   string    `json:"state"`
	Detail  string    `json:"detail,omitempty"`
	Changed time.Time `json:"changed"`
}

// lastSweep says what the last complete sweep covered: its static targets
// as configured, the time it started (seen IPs first seen before it were
// in it too), and the zones that passed their self-test.
type lastSweep struct {
	SweepID string    `json:"sweep_id"`
	Started time.Time `json:"started"`
	IPs     []string  `json:"ips,omitempty"`
	CIDRs   []string  `json:"cidrs,omitempty"`
	Domains []string  `json:"domains,omitempty"`
	ZonesOK []string  `json:"zones_ok,omitempty"`
	// SeenCapped: max_targets left some seen IPs out of the sweep, so a
	// seen IP's coverage is not known.
	SeenCapped bool `json:"seen_capped,omitempty"`
}

// seenRecord is a sending IP learnt from delivery events.
type seenRecord struct {
	IP        string    `json:"ip"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// pairKey identifies a (target, zone) pair in memory without building its
// KV key.
type pairKey struct {
	target dnsbl.Target
	zone   string
}

// encodeTarget makes a target usable as one part of a KV key.
func encodeTarget(t dnsbl.Target) string {
	if t.Kind == dnsbl.KindIP {
		return "ip/" + strings.ReplaceAll(t.IP.String(), ":", "-")
	}
	return "domain/" + t.Domain
}

func stateKey(t dnsbl.Target, zone string) string {
	return encodeTarget(t) + "/" + strings.ToLower(zone)
}

func zoneKey(zone string) string { return "zone/" + strings.ToLower(zone) }

func seenKey(ip string) string { return "seen/" + strings.ReplaceAll(ip, ":", "-") }

// coverage answers "was this pair clean in the last complete sweep?" for
// pairs without a record.
type coverage struct {
	ok       bool
	zonesOK  map[string]bool
	ips      map[netip.Addr]bool
	prefixes []netip.Prefix
	domains  map[string]bool
	started  time.Time
	seen     func(netip.Addr) (time.Time, bool) // first seen
	// seenCapped: the last sweep left some seen IPs out.
	seenCapped bool
}

func newCoverage(last *lastSweep, seen func(netip.Addr) (time.Time, bool)) *coverage {
	c := &coverage{zonesOK: map[string]bool{}, ips: map[netip.Addr]bool{}, domains: map[string]bool{}, seen: seen}
	if last == nil {
		return c
	}
	c.ok, c.started, c.seenCapped = true, last.Started, last.SeenCapped
	for _, z := range last.ZonesOK {
		c.zonesOK[z] = true
	}
	for _, s := range last.IPs {
		if t, err := dnsbl.ParseTarget(s); err == nil && t.Kind == dnsbl.KindIP {
			c.ips[t.IP] = true
		}
	}
	for _, s := range last.CIDRs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			c.prefixes = append(c.prefixes, p.Masked())
		}
	}
	for _, s := range last.Domains {
		if t, err := dnsbl.ParseTarget(s); err == nil && t.Kind == dnsbl.KindDomain {
			c.domains[t.Domain] = true
		}
	}
	return c
}

// clean reports whether the last sweep found t clean on zone, given that
// the pair has no record.
func (c *coverage) clean(t dnsbl.Target, zone string) bool {
	if !c.ok || !c.zonesOK[zone] {
		return false
	}
	if t.Kind == dnsbl.KindDomain {
		return c.domains[t.Domain]
	}
	if c.ips[t.IP] {
		return true
	}
	for _, p := range c.prefixes {
		if p.Contains(t.IP) {
			return true
		}
	}
	if c.seen != nil && !c.seenCapped {
		if first, ok := c.seen(t.IP); ok && first.Before(c.started) {
			return true
		}
	}
	return false
}

// change is what one check did to its pair: a record to store, or the
// record to delete, and the event to publish (nil when none).
type change struct {
	rec    *record
	delete bool
	event  schemas.Event
}

// transition compares a check with the pair's record (nil when there is
// none) and returns the change. wasClean says whether the last complete
// sweep found the pair clean (used only when there is no record). The
// event is not stamped yet.
func transition(prev *record, ch Check, b *dnsbl.Blocklist, wasClean bool, now time.Time, sweepID, resolver string) change {
	r := ch.Result
	switch r.Status {
	case dnsbl.NotListed:
		if prev == nil {
			return change{} // the common case: clean and still clean
		}
		c := change{delete: true}
		if prev.State == stateListed {
			d := &schemas.DNSBLDelisted{
				DNSBLLookup:         lookupOf(ch, b),
				PreviousAnswerCodes: prev.Codes,
				ListedSince:         prev.ListedSince,
				SweepID:             sweepID,
				Resolver:            resolver,
			}
			if !prev.ListedSince.IsZero() && now.After(prev.ListedSince) {
				d.ListedMs = now.Sub(prev.ListedSince).Milliseconds()
			}
			c.event = d
		}
		return c
	case dnsbl.Listed:
		cur := newRecord(prev, ch, b)
		var ev schemas.Event
		if cur.State != stateListed {
			previous := schemas.StateUnknown
			if (prev == nil && wasClean) || (prev != nil && prev.State == stateClean && prev.ErrorCause == "") {
				previous = schemas.StateClean
			}
			ev = &schemas.DNSBLListed{
				DNSBLLookup:    lookupOf(ch, b),
				AnswerCodes:    r.Codes,
				AnswerMeanings: r.Meanings,
				TXT:            ch.TXT,
				DelistURL:      b.DelistURL(ch.Target),
				PreviousState:  previous,
				SweepID:        sweepID,
				Resolver:       resolver,
			}
			cur.ListedSince = now
		}
		cur.State, cur.Codes, cur.Meanings = stateListed, r.Codes, r.Meanings
		if ch.TXT != "" || ev != nil {
			cur.TXT = ch.TXT
		}
		cur.ErrorCause, cur.ErrorCode = "", ""
		return finish(prev, cur, ev, now, sweepID)
	default:
		cur := newRecord(prev, ch, b)
		if prev == nil && wasClean {
			cur.State = stateClean
		}
		var ev schemas.Event
		if prev == nil || prev.ErrorCause != string(r.Cause) || prev.ErrorCode != r.ErrorCode {
			lookup := lookupOf(ch, b)
			ev = &schemas.DNSBLError{
				Target:     lookup.Target,
				TargetKind: lookup.TargetKind,
				SourceIP:   lookup.SourceIP,
				Zone:       lookup.Zone,
				List:       lookup.List,
				Cause:      string(r.Cause),
				AnswerCode: r.ErrorCode,
				Meaning:    r.Meaning,
				Rcode:      r.Rcode,
				Error:      r.Detail,
				QueryName:  ch.QueryName,
				SweepID:    sweepID,
				Resolver:   resolver,
			}
		}
		cur.ErrorCause, cur.ErrorCode = string(r.Cause), r.ErrorCode
		return finish(prev, cur, ev, now, sweepID)
	}
}

// newRecord is a copy of prev, or a new record for the check's pair.
func newRecord(prev *record, ch Check, b *dnsbl.Blocklist) *record {
	if prev == nil {
		return &record{Target: ch.Target.String(), Kind: string(ch.Target.Kind), Zone: b.Name()}
	}
	cur := *prev
	cur.Codes, cur.Meanings = slices.Clone(prev.Codes), slices.Clone(prev.Meanings)
	return &cur
}

// finish returns the change to cur, or only the event when cur says what
// prev said.
func finish(prev, cur *record, ev schemas.Event, now time.Time, sweepID string) change {
	if prev != nil && sameRecord(prev, cur) {
		return change{event: ev}
	}
	cur.Changed, cur.SweepID = now, sweepID
	return change{rec: cur, event: ev}
}

func sameRecord(a, b *record) bool {
	return a.State == b.State && slices.Equal(a.Codes, b.Codes) && slices.Equal(a.Meanings, b.Meanings) &&
		a.TXT == b.TXT && a.ListedSince.Equal(b.ListedSince) && a.ErrorCause == b.ErrorCause && a.ErrorCode == b.ErrorCode
}

// lookupOf is the DNSBLLookup field group of a check.
func lookupOf(ch Check, b *dnsbl.Blocklist) schemas.DNSBLLookup {
	l := schemas.DNSBLLookup{
		Target:     ch.Target.String(),
		TargetKind: string(ch.Target.Kind),
		Zone:       b.Name(),
		List:       b.Zone().ListName(),
		Weight:     b.Zone().Weight,
		QueryName:  ch.QueryName,
	}
	if ch.Target.Kind == dnsbl.KindIP {
		// Every IP the sweeper checks is one of ours: configured sending
		// IPs and blocks, or a source_ip seen in our own deliveries.
		l.SourceIP = l.Target
	}
	return l
}
