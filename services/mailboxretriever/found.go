package mailboxretriever

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/mailboxretriever/mailhdr"
)

// maxAuthResults is how much of the provider's Authentication-Results an
// event carries.
const maxAuthResults = 2048

// found is one message read from a seed mailbox.
type found struct {
	account   *account
	protocol  string
	folder    string
	placement string
	header    mailhdr.Header
	// internalDate is the IMAP INTERNALDATE; zero for POP3.
	internalDate time.Time
	// seenAt is when the retriever first saw the message.
	seenAt time.Time
}

// verdict of looking at a found message.
type verdict int

const (
	// done: reported (or not ours); may be deleted if it is a probe.
	verdictDone verdict = iota
	// ignored: not one of our probes; left alone.
	verdictIgnored
	// orphan: a verified probe whose probe.sent is not known yet.
	verdictOrphan
	// retry: a transient failure (KV, NATS); look again later.
	verdictRetry
)

// identify verifies the tracking header and returns the probe id, or the
// reason the message is not a trusted probe of ours.
func (r *Retriever) identify(h mailhdr.Header) (string, string) {
	v := h.Get(tracking.HeaderName)
	if v == "" {
		return "", "foreign"
	}
	f, err := r.track.Verify(v, r.now())
	switch {
	case err == nil:
	case errors.Is(err, tracking.ErrTampered):
		return "", "tampered"
	case errors.Is(err, tracking.ErrUnknownKey):
		return "", "unknown_key"
	case errors.Is(err, tracking.ErrExpired):
		return "", "expired"
	case errors.Is(err, tracking.ErrFuture):
		return "", "future"
	default:
		return "", "malformed"
	}
	if f.Customer != r.cfg.ProbeCustomer {
		return "", "not_probe"
	}
	if !keyRE.MatchString(f.MessageID) {
		return "", "malformed"
	}
	return f.MessageID, ""
}

// process looks at one message: it reports a probe it finds (received, or
// late after a missing) exactly once, even when two copies of the worker
// or two copies of the message race, by moving the KV entry with
// compare-and-set before publishing.
func (r *Retriever) process(ctx context.Context, f *found) (verdict, string) {
	probeID, reason := r.identify(f.header)
	if reason != "" {
		return verdictIgnored, reason
	}
	for range 5 {
		kve, err := r.kv.Get(ctx, probeID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return verdictOrphan, probeID
		}
		if err != nil {
			return verdictRetry, probeID
		}
		e, err := decodeEntry(kve)
		if err != nil {
			return verdictRetry, probeID
		}
		var ev schemas.Event
		result := ""
		switch e.State {
		case statePending:
			ev, result = r.receivedEvent(e, f), stateReceived
		case stateMissing:
			ev, result = r.lateEvent(e, f), stateLate
		default: // received or late: another copy of the message, or a retry
			if !e.Published {
				if err := r.publishStored(ctx, probeID, e, kve.Revision()); err != nil {
					return verdictRetry, probeID
				}
				return verdictDone, probeID
			}
			r.metrics.probes.WithLabelValues(f.account.cfg.Name, "duplicate").Inc()
			return verdictDone, probeID
		}
		if err := schemas.Stamp(ev, r.source, f.seenAt); err != nil {
			return verdictRetry, probeID
		}
		e.State, e.Published = result, false
		if e.Event, err = json.Marshal(ev); err != nil {
			return verdictRetry, probeID
		}
		rev, err := update(ctx, r.kv, probeID, e, kve.Revision())
		if errors.Is(err, errConflict) {
			continue // moved meanwhile (declared missing, or found by another copy): look again
		}
		if err != nil {
			return verdictRetry, probeID
		}
		if err := r.publishStored(ctx, probeID, e, rev); err != nil {
			// Stored but not published: the deadline loop republishes it.
			return verdictRetry, probeID
		}
		r.metrics.probes.WithLabelValues(f.account.cfg.Name, result).Inc()
		if rec, ok := ev.(*schemas.ProbeReceived); ok {
			r.metrics.detection.Observe(float64(rec.DetectionMs) / 1000)
			r.metrics.latency.WithLabelValues(rec.Placement).Observe(float64(rec.LatencyMs) / 1000)
		}
		return verdictDone, probeID
	}
	return verdictRetry, probeID
}

// arrival is when the provider stored the message and which clock says so.
func arrival(f *found) (time.Time, string) {
	if !f.internalDate.IsZero() {
		return f.internalDate, schemas.ArrivalInternalDate
	}
	if rs := f.header.Values("Received"); len(rs) > 0 {
		if t, ok := mailhdr.ReceivedTime(rs[0]); ok {
			return t, schemas.ArrivalReceived
		}
	}
	return f.seenAt, schemas.ArrivalReceived
}

