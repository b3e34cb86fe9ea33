package suppression

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Get returns the entry under key with its revision; found is false when
// there is none.
func Get(ctx context.Context, kv jetstream.KeyValue, key string) (e Entry, revision uint64, found bool, err error) {
	kve, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Entry{}, 0, false, nil
	}
	if err != nil {
		return Entry{}, 0, false, fmt.Errorf("suppression: get %s: %w", key, err)
	}
	e, err = Unmarshal(kve.Value())
	if err != nil {
		return Entry{}, 0, false, fmt.Errorf("suppression: %s: %w", key, err)
	}
	return e, kve.Revision(), true, nil
}

// Put writes e under its key if the key still is at revision (0: absent),
// so two writers never overwrite each other unseen; the new revision is
// returned.
func Put(ctx context.Context, kv jetstream.KeyValue, e Entry, revision uint64) (uint64, error) {
	var rev uint64
	var err error
	if revision == 0 {
		rev, err = kv.Create(ctx, e.Key, e.Marshal())
	} else {
		rev, err = kv.Update(ctx, e.Key, e.Marshal(), revision)
	}
	if err != nil {
		return 0, fmt.Errorf("suppression: put %s: %w", e.Key, err)
	}
	return rev, nil
}

// Delete removes key if it still is at revision.
func Delete(ctx context.Context, kv jetstream.KeyValue, key string, revision uint64) error {
	if err := kv.Delete(ctx, key, jetstream.LastRevision(revision)); err != nil {
		return fmt.Errorf("suppression: delete %s: %w", key, err)
	}
	return nil
}
