package silence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// Errors of Add and Expire.
var (
	ErrNotFound = errors.New("no such silence")
	ErrEnded    = errors.New("silence has already ended")
	ErrTooMany  = fmt.Errorf("the bucket holds %d silences already; expire some first", MaxSilences)
)

// Store reads and writes the silences of the alert_silences bucket and
// keeps an in-memory copy of the valid ones, current through a KV watch.
type Store struct {
	kv     jetstream.KeyValue
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.RWMutex
	byID   map[string]Silence
	synced bool

	refused     atomic.Uint64
	lastRefusal atomic.Pointer[string]
}

// Open binds the alert_silences bucket (declared in the topology; Open
// never creates it), starts watching it and returns once the silences
// stored now are loaded, or with ctx's error. Close stops the watch.
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("silences: bucket %s: %w", Bucket, err)
	}
	// The watch lives until Close, not until ctx ends: ctx bounds only the
	// wait for the first load.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("silences: watch %s: %w", Bucket, err)
	}
	s := &Store{kv: kv, cancel: cancel, done: make(chan struct{}), byID: map[string]Silence{}}
	loaded := make(chan struct{})
	go s.keepWatching(wctx, w, loaded)
	select {
	case <-loaded:
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("silences: load %s: %w", Bucket, ctx.Err())
	}
}

// Close stops the watch. The copy keeps what it held.
func (s *Store) Close() {
	s.cancel()
	<-s.done
}

// keepWatching applies the watch's updates; when the watch ends (its
// connection closed, a permission lost) it starts a new one, which
// delivers every current value again, after a growing pause.
func (s *Store) keepWatching(ctx context.Context, w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(s.done)
	delay := 100 * time.Millisecond
	for {
		if w != nil {
			s.follow(ctx, w, loaded)
			w.Stop()
			delay = 100 * time.Millisecond
		}
		s.mu.Lock()
		s.synced = false
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
		nw, err := s.kv.WatchAll(ctx)
		if err != nil {
			s.noteRefusal(fmt.Sprintf("watch: %v", err), false)
			w = nil
			continue
		}
		w = nw
	}
}

// follow reads one watch until it ends. The initial values are gathered
// apart and swapped in whole, so a re-established watch drops the silences
// deleted while it was down.
func (s *Store) follow(ctx context.Context, w jetstream.KeyWatcher, loaded chan struct{}) {
	fresh := map[string]Silence{}
	loading := true
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-w.Updates():
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		if e == nil { // every current value delivered
			s.mu.Lock()
			s.byID, s.synced = fresh, true
			s.mu.Unlock()
			loading = false
			select {
			case <-loaded:
			default:
				close(loaded)
			}
			continue
		}
		if loading {
			s.apply(fresh, e)
			continue
		}
		s.mu.Lock()
		s.apply(s.byID, e)
		s.mu.Unlock()
	}
}

// apply puts the entry's silence into m, or removes the key when it was
// deleted or its record is refused: a refused record mutes nothing.
func (s *Store) apply(m map[string]Silence, e jetstream.KeyValueEntry) {
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(m, key)
		return
	}
	sil, err := Unmarshal(e.Value())
	if err == nil && sil.ID != key {
		err = fmt.Errorf("record id %q stored under another key", truncate(sil.ID))
	}
	if _, held := m[key]; err == nil && !held && len(m) >= MaxSilences {
		err = fmt.Errorf("more than %d silences in the bucket", MaxSilences)
	}
	if err != nil {
		delete(m, key)
		s.noteRefusal(fmt.Sprintf("key %s: %v", truncate(key), err), true)
		return
	}
	m[key] = sil
}

func (s *Store) noteRefusal(why string, count bool) {
	if count {
		s.refused.Add(1)
	}
	s.lastRefusal.Store(&why)
}

// Refused returns how many stored records were refused since Open (each
// revision counts once) and the last reason a record or a watch failed.
func (s *Store) Refused() (count uint64, last string) {
	if p := s.lastRefusal.Load(); p != nil {
		last = *p
	}
	return s.refused.Load(), last
}

// Synced reports whether the watch is current: false from the moment a
// watch ends until a new one has delivered every value again. The copy
// keeps answering meanwhile, from what it last knew.
func (s *Store) Synced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced
}

// Silenced returns the silence that mutes the alert at now, if one does:
// of several, the one that ends last (the longest the alert stays muted),
// then the smallest id, so the answer does not depend on map order.
func (s *Store) Silenced(a *schemas.AlertRaised, now time.Time) (Silence, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best Silence
	found := false
	for _, sil := range s.byID {
		if !sil.Matches(a, now) {
			continue
		}
		if !found || sil.EndsAt.After(best.EndsAt) || (sil.EndsAt.Equal(best.EndsAt) && sil.ID < best.ID) {
			best, found = sil, true
		}
	}
	return best, found
}

// Stamp marks a firing alert Silenced when an active silence matches it at
// now, so the alert's record says it was raised during a silence. Workers
// that raise alerts call it just before publishing; a nil Store (the
// bucket could not be read) stamps nothing, and the notifier still checks
// the silences itself.
func (s *Store) Stamp(a *schemas.AlertRaised, now time.Time) {
	if s == nil || a.Status != schemas.AlertFiring {
		return
	}
	if _, ok := s.Silenced(a, now); ok {
		a.Silenced = true
	}
}

