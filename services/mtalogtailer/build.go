package mtalogtailer

import (
	"errors"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bounceclass"
	"github.com/mailmon/mailmon/services/internal/logfollow"
	"github.com/mailmon/mailmon/services/internal/postfixlog"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// deliveryEvents turns a delivery record into its events: one, or for an
// expiry one per recipient still pending.
func (t *Tailer) deliveryEvents(d *postfixlog.Delivery, line logfollow.Line, ft *fileTailer) []*schemas.DeliveryAttempted {
	status, ok := eventStatus(d.Status)
	if !ok {
		t.metrics.skipped.WithLabelValues("status_" + d.Status).Inc()
		return nil
	}
	recipients := []string{d.Recipient}
	if d.Recipient == "" {
		recipients = d.Pending
	}
	if len(recipients) == 0 {
		t.metrics.skipped.WithLabelValues("no_recipient").Inc()
		return nil
	}
	tr := t.verify(d.TrackingHeader, d.Time, ft)
	if status != schemas.StatusSent && !d.Classification.Matched {
		t.metrics.unclassified.Inc()
		if ft.samples.due("unclassified") {
			ft.log.Info("reply matched no classifier rule (sampled)", "dsn", d.DSN, "reply", clip(d.Reply, 300))
		}
	}
	out := make([]*schemas.DeliveryAttempted, 0, len(recipients))
	for _, rcpt := range recipients {
		ev := t.newEvent(line, rcpt, d.Time, tr)
		t.applyLogHeader(ev, d.LogHeader, tr)
		applyContext(ev, d.MessageContext)
		if rcpt == d.Recipient {
			ev.OrigRecipient = d.OrigRecipient
		}
		ev.Status, ev.DSN = status, d.DSN
		ev.ReplyCode = clampU16(d.ReplyCode)
		ev.Reply = d.Reply
		classify(ev, d.Classification)
		ev.RelayHost, ev.RelayIP, ev.RelayPort = d.RelayHost, d.RelayIP, clampU16(d.RelayPort)
		ev.ConnUse = clampU32(int64(d.ConnUse))
		ev.DelayMs = millis(d.Delay)
		ev.DelayBeforeQmgrMs = millis(d.Delays[0])
		ev.DelayInQmgrMs = millis(d.Delays[1])
		ev.DelayConnSetupMs = millis(d.Delays[2])
		ev.DelayTransmissionMs = millis(d.Delays[3])
		ev.Provider = t.providers.lookup(ev.RecipientDomain, d.RelayHost)
		out = append(out, ev)
	}
	return out
}

// rejectEvents turns a refusal by our own MTA (NOQUEUE) into a "rejected"
// attempt for its recipient.
func (t *Tailer) rejectEvents(r *postfixlog.Reject, line logfollow.Line, ft *fileTailer) []*schemas.DeliveryAttempted {
	if r.Recipient == "" {
		t.metrics.skipped.WithLabelValues("reject_without_recipient").Inc()
		return nil
	}
	tr := t.verify(r.TrackingHeader, r.Time, ft)
	ev := t.newEvent(line, r.Recipient, r.Time, tr)
	t.applyLogHeader(ev, r.LogHeader, tr)
	applyContext(ev, r.MessageContext)
	if r.SenderSet {
		ev.Sender = r.Sender
	}
	if r.ClientIP != "" {
		ev.ClientHost, ev.ClientIP = r.ClientHost, r.ClientIP
	}
	ev.Status, ev.DSN = schemas.StatusRejected, r.DSN
	ev.ReplyCode = clampU16(r.ReplyCode)
	ev.Reply = r.Reply
	classify(ev, r.Classification)
	ev.DelayMs, ev.DelayBeforeQmgrMs, ev.DelayInQmgrMs, ev.DelayConnSetupMs, ev.DelayTransmissionMs = -1, -1, -1, -1, -1
	ev.Provider = t.providers.lookup(ev.RecipientDomain, "")
	return []*schemas.DeliveryAttempted{ev}
}

// applyLogHeader fills what an event takes from the header of its line:
// which MTA, host, program and daemon wrote it, the queue id, and the
// sending IP they stand for by the source-IP rules (sourceIPs.lookup).
func (t *Tailer) applyLogHeader(ev *schemas.DeliveryAttempted, h postfixlog.LogHeader, tr trackResult) {
	ev.MTA, ev.MTAHost, ev.MTAInstance, ev.Agent = h.MTA, t.mtaHost(h.Host), h.Program, h.Agent
	ev.QueueID = h.QueueID
	ev.SourceIP = t.sourceIPs.lookup(h.Host, h.Program, h.Agent, tr.fields.Source)
}

// newEvent fills what every event of a line has: the header with the id
// from the line's place, the recipient and the tracking verdict.
func (t *Tailer) newEvent(line logfollow.Line, rcpt string, at time.Time, tr trackResult) *schemas.DeliveryAttempted {
	ev := &schemas.DeliveryAttempted{}
	ev.Header = schemas.Header{
		ID:     eventID(line.FileID, line.Offset, rcpt, at),
		Type:   t.kind.Type,
		Time:   at.UTC().Truncate(time.Millisecond),
		Source: t.set.Source,
	}
	ev.Recipient = rcpt
	ev.RecipientDomain = domainOf(rcpt)
	ev.TrackingStatus = tr.status
	if tr.status == schemas.TrackingValid {
		ev.TrackingID = tr.fields.MessageID
		ev.Customer = tr.fields.Customer
	}
	return ev
}

// verify checks a tracking header and counts the verdict.
func (t *Tailer) verify(value string, at time.Time, ft *fileTailer) trackResult {
	if at.IsZero() {
		at = time.Now()
	}
	tr := verifyTracking(t.track, value, at)
	t.metrics.tracking.WithLabelValues(tr.status).Inc()
	if tr.status == schemas.TrackingInvalid && ft.samples.due("tracking") {
		// The reason only: the header value itself may be forged junk.
		ft.log.Info("tracking header refused (sampled)", "reason", trackingReason(tr.err))
	}
	return tr
}

// trackingReason names why a header was refused, without its contents.
func trackingReason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{worker.ErrNoTrackingKey, "no_keys"},
		{tracking.ErrMalformed, "malformed"},
		{tracking.ErrVersion, "version"},
		{tracking.ErrUnknownKey, "unknown_key"},
		{tracking.ErrTruncatedMAC, "truncated_mac"},
		{tracking.ErrTampered, "tampered"},
		{tracking.ErrFuture, "future"},
		{tracking.ErrExpired, "expired"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

func classify(ev *schemas.DeliveryAttempted, c bounceclass.Result) {
	ev.Reason, ev.Category, ev.Signature = c.Reason, c.Category, c.Signature
}

// mtaHost is the log's host name, or ours for a log without one (Exim's
// main log).
func (t *Tailer) mtaHost(logged string) string {
	if logged != "" {
		return logged
	}
	return t.host
}
