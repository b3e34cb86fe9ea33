package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// Headers of a dead letter. The data is the original message's bytes,
// unchanged, so it can be inspected or republished as it was.
const (
	HeaderDeadLetterReason     = "Mailmon-Dead-Letter-Reason"
	HeaderDeadLetterSubject    = "Mailmon-Dead-Letter-Subject"
	HeaderDeadLetterStream     = "Mailmon-Dead-Letter-Stream"
	HeaderDeadLetterSequence   = "Mailmon-Dead-Letter-Sequence"
	HeaderDeadLetterDeliveries = "Mailmon-Dead-Letter-Deliveries"
	HeaderDeadLetterWorker     = "Mailmon-Dead-Letter-Worker"
	HeaderDeadLetterTime       = "Mailmon-Dead-Letter-Time"
	// HeaderDeadLetterMsgID keeps the original Nats-Msg-Id (the event id),
	// which cannot travel under its own name: the DLQ stream would use it
	// for its own duplicate detection.
	HeaderDeadLetterMsgID = "Mailmon-Dead-Letter-Msg-Id"
)

// maxReasonBytes keeps a dead letter's reason readable and its header small;
// handlers that wrap errors deeply can produce kilobytes of text.
const maxReasonBytes = 1024

// DeadLetterSubject returns the subject a worker's dead letters go to.
func DeadLetterSubject(worker string) string {
	return schemas.SubjectDeadLetterPrefix + worker
}

// deadLetterMsgID names a dead letter after the message it copies, so a copy
// made again (after a lost Term, or a restart) is dropped by the DLQ stream.
// The worker is part of it because two workers may dead-letter the same
// stream message into one DLQ stream.
func deadLetterMsgID(worker, stream string, seq uint64) string {
	return "dlq." + worker + "." + stream + "." + strconv.FormatUint(seq, 10)
}

// deadLetterHeader builds the dead letter's headers: the original headers
// except the Nats-* ones (the server acts on those: a copied Nats-Rollup or
// Nats-Expected-Stream would purge or reject), then the Mailmon-Dead-Letter-*
// description.
func deadLetterHeader(worker string, m *Msg, reason string, now time.Time) nats.Header {
	hdr := make(nats.Header, len(m.Header)+8)
	for k, v := range m.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		hdr[k] = append([]string(nil), v...)
	}
	if id := m.Header.Get("Nats-Msg-Id"); id != "" {
		hdr.Set(HeaderDeadLetterMsgID, id)
	}
	hdr.Set(HeaderDeadLetterReason, headerSafe(reason, maxReasonBytes))
	hdr.Set(HeaderDeadLetterSubject, m.Subject)
	hdr.Set(HeaderDeadLetterStream, m.Stream)
	hdr.Set(HeaderDeadLetterSequence, strconv.FormatUint(m.StreamSeq, 10))
	hdr.Set(HeaderDeadLetterDeliveries, strconv.FormatUint(m.Deliveries, 10))
	hdr.Set(HeaderDeadLetterWorker, worker)
	hdr.Set(HeaderDeadLetterTime, now.UTC().Format(time.RFC3339Nano))
	return hdr
}

// headerSafe makes s fit in one header value: line breaks and other control
// characters would end the header or corrupt the protocol, so they become
// spaces; invalid UTF-8 becomes U+FFFD; more than max bytes is cut at a rune
// boundary and marked with an ellipsis.
func headerSafe(s string, max int) string {
	const ellipsis = "…"
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	clean = strings.TrimSpace(clean)
	if len(clean) <= max {
		return clean
	}
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + ellipsis
}

// DeadLetterMsg copies a JetStream message that a worker consuming on its
// own (without Consume) cannot process to mailmon.dlq.<worker>, with the
// same headers and message id Consume uses, and then terminates it. If the
// copy cannot be stored the original is left untouched and the error is
// returned, so the caller can nak it and try again later; a Term that fails
// after the copy is stored is reported too, but the dead letter stands (a
// redelivery dead-letters it again and the DLQ stream drops the copy).
func DeadLetterMsg(ctx context.Context, pub *Publisher, worker string, raw jetstream.Msg, cause error) error {
	if pub == nil || raw == nil || cause == nil {
		return errors.New("bus: dead letter: publisher, message and cause are required")
	}
	if !workerName.MatchString(worker) {
		return fmt.Errorf("bus: dead letter: worker %q is not a kebab-case name", worker)
	}
	meta, err := raw.Metadata()
	if err != nil {
		return fmt.Errorf("bus: dead letter: not a JetStream delivery: %w", err)
	}
	m := msgOf(raw, meta)
	reason := headerSafe(cause.Error(), maxReasonBytes)
	id := deadLetterMsgID(worker, m.Stream, m.StreamSeq)
	if err := pub.PublishRaw(ctx, DeadLetterSubject(worker), id, m.Data, deadLetterHeader(worker, m, reason, time.Now())); err != nil {
		return fmt.Errorf("bus: dead letter of %s seq %d not stored: %w", m.Stream, m.StreamSeq, err)
	}
	if err := raw.Term(); err != nil {
		return fmt.Errorf("bus: dead letter of %s seq %d stored, but terminating the original failed: %w", m.Stream, m.StreamSeq, err)
	}
	return nil
}