// OpenForStamping opens the store for a worker that raises alerts: alerts
// are still raised when the silences cannot be read (logged, and nil is
// returned, which stamps nothing), because a missing annotation must never
// cost an alert.
func OpenForStamping(ctx context.Context, js jetstream.JetStream, log *slog.Logger) *Store {
	// Bounded: a worker must not wait on the silences to start raising.
	openCtx, cancel := context.WithTimeout(ctx, stampOpenTimeout)
	defer cancel()
	s, err := Open(openCtx, js)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("silences cannot be read; alerts raised meanwhile are not marked silenced (the notifier still holds them back)", "error", err)
		}
		return nil
	}
	return s
}

// stampOpenTimeout bounds OpenForStamping's first load.
const stampOpenTimeout = 10 * time.Second

// Active returns the silences active at now, soonest ending first.
func (s *Store) Active(now time.Time) []Silence {
	return s.selectSorted(func(sil Silence) bool { return sil.Active(now) })
}

// List returns every silence held (pending, active and ended within
// Retention), soonest ending first. It reads the in-memory copy, which Open
// loaded from the bucket.
func (s *Store) List() []Silence {
	return s.selectSorted(func(Silence) bool { return true })
}

func (s *Store) selectSorted(keep func(Silence) bool) []Silence {
	s.mu.RLock()
	out := make([]Silence, 0, len(s.byID))
	for _, sil := range s.byID {
		if keep(sil) {
			out = append(out, sil)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Silence) int {
		if c := a.EndsAt.Compare(b.EndsAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Add stores a new silence and returns it as stored. An empty ID gets a
// new one (a UUIDv7); a zero StartsAt means now. Beyond Validate, a new
// silence must not have ended at now nor start more than MaxDuration after
// it. Silences that ended more than Retention ago are deleted first.
func (s *Store) Add(ctx context.Context, sil Silence, now time.Time) (Silence, error) {
	if sil.ID == "" {
		sil.ID = schemas.NewID()
	}
	if sil.StartsAt.IsZero() {
		sil.StartsAt = now
	}
	sil.StartsAt, sil.EndsAt = sil.StartsAt.UTC().Truncate(time.Millisecond), sil.EndsAt.UTC().Truncate(time.Millisecond)
	err := sil.Validate()
	switch {
	case err != nil:
	case !sil.EndsAt.After(now):
		err = errors.New("ends_at is not after now")
	case !sil.EndsAt.After(sil.StartsAt):
		err = errors.New("ends_at is not after starts_at")
	case sil.StartsAt.Sub(now) > MaxDuration:
		err = fmt.Errorf("starts more than %s from now", MaxDuration)
	}
	if err != nil {
		return Silence{}, fmt.Errorf("silence: %w", err)
	}
	if err := s.deleteEnded(ctx, now); err != nil {
		return Silence{}, err
	}
	s.mu.RLock()
	held := len(s.byID)
	s.mu.RUnlock()
	if held >= MaxSilences {
		return Silence{}, fmt.Errorf("silence: %w", ErrTooMany)
	}
	if _, err := s.kv.Create(ctx, sil.ID, sil.Marshal()); err != nil {
		return Silence{}, fmt.Errorf("silence %s: store: %w", sil.ID, err)
	}
	s.remember(sil)
	return sil, nil
}

// deleteEnded deletes the silences that ended more than Retention before
// now, each only if it is still the revision read.
func (s *Store) deleteEnded(ctx context.Context, now time.Time) error {
	for _, sil := range s.List() {
		if now.Sub(sil.EndsAt) <= Retention {
			continue
		}
		e, err := s.kv.Get(ctx, sil.ID)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return fmt.Errorf("silence %s: read: %w", sil.ID, err)
		}
		if err := s.kv.Delete(ctx, sil.ID, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("silence %s: delete ended: %w", sil.ID, err)
		}
		s.mu.Lock()
		delete(s.byID, sil.ID)
		s.mu.Unlock()
	}
	return nil
}

// Expire ends the silence id at now: it is rewritten with EndsAt = now
// (and StartsAt = now if it had not started), only if nobody changed it
// since it was read. It returns the silence as stored.
func (s *Store) Expire(ctx context.Context, id string, now time.Time) (Silence, error) {
	if id == "" || len(id) > MaxIDBytes {
		return Silence{}, fmt.Errorf("silence %q: %w", truncate(id), ErrNotFound)
	}
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Silence{}, fmt.Errorf("silence %s: %w", truncate(id), ErrNotFound)
	}
	if err != nil {
		return Silence{}, fmt.Errorf("silence %s: read: %w", id, err)
	}
	sil, err := Unmarshal(e.Value())
	if err != nil {
		// A refused record mutes nothing already; deleting it is the way
		// to clear it.
		if derr := s.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision())); derr != nil {
			return Silence{}, fmt.Errorf("silence %s: refused record (%v) could not be deleted: %w", id, err, derr)
		}
		return Silence{}, fmt.Errorf("silence %s: refused record deleted: %w", id, err)
	}
	if !now.Before(sil.EndsAt) {
		return sil, fmt.Errorf("silence %s: %w at %s", id, ErrEnded, sil.EndsAt.Format(time.RFC3339))
	}
	now = now.UTC().Truncate(time.Millisecond)
	sil.EndsAt = now
	if sil.StartsAt.After(now) {
		sil.StartsAt = now
	}
	if _, err := s.kv.Update(ctx, id, sil.Marshal(), e.Revision()); err != nil {
		return Silence{}, fmt.Errorf("silence %s: store: %w", id, err)
	}
	s.remember(sil)
	return sil, nil
}

// remember puts what this store just wrote into the copy at once, so the
// writer's next question sees it; the watch brings the same value later.
func (s *Store) remember(sil Silence) {
	s.mu.Lock()
	s.byID[sil.ID] = sil
	s.mu.Unlock()
}