// latency is arrived minus sent in milliseconds. The providers' clocks
// (INTERNALDATE, Received) count whole seconds, so a probe stamped in the
// second it was sent arrived at some point of that second after sent: 0,
// not the negative difference to the second's start. Any other negative
// latency is the provider's clock being behind ours, and stays.
func latency(arrived, sent time.Time) int64 {
	if arrived.Before(sent) && arrived.Equal(sent.Truncate(time.Second)) {
		return 0
	}
	return arrived.Sub(sent).Milliseconds()
}

type verdicts struct {
	schemas.ProbeVerdicts
	policy, arc, compauth, compauthReason, servID, raw string
	dkimDomains                                        []string
}

// readVerdicts reads the topmost Authentication-Results, the one the
// provider added last. For DKIM it prefers the result for our own signing
// domain.
func readVerdicts(h mailhdr.Header, ourDomain string) verdicts {
	var v verdicts
	raw := h.Get("Authentication-Results")
	if raw == "" {
		return v
	}
	v.raw = raw
	if len(v.raw) > maxAuthResults {
		v.raw = v.raw[:maxAuthResults]
	}
	ar := mailhdr.ParseAuthResults(raw)
	v.servID = ar.AuthServID
	if m, ok := ar.First("spf"); ok {
		v.SPF = m.Result
	}
	for i, m := range ar.All("dkim") {
		d := m.DKIMDomain()
		if d != "" {
			v.dkimDomains = append(v.dkimDomains, d)
		}
		if i == 0 || (ourDomain != "" && strings.EqualFold(d, ourDomain)) {
			v.DKIM = m.Result
		}
	}
	if m, ok := ar.First("dmarc"); ok {
		v.DMARC, v.policy = m.Result, m.DMARCPolicy()
	}
	if m, ok := ar.First("arc"); ok {
		v.arc = m.Result
	}
	if m, ok := ar.First("compauth"); ok {
		v.compauth, v.compauthReason = m.Result, m.Prop("reason")
	}
	return v
}

func (r *Retriever) receivedEvent(e entry, f *found) *schemas.ProbeReceived {
	arrived, source := arrival(f)
	v := readVerdicts(f.header, e.Probe.DKIMDomain)
	return &schemas.ProbeReceived{
		ProbeRoute:            e.Probe.ProbeRoute,
		ProbeSeed:             e.Probe.ProbeSeed,
		ProbeFiling:           schemas.ProbeFiling{Account: f.account.cfg.Name, Protocol: f.protocol, Placement: f.placement, Folder: f.folder},
		MessageID:             e.Probe.MessageID,
		SentAt:                e.Probe.SentAt,
		ArrivedAt:             arrived.UTC(),
		ArrivalSource:         source,
		LatencyMs:             latency(arrived, e.Probe.SentAt),
		DetectionMs:           f.seenAt.Sub(arrived).Milliseconds(),
		ReceivedHops:          uint16(min(f.header.ReceivedHops(), 65535)),
		ProbeVerdicts:         v.ProbeVerdicts,
		DMARCPolicy:           v.policy,
		ARC:                   v.arc,
		CompAuth:              v.compauth,
		CompAuthReason:        v.compauthReason,
		DKIMDomains:           v.dkimDomains,
		AuthServID:            v.servID,
		AuthenticationResults: v.raw,
		Deleted:               r.cfg.Delete,
	}
}

func (r *Retriever) lateEvent(e entry, f *found) *schemas.ProbeLate {
	arrived, _ := arrival(f)
	v := readVerdicts(f.header, e.Probe.DKIMDomain)
	return &schemas.ProbeLate{
		ProbeRoute:     e.Probe.ProbeRoute,
		ProbeSeed:      e.Probe.ProbeSeed,
		ProbeFiling:    schemas.ProbeFiling{Account: f.account.cfg.Name, Protocol: f.protocol, Placement: f.placement, Folder: f.folder},
		MessageID:      e.Probe.MessageID,
		SentAt:         e.Probe.SentAt,
		ArrivedAt:      arrived.UTC(),
		LatencyMs:      latency(arrived, e.Probe.SentAt),
		DeadlineMs:     e.DeadlineMs,
		LateByMs:       max(arrived.Sub(e.Deadline).Milliseconds(), 0),
		MissingEventID: e.MissingEventID,
		ProbeVerdicts:  v.ProbeVerdicts,
	}
}

// registerOrphan remembers a probe waiting for its probe.sent; kick makes
// its folder look again as soon as the expectation appears.
func (r *Retriever) registerOrphan(probeID string, kick func()) {
	r.mu.Lock()
	r.orphans[probeID] = kick
	r.mu.Unlock()
}

func (r *Retriever) dropOrphan(probeID string) {
	r.mu.Lock()
	delete(r.orphans, probeID)
	r.mu.Unlock()
}
