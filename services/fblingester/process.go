package fblingester

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/dsn"
)

// Outcomes of one message, as counted in metrics.
const (
	outcomeComplaint   = "complaint"
	outcomeAuthFailure = "auth_failure"
	outcomeBounce      = "bounce"
	outcomeAutoReply   = "auto_reply"
	outcomeDelivered   = "delivered"
	outcomeDeadLetter  = "dead_letter"
	outcomeRetry       = "retry" // not stored; the sender or the next pull tries again
)

// maxDeadLetterBytes keeps a dead letter under NATS's default 1 MiB
// max_payload (with room for the headers); a longer message is cut and the
// cut is said in a header.
const maxDeadLetterBytes = 900 << 10

// Header on a dead letter of this worker: the input it came through and,
// when cut, the original size.
const (
	headerDeadLetterInput    = "Mailmon-Dead-Letter-Input"
	headerDeadLetterOrigSize = "Mailmon-Dead-Letter-Original-Size"
)

// result is what one message became.
type result struct {
	outcome string
	events  []schemas.Event
	// reason says why a message is dead-lettered.
	reason string
	// complaint is set for a counted complaint, for the unmatched window.
	complaint *schemas.ComplaintReceived
	verdict   string // tracking header verdict (trackValid, ...)
}

// analyse parses one message and builds its events. It does no I/O: ARF
// first (a complaint notice may also look like a bounce), then DSN; what is
// neither is dead-lettered.
func (in *Ingester) analyse(raw []byte, via string) result {
	id := identify(raw)
	now := in.now()
	if rep := arf.Parse(raw); rep.Format != arf.FormatNone {
		ft := rep.EffectiveFeedbackType()
		if ft == arf.TypeAuthFailure {
			ev, verdict := in.authFailureEvent(rep, id, via, now)
			return result{outcome: outcomeAuthFailure, events: []schemas.Event{ev}, verdict: verdict}
		}
		ev, verdict := in.complaintEvent(rep, ft, id, via, now)
		r := result{outcome: outcomeComplaint, events: []schemas.Event{ev}, verdict: verdict}
		if ev.Counted {
			r.complaint = ev
		}
		return r
	}
	b := dsn.Parse(raw)
	switch b.Kind {
	case dsn.KindBounce:
		failed := b.Failed()
		if len(failed) == 0 {
			return result{outcome: outcomeDeadLetter, reason: "bounce without a failed or delayed recipient"}
		}
		evs, verdict := in.bounceEvents(b, failed, id, via, now)
		return result{outcome: outcomeBounce, events: evs, verdict: verdict}
	case dsn.KindAutoReply:
		return result{outcome: outcomeAutoReply}
	case dsn.KindDelivered:
		return result{outcome: outcomeDelivered}
	case dsn.KindFeedback:
		return result{outcome: outcomeDeadLetter, reason: "complaint notice in no known feedback-report format"}
	default:
		return result{outcome: outcomeDeadLetter, reason: "neither a feedback report (ARF, JMRP, Yahoo CFL) nor a bounce (DSN or a known text format) nor an auto-reply"}
	}
}

// counts says whether a feedback type counts as a complaint.
func (in *Ingester) counts(ft string) bool {
	switch ft {
	case arf.TypeAbuse:
		return true
	case arf.TypeFraud:
		return in.cfg.CountFraud
	case arf.TypeVirus:
		return in.cfg.CountVirus
	}
	return false
}

func (in *Ingester) reportKeys(rep *arf.Report) keys {
	tr := rep.Trace()
	k := keys{trackingHeader: rep.TrackingHeader(), dkimDomain: tr.DKIMDomain, messageID: tr.MessageID, sourceIP: tr.SourceIP}
	if k.sourceIP == "" && rep.TextSourceIP != "" {
		if a, ok := arf.SourceAddr(rep.TextSourceIP); ok {
			k.sourceIP = a.String()
		}
	}
	return k
}

