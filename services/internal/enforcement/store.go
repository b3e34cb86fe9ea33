package enforcement

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// List returns the records in the bucket that are in force at now, sorted
// by subject. Entries that do not decode are returned as errors joined
// into err, after the good ones.
func List(ctx context.Context, kv jetstream.KeyValue, now time.Time) ([]Record, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("enforcement: list keys: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []Record
	var errs []error
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired or lifted between listing and reading
		}
		if err != nil {
			return nil, fmt.Errorf("enforcement: get %s: %w", k, err)
		}
		r, err := Unmarshal(e.Value())
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", k, err))
			continue
		}
		if r.Active(now) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out, errors.Join(errs...)
}

// Get returns the record in force for subject, with its revision; found is
// false when there is none.
func Get(ctx context.Context, kv jetstream.KeyValue, s Subject, now time.Time) (r Record, revision uint64, found bool, err error) {
	e, err := kv.Get(ctx, s.Key())
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Record{}, 0, false, nil
	}
	if err != nil {
		return Record{}, 0, false, fmt.Errorf("enforcement: get %s: %w", s, err)
	}
	r, err = Unmarshal(e.Value())
	if err != nil {
		return Record{}, 0, false, err
	}
	return r, e.Revision(), r.Active(now), nil
}

// Publisher is what Lift needs to publish the lift event.
type Publisher interface {
	Publish(ctx context.Context, ev schemas.Event) error
}

// ErrNotEnforced is returned by Lift when the subject has no decision in
// force.
var ErrNotEnforced = errors.New("no decision in force")

// Lift ends the decision in force for subject by hand: it publishes the
// decision.lift event first and then deletes the key (only if it still
// holds the same decision). If the delete fails after the event was
// stored, the complaint-evaluator that owns the subject deletes the key
// when it reads the lift event, so the lift is never lost half-way.
func Lift(ctx context.Context, kv jetstream.KeyValue, pub Publisher, s Subject, by, note string, src schemas.Source, now time.Time) (schemas.DecisionLift, error) {
	r, rev, found, err := Get(ctx, kv, s, now)
	if err != nil {
		return schemas.DecisionLift{}, err
	}
	if !found {
		return schemas.DecisionLift{}, fmt.Errorf("%s: %w", s, ErrNotEnforced)
	}
	ev := schemas.DecisionLift{EndedDecision: r.Ended(now), LiftedBy: by, Note: note}
	if err := schemas.Stamp(&ev, src, now); err != nil {
		return schemas.DecisionLift{}, err
	}
	ev.ID = StableID(now, "lift", r.DecisionID)
	if err := pub.Publish(ctx, &ev); err != nil {
		return schemas.DecisionLift{}, fmt.Errorf("publish lift: %w", err)
	}
	// The evaluator may rewrite the record between our read and delete
	// (its evidence, an escalation); delete it as long as it is still the
	// decision we lifted.
	for attempt := 0; ; attempt++ {
		err := kv.Delete(ctx, s.Key(), jetstream.LastRevision(rev))
		if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
			return ev, nil
		}
		var current Record
		var found bool
		if attempt < 3 && (errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)) {
			current, rev, found, err = Get(ctx, kv, s, now)
			if err == nil && (!found || current.DecisionID != r.DecisionID) {
				return ev, nil // gone, or a newer decision that this lift did not see
			}
			if err == nil {
				continue
			}
		}
		return ev, fmt.Errorf("lift event published; deleting key %s failed (the complaint-evaluator will delete it): %w", s.Key(), err)
	}
}
