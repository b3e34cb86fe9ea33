package fblingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/dsn"
	"github.com/mailmon/mailmon/services/internal/reportfile"
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
// cut is said in a header. A server with a smaller max_payload cuts more
// (deadLetterLimit).
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
	// unstorable says the message was dead-lettered because its events
	// can never be stored (too big for NATS, or invalid): the SMTP sender
	// is refused for good, unlike for a message we merely did not
	// understand.
	unstorable bool
	// complaint is set for a counted complaint, for the unmatched window.
	complaint *schemas.ComplaintReceived
	verdict   string // tracking header verdict (trackValid, ...)
	// refused says why a DMARC or TLS report was dead-lettered
	// (reportRefusedLimit, ...), for reports_refused_total.
	refused string
}

// analyse parses one message and builds its events: ARF first (a
// complaint notice may also look like a bounce), then DMARC aggregate and
// SMTP TLS reports, then DSN; what is none of these is dead-lettered. A
// report file (gzip, zip, XML or JSON rather than a mail) is read as a
// report only. Its only I/O is the DNS lookup of DKIM keys (of
// configured operators and customers only); an error means a lookup failed
// for now and the message must be tried again later.
func (in *Ingester) analyse(ctx context.Context, raw []byte, o origin) (result, error) {
	via := o.via
	id := identify(raw)
	now := in.now()
	if bareReport(raw) {
		// A report file (gzip, zip, XML, JSON), not a mail.
		if res, ok := in.analyseReport(raw, id, via, now); ok {
			return res, nil
		}
		return result{outcome: outcomeDeadLetter, reason: "neither a mail nor a DMARC aggregate or SMTP TLS report"}, nil
	}
	rep, err := arf.Parse(raw)
	if err != nil {
		return result{outcome: outcomeDeadLetter, reason: "report not read: " + err.Error()}, nil
	}
	if rep.Format != arf.FormatNone {
		ft := rep.EffectiveFeedbackType()
		if ft == arf.TypeAuthFailure {
			ev, verdict := in.authFailureEvent(rep, id, via, now)
			return result{outcome: outcomeAuthFailure, events: []schemas.Event{ev}, verdict: verdict}, nil
		}
		trust, err := in.trust.reportTrust(ctx, raw, rep, o)
		if err != nil {
			return result{}, err
		}
		ev, verdict := in.complaintEvent(ctx, raw, rep, ft, trust, via, now)
		r := result{outcome: outcomeComplaint, events: []schemas.Event{ev}, verdict: verdict}
		if ev.Counted && ev.Trusted {
			r.complaint = ev
		}
		return r, nil
	}
	// DMARC aggregate and SMTP TLS reports before DSN: a report is never
	// dead-lettered as "not a bounce". An attachment that only looked like
	// a report and cannot be read (a bounce may return a message carrying
	// one) is judged after DSN: a bounce is still a bounce.
	var unreadable *result
	if reportfile.LooksLikeReport(raw) {
		if res, ok := in.analyseReport(raw, id, via, now); ok {
			if res.refused != reportRefusedUnreadable {
				return res, nil
			}
			unreadable = &res
		}
	}
	b, err := dsn.Parse(raw)
	if err != nil {
		if unreadable != nil {
			return *unreadable, nil
		}
		return result{outcome: outcomeDeadLetter, reason: "bounce not read: " + err.Error()}, nil
	}
	if unreadable != nil && b.Kind != dsn.KindBounce && b.Kind != dsn.KindAutoReply && b.Kind != dsn.KindDelivered {
		return *unreadable, nil
	}
	switch b.Kind {
	case dsn.KindBounce:
		failed := b.Failed()
		if len(failed) == 0 {
			return result{outcome: outcomeDeadLetter, reason: "bounce without a failed or delayed recipient"}, nil
		}
		evs, verdict := in.bounceEvents(b, failed, id, via, now)
		return result{outcome: outcomeBounce, events: evs, verdict: verdict}, nil
	case dsn.KindAutoReply:
		return result{outcome: outcomeAutoReply}, nil
	case dsn.KindDelivered:
		return result{outcome: outcomeDelivered}, nil
	case dsn.KindFeedback:
		return result{outcome: outcomeDeadLetter, reason: "complaint notice in no known feedback-report format"}, nil
	default:
		return result{outcome: outcomeDeadLetter, reason: "neither a feedback report (ARF, JMRP, Yahoo CFL) nor a bounce (DSN or a known text format) nor an auto-reply"}, nil
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

// reportKeys are a report's trace keys; its own claims count only when
// claimsTrusted.
func (in *Ingester) reportKeys(rep *arf.Report, claimsTrusted bool) keys {
	tr := rep.Trace()
	k := keys{trackingHeader: rep.TrackingHeader(), dkimDomain: tr.DKIMDomain, messageID: tr.MessageID, sourceIP: tr.SourceIP,
		claimsTrusted: claimsTrusted}
	if k.sourceIP == "" && rep.TextSourceIP != "" {
		if a, ok := arf.SourceAddr(rep.TextSourceIP); ok {
			k.sourceIP = a.String()
		}
	}
	return k
}

func (in *Ingester) complaintEvent(ctx context.Context, raw []byte, rep *arf.Report, ft, trust, via string, now time.Time) (*schemas.ComplaintReceived, string) {
	if ft == "" {
		ft = arf.TypeOther
	}
	trusted := trust != schemas.TrustUnverified
	k := in.reportKeys(rep, trusted)
	if o := rep.Original; o != nil && !o.HeadersOnly {
		// The original came back in full: its d= traces only if its
		// signature verifies. A key that cannot be fetched now counts as
		// not verified (the report is not held up for a customer's DNS).
		k.originalBody = true
		if slices.ContainsFunc(o.DKIMDomains, in.tracer.signsFor) {
			if orig := attachedOriginal(raw); orig != nil {
				k.verifiedDKIM, _ = in.trust.verifyDKIM(ctx, orig, in.tracer.signsFor)
			}
		}
	}
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
		Trusted:          trusted,
		Trust:            trust,
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
	in.stamp(ev, complaintIdentity(raw, rep, t, ft, trusted, now), "", now)
	return ev, t.headerVerd
}

func (in *Ingester) authFailureEvent(rep *arf.Report, id identity, via string, now time.Time) (*schemas.AuthFailureReceived, string) {
	// Auth-failure reports never make mailmon act; they are traced as
	// before, taking the report's claims as said.
	k := in.reportKeys(rep, true)
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
	// Bounces never make mailmon act; they are traced by what they say.
	t := in.tracer.trace(keys{trackingHeader: tr.TrackingHeader, dkimDomain: tr.DKIMDomain, messageID: tr.MessageID, claimsTrusted: true})
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
	if plausible(id.date, now) {
		at = id.date
	}
	_ = schemas.Stamp(ev, in.source, at) // the types are registered
	h := ev.EventHeader()
	h.ID = eventID(id, h.Type, part)
}

// plausibleDateSkew bounds how far a message's Date may be from its
// arrival for it to stand as the event time; senders with broken clocks
// get the arrival time instead.
const plausibleDateSkew = 7 * 24 * time.Hour

func plausible(d, now time.Time) bool {
	return !d.IsZero() && d.After(now.Add(-plausibleDateSkew)) && d.Before(now.Add(plausibleDateSkew))
}

// handle processes one message through to durable storage: its events are
// published and confirmed by JetStream, or its copy is stored in the
// dead-letter stream. A returned error means nothing may be assumed stored
// and the input must keep the message (SMTP 451, leave it in the mailbox,
// leave the file); handling it again later publishes the same ids. A
// message whose events can never be stored (too big for NATS, invalid) is
// dead-lettered instead and comes back with unstorable set, so the input
// moves on to the next one.
func (in *Ingester) handle(ctx context.Context, raw []byte, o origin) (result, error) {
	via := o.via
	res, err := in.analyse(ctx, raw, o)
	if err != nil {
		in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.cfg.PublishTimeout.Std())
	defer cancel()
	if res.outcome != outcomeDeadLetter {
		if reason := in.unstorable(res.events); reason != "" {
			res = result{outcome: outcomeDeadLetter, reason: reason, unstorable: true}
		}
	}
	if res.outcome == outcomeDMARC || res.outcome == outcomeTLSRPT {
		if err := in.publishReport(ctx, res.events); err != nil {
			in.m.publishFailures.WithLabelValues(via).Inc()
			in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
			return res, fmt.Errorf("publish report: %w", err)
		}
	} else if res.outcome != outcomeDeadLetter {
		for _, ev := range res.events {
			err := in.pub.Publish(ctx, ev)
			if err == nil {
				continue
			}
			in.m.publishFailures.WithLabelValues(via).Inc()
			if !permanentPublishError(err) {
				in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
				return res, fmt.Errorf("publish %s: %w", ev.EventHeader().Type, err)
			}
			// Events stored before this one stay; the message as a whole
			// is dead-lettered so nothing of it is lost silently.
			res = result{outcome: outcomeDeadLetter, unstorable: true,
				reason: fmt.Sprintf("%s event %s cannot be stored: %v", ev.EventHeader().Type, ev.EventHeader().ID, err)}
			break
		}
	}
	if res.outcome == outcomeDeadLetter {
		if err := in.deadLetter(ctx, raw, via, res.reason); err != nil {
			in.m.messages.WithLabelValues(via, outcomeRetry).Inc()
			return res, err
		}
		in.m.deadLettered.WithLabelValues(via).Inc()
		if res.refused != "" {
			in.m.reportsRefused.WithLabelValues(res.refused).Inc()
		}
		if res.unstorable {
			in.m.unstorable.WithLabelValues(via).Inc()
		}
		in.m.messages.WithLabelValues(via, res.outcome).Inc()
		in.log.Warn("message dead-lettered", "input", via, "reason", res.reason, "size", len(raw))
		return res, nil
	}
	in.m.messages.WithLabelValues(via, res.outcome).Inc()
	if res.verdict != "" {
		in.m.tracking.WithLabelValues(res.verdict).Inc()
	}
	for _, ev := range res.events {
		switch e := ev.(type) {
		case *schemas.ComplaintReceived:
			in.m.complaints.WithLabelValues(e.FeedbackType, strconv.FormatBool(e.Counted), e.TraceMethod, e.Trust).Inc()
			if e.Counted && e.Trusted && e.TraceMethod == schemas.TraceNone {
				in.m.unmatched.Inc()
			}
		case *schemas.BounceReceived:
			in.m.bounces.WithLabelValues(e.Category).Inc()
		case *schemas.AuthFailureReceived:
			in.m.authFailures.WithLabelValues(e.AuthFailure).Inc()
		case *schemas.DMARCRecord:
			in.m.reportEvents.WithLabelValues(string(reportfile.FormatDMARC)).Inc()
		case *schemas.TLSRPTResult:
			in.m.reportEvents.WithLabelValues(string(reportfile.FormatTLSRPT)).Inc()
		}
	}
	if res.complaint != nil {
		in.observeComplaint(ctx, res.complaint)
	}
	return res, nil
}

// eventHeadroom is room kept under NATS's max_payload for the message
// headers (Nats-Msg-Id, dead-letter reasons).
const eventHeadroom = 8 << 10

// maxPayload is what the NATS server accepts in one message (0 when not
// known: not connected).
func (in *Ingester) maxPayload() int64 {
	if in.set.JetStream == nil {
		return 0
	}
	if nc := in.set.JetStream.Conn(); nc != nil {
		return nc.MaxPayload()
	}
	return 0
}

// unstorable says why some event can never be published ("" when all can):
// it breaks the contract, or its encoding is bigger than NATS accepts.
// Checked before publishing anything, so a message is not half stored.
func (in *Ingester) unstorable(evs []schemas.Event) string {
	limit := in.maxPayload() - eventHeadroom
	for _, ev := range evs {
		h := ev.EventHeader()
		if err := schemas.Validate(ev); err != nil {
			return fmt.Sprintf("%s event %s is invalid: %v", h.Type, h.ID, err)
		}
		if limit > 0 {
			data, err := json.Marshal(ev)
			if err != nil {
				return fmt.Sprintf("%s event %s cannot be encoded: %v", h.Type, h.ID, err)
			}
			if int64(len(data)) > limit {
				return fmt.Sprintf("%s event %s is %d bytes, over what NATS accepts (max_payload %d less %d for headers)",
					h.Type, h.ID, len(data), limit+eventHeadroom, eventHeadroom)
			}
		}
	}
	return ""
}

// permanentPublishError says whether a publish failed for a reason no retry
// fixes: the message is over the server's max_payload or the stream's
// largest message.
func permanentPublishError(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// maxReasonBytes caps the reason header of a dead letter.
const maxReasonBytes = 1 << 10

// deadLetterLimit is how much of a message a dead letter keeps: at most
// maxDeadLetterBytes, and always under the server's max_payload with room
// for the headers, so the dead letter itself can be stored.
func (in *Ingester) deadLetterLimit() int {
	limit := int64(maxDeadLetterBytes)
	if mp := in.maxPayload(); mp > 0 {
		limit = min(limit, mp-eventHeadroom)
	}
	return int(max(limit, 1<<10))
}

// deadLetter stores a copy of a message in mailmon.dlq.fbl-ingester, with
// the reason, and waits for JetStream. A copy longer than the limit is cut,
// and the cut said in a header.
func (in *Ingester) deadLetter(ctx context.Context, raw []byte, via, reason string) error {
	if len(reason) > maxReasonBytes {
		reason = strings.ToValidUTF8(reason[:maxReasonBytes], "") + "..."
	}
	hdr := nats.Header{}
	hdr.Set(bus.HeaderDeadLetterReason, reason)
	hdr.Set(bus.HeaderDeadLetterWorker, WorkerName)
	hdr.Set(bus.HeaderDeadLetterTime, in.now().UTC().Format(time.RFC3339Nano))
	hdr.Set(headerDeadLetterInput, via)
	data := raw
	if limit := in.deadLetterLimit(); len(data) > limit {
		hdr.Set(headerDeadLetterOrigSize, strconv.Itoa(len(raw)))
		data = data[:limit]
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