func (in *Ingester) complaintEvent(rep *arf.Report, ft string, id identity, via string, now time.Time) (*schemas.ComplaintReceived, string) {
	if ft == "" {
		ft = arf.TypeOther
	}
	k := in.reportKeys(rep)
	t := in.tracer.trace(k)
	ev := &schemas.ComplaintReceived{
		TrackingID:       t.trackingID,
		Customer:         t.customer,
		SourceIP:         t.sourceIP,
		Provider:         in.providers.ofReport(rep),
		RecipientDomain:  rep.Trace().RecipientDomain,
		TraceMethod:      t.method,
		Counted:          in.counts(ft),
		Format:           rep.Format,
		ReceivedVia:      via,
		FeedbackType:     ft,
		UserAgent:        rep.UserAgent,
		Version:          rep.Version,
		ReportingMTA:     firstWord(rep.ReportingMTA),
		ReportMessageID:  arf.StripAngle(rep.ReportMessageID),
		ReportedSourceIP: firstNonEmpty(rep.SourceIP, rep.TextSourceIP),
		OriginalMailFrom: rep.OriginalMailFrom,
		OriginalRcptTo:   rep.OriginalRcptTo,
		ArrivalDate:      storableTime(rep.ArrivalDate),
		ReportedDomains:  rep.ReportedDomain,
		ReportedURIs:     rep.ReportedURI,
		AuthFailure:      strings.ToLower(rep.AuthFailure),
		DKIMDomain:       k.dkimDomain,
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(rep.Incidents), 10, 32); err == nil {
		ev.Incidents = uint32(n)
	}
	ev.AuthenticationResults = strings.Join(rep.AuthenticationResults, "; ")
	if o := rep.Original; o != nil {
		ev.OriginalMessageID = arf.StripAngle(o.MessageID)
		ev.OriginalFrom = o.From
		ev.OriginalSubject = o.Subject
		ev.HeadersExcerpt = excerpt(o.Header)
	}
	in.stamp(ev, id, "", now)
	return ev, t.headerVerd
}

func (in *Ingester) authFailureEvent(rep *arf.Report, id identity, via string, now time.Time) (*schemas.AuthFailureReceived, string) {
	k := in.reportKeys(rep)
	t := in.tracer.trace(k)
	ev := &schemas.AuthFailureReceived{
		TrackingID:            t.trackingID,
		Customer:              t.customer,
		SourceIP:              t.sourceIP,
		Provider:              in.providers.ofReport(rep),
		TraceMethod:           t.method,
		Format:                rep.Format,
		ReceivedVia:           via,
		AuthFailure:           strings.ToLower(rep.AuthFailure),
		DeliveryResult:        strings.ToLower(rep.DeliveryResult),
		DKIMDomain:            firstNonEmpty(strings.ToLower(rep.DKIMDomain), k.dkimDomain),
		DKIMIdentity:          rep.DKIMIdentity,
		DKIMSelector:          rep.DKIMSelector,
		IdentityAlignment:     strings.ToLower(rep.IdentityAlignment),
		AuthenticationResults: strings.Join(rep.AuthenticationResults, "; "),
		UserAgent:             rep.UserAgent,
		ReportingMTA:          firstWord(rep.ReportingMTA),
		ReportMessageID:       arf.StripAngle(rep.ReportMessageID),
		ReportedSourceIP:      firstNonEmpty(rep.SourceIP, rep.TextSourceIP),
		OriginalMailFrom:      rep.OriginalMailFrom,
		ArrivalDate:           storableTime(rep.ArrivalDate),
		ReportedDomains:       rep.ReportedDomain,
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(rep.Incidents), 10, 32); err == nil {
		ev.Incidents = uint32(n)
	}
	if o := rep.Original; o != nil {
		ev.OriginalMessageID = arf.StripAngle(o.MessageID)
		ev.OriginalFrom = o.From
		ev.OriginalSubject = o.Subject
		ev.HeadersExcerpt = excerpt(o.Header)
	}
	in.stamp(ev, id, "", now)
	return ev, t.headerVerd
}

func (in *Ingester) bounceEvents(b *dsn.Bounce, failed []dsn.Recipient, id identity, via string, now time.Time) ([]schemas.Event, string) {
	tr := b.Trace()
	t := in.tracer.trace(keys{trackingHeader: tr.TrackingHeader, dkimDomain: tr.DKIMDomain, messageID: tr.MessageID})
	var excerptText, origMsgID, origSender string
	if o := b.Original; o != nil {
		excerptText = excerpt(o.Header)
		origMsgID = arf.StripAngle(o.MessageID)
		origSender = firstNonEmpty(addrOf(o.ReturnPath), o.From)
	}
	var out []schemas.Event
	for _, r := range failed {
		rcpt := strings.Trim(strings.TrimSpace(r.Recipient), "<>")
		dom := domainOf(rcpt)
		if dom == "" {
			dom = "unknown"
		}
		ev := &schemas.BounceReceived{
			OutgoingMessage: schemas.OutgoingMessage{
				TrackingID:      t.trackingID,
				Customer:        t.customer,
				SourceIP:        t.sourceIP,
				Provider:        in.providers.byDomain(dom),
				RecipientDomain: dom,
			},
			TraceMethod:       t.method,
			ReceivedVia:       via,
			Format:            b.Format,
			Recipient:         rcpt,
			OrigRecipient:     r.OriginalRecipient,
			Action:            firstNonEmpty(r.Action, dsn.ActionFailed),
			Status:            r.Status,
			RemoteMTA:         r.RemoteMTA,
			ReportingMTA:      firstNonEmpty(r.ReportingMTA, b.ReportingMTA),
			Diagnostic:        r.Diagnostic,
			Reason:            firstNonEmpty(r.Reason, "undefined"),
			Category:          firstNonEmpty(r.Category, "other"),
			Signature:         r.Signature,
			ArrivalDate:       storableTime(b.ArrivalDate),
			LastAttemptDate:   storableTime(r.LastAttempt),
			OriginalMessageID: origMsgID,
			OriginalSender:    origSender,
			BounceMessageID:   arf.StripAngle(b.MessageID),
			HeadersExcerpt:    excerptText,
		}
		if r.ReplyCode > 0 && r.ReplyCode < 1000 {
			ev.ReplyCode = uint16(r.ReplyCode)
		}
		in.stamp(ev, id, rcpt, now)
		out = append(out, ev)
	}
	return out, t.headerVerd
}

