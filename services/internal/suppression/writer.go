package suppression

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// Publisher publishes an event and returns once JetStream stored it
// (bus.Publisher does).
type Publisher interface {
	Publish(ctx context.Context, ev schemas.Event) error
}

// Writer is the one way entries are added and removed: by the suppressor
// and by `mailmon suppression`. Each change is a bucket write and an
// event, in an order that makes a retry after a crash between the two
// finish the change without a second entry or a second event: the event
// ids are derived from what caused the change, so a republished event is
// the same event (JetStream drops it within the duplicate window,
// ClickHouse merges it by id after).
type Writer struct {
	KV     jetstream.KeyValue
	Pub    Publisher
	Source schemas.Source
}

// ErrChanged is returned when the entry changed between reading and
// writing it (another writer); the caller retries.
var ErrChanged = errors.New("suppression: entry changed concurrently")

// Add stores e and publishes its suppression.added event. e.AddedID must
// be derived from what caused it (AddedID): an entry already stored with
// that id is only published again. An entry already stored with another
// id is replaced when replace says so, else left (added is false).
func (w Writer) Add(ctx context.Context, e Entry, replace func(old Entry) bool) (added bool, err error) {
	if e.AddedID == "" || e.Key == "" {
		return false, errors.New("suppression: entry without key or added id")
	}
	old, rev, found, err := Get(ctx, w.KV, e.Key)
	if err != nil {
		return false, err
	}
	switch {
	case found && old.AddedID == e.AddedID:
		e = old // stored before a crash: publish it again
	case found && (replace == nil || !replace(old)):
		return false, nil
	default:
		if _, err := Put(ctx, w.KV, e, rev); err != nil {
			if isConflict(err) {
				return false, ErrChanged
			}
			return false, err
		}
	}
	ev := e.Added()
	if err := w.publish(ctx, ev, e.AddedID, e.Created); err != nil {
		return false, fmt.Errorf("suppression: entry %s stored, its event not published (a retry publishes it): %w", e.Key, err)
	}
	return true, nil
}

// Remove ends the entry under key, if it holds one that may go (keep
// returns false to leave it): the suppression.removed event is published
// first, then the key deleted, so a retry after a crash finds the entry
// still there and publishes the same event again. The event id is derived
// from the entry's added id, the cause and causeID (the delivery that
// cleared it, or a unique id for an operator's removal).
func (w Writer) Remove(ctx context.Context, key, cause, causeID string, now time.Time, sources []string, operator, note string,
	keep func(Entry) bool) (removed Entry, ok bool, err error) {
	e, rev, found, err := Get(ctx, w.KV, key)
	if err != nil || !found {
		return Entry{}, false, err
	}
	if keep != nil && keep(e) {
		return e, false, nil
	}
	ev := e.Removed(cause, now, sources, operator, note)
	id := enforcement.StableID(now, "suppression-removed", key, e.AddedID, cause, causeID)
	if err := w.publish(ctx, ev, id, now); err != nil {
		return Entry{}, false, err
	}
	if err := Delete(ctx, w.KV, key, rev); err != nil {
		if isConflict(err) {
			return Entry{}, false, ErrChanged
		}
		return Entry{}, false, err
	}
	return e, true, nil
}

// AddedID derives the id of an entry's suppression.added event from its
// key and the events that caused it; created is the time the id starts
// with (UUIDv7).
func AddedID(created time.Time, key string, causes ...string) string {
	return enforcement.StableID(created, append([]string{"suppression-added", key}, causes...)...)
}

func (w Writer) publish(ctx context.Context, ev schemas.Event, id string, at time.Time) error {
	if err := schemas.Stamp(ev, w.Source, at); err != nil {
		return err
	}
	ev.EventHeader().ID = id
	return w.Pub.Publish(ctx, ev)
}

// isConflict reports a failed Create/Update/Delete because the key is not
// at the expected revision.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}