// stamp fills the header with the deterministic id.
func (in *Ingester) stamp(ev schemas.Event, id identity, part string, now time.Time) {
	// The event time is the message's own Date when it is plausible, so a
	// report received again after JetStream's duplicate window still makes
	// the same row (time is in the tables' sorting key) and ClickHouse
	// merges it by id.
	at := now
	if d := id.date; !d.IsZero() && d.After(now.Add(-plausibleDateSkew)) && d.Before(now.Add(plausibleDateSkew)) {
		at = d
	}
	_ = schemas.Stamp(ev, in.source, at) // the types are registered
	h := ev.EventHeader()
	h.ID = eventID(id, h.Type, part)
}

// plausibleDateSkew bounds how far a message's Date may be from its
// arrival for it to stand as the event time; senders with broken clocks
// get the arrival time instead.
const plausibleDateSkew = 7 * 24 * time.Hour

// handle processes one message through to durable storage: its events are
// published and confirmed by JetStream, or its copy is stored in the
// dead-letter stream. A returned error means nothing may be assumed stored
// and the input must keep the message (SMTP 451, leave it in the mailbox,
// leave the file); handling it again later publishes the same ids.
func (in *Ingester) handle(ctx context.Context, raw []byte, via string) (result, error) {
	res := in.analyse(raw, via)
	ctx, cancel := context.WithTimeout(ctx, in.cfg.PublishTimeout.Std())
	defer cancel()
	if res.outcome == outcomeDeadLetter {
		if err := in.deadLetter(ctx, raw, via, res.reason); err != nil {
			in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
			return res, err
		}
		in.m.deadLettered.WithLabelValues(via).Inc()
		in.m.messages.WithLabelValues(via, res.outcome).Inc()
		in.log.Warn("message dead-lettered", "input", via, "reason", res.reason, "size", len(raw))
		return res, nil
	}
	for _, ev := range res.events {
		if err := in.pub.Publish(ctx, ev); err != nil {
			in.m.publishFailures.WithLabelValues(via).Inc()
			in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
			return res, fmt.Errorf("publish %s: %w", ev.EventHeader().Type, err)
		}
	}
	in.m.messages.WithLabelValues(via, res.outcome).Inc()
	if res.verdict != "" {
		in.m.tracking.WithLabelValues(res.verdict).Inc()
	}
	for _, ev := range res.events {
		switch e := ev.(type) {
		case *schemas.ComplaintReceived:
			in.m.complaints.WithLabelValues(e.FeedbackType, strconv.FormatBool(e.Counted), e.TraceMethod).Inc()
			if e.Counted && e.TraceMethod == schemas.TraceNone {
				in.m.unmatched.Inc()
			}
		case *schemas.BounceReceived:
			in.m.bounces.WithLabelValues(e.Category).Inc()
		case *schemas.AuthFailureReceived:
			in.m.authFailures.WithLabelValues(e.AuthFailure).Inc()
		}
	}
	if res.complaint != nil {
		in.observeComplaint(ctx, res.complaint)
	}
	return res, nil
}

// deadLetter stores a copy of a message no parser understood in
// mailmon.dlq.fbl-ingester, with the reason, and waits for JetStream.
func (in *Ingester) deadLetter(ctx context.Context, raw []byte, via, reason string) error {
	hdr := nats.Header{}
	hdr.Set(bus.HeaderDeadLetterReason, reason)
	hdr.Set(bus.HeaderDeadLetterWorker, WorkerName)
	hdr.Set(bus.HeaderDeadLetterTime, in.now().UTC().Format(time.RFC3339Nano))
	hdr.Set(headerDeadLetterInput, via)
	data := raw
	if len(data) > maxDeadLetterBytes {
		hdr.Set(headerDeadLetterOrigSize, strconv.Itoa(len(raw)))
		data = data[:maxDeadLetterBytes]
	}
	if err := in.pub.PublishRaw(ctx, bus.DeadLetterSubject(WorkerName), deadLetterID(identify(raw)), data, hdr); err != nil {
		in.m.publishFailures.WithLabelValues(via).Inc()
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
