package policyservice

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// entry is one record as the service holds it: decoded, checked, and
// with its Postfix answer already built. Only records that passed the
// checks become entries.
type entry struct {
	key      string
	revision uint64
	value    []byte // the record as stored in the bucket, for the snapshot
	rec      enforcement.Record
	answer   string
}

// Mode says where the state's records come from and how fresh they are.
type Mode int

const (
	// ModeEmpty: nothing loaded yet, neither a snapshot nor the bucket.
	ModeEmpty Mode = iota
	// ModeLive: the live watch loaded the bucket and is up.
	ModeLive
	// ModeRecent: no live watch (NATS unreachable, the watch broken, or
	// started from the snapshot) for less than stale_after.
	ModeRecent
	// ModeStale: no live watch for stale_after or longer.
	ModeStale
)

func (m Mode) String() string {
	return [...]string{"empty", "live", "recent", "stale"}[m]
}

// State is the policy service's copy of the enforcement bucket, kept
// current by a KV watch: a new decision is answered from the moment the
// watch delivers it, with no polling and no per-request round trip.
// Before the watch has loaded the bucket it may hold the snapshot's
// records.
type State struct {
	mu        sync.RWMutex
	bySubject map[string]*entry
	byKey     map[string]*entry
	loaded    bool // from the snapshot or the watch
	live      bool // the watch loaded the bucket and is still up
	// since is when the state was last seen not live (zero while live).
	since  time.Time
	synced chan struct{} // closed after the watch's first full load

	connected func() bool // the NATS connection is up
	now       func() time.Time
	log       *slog.Logger
	// read decodes and checks a bucket value; nil means the value is not
	// to be answered (it has been counted and alerted). deleted tells it
	// a key is gone.
	read    func(key string, revision uint64, value []byte) *entry
	deleted func(key string)
	updates func() // called after every change (metrics, the snapshot)
}

func newState(connected func() bool, now func() time.Time, log *slog.Logger) *State {
	return &State{bySubject: map[string]*entry{}, byKey: map[string]*entry{}, synced: make(chan struct{}),
		connected: connected, now: now, log: log,
		read:    func(string, uint64, []byte) *entry { return nil },
		deleted: func(string) {}}
}

// Synced is closed once the watch has loaded the bucket once.
func (s *State) Synced() <-chan struct{} { return s.synced }

// lookup returns the entry in force at now for subject.
func (s *State) lookup(subject string, now time.Time) (*entry, bool) {
	s.mu.RLock()
	e, ok := s.bySubject[subject]
	s.mu.RUnlock()
	if !ok || !e.rec.Active(now) {
		return nil, false
	}
	return e, true
}

// Len is the number of records held (some may have expired).
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.bySubject)
}

// Mode reports the state's freshness at now.
func (s *State) Mode(now time.Time, staleAfter time.Duration) Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.loaded:
		return ModeEmpty
	case s.live && s.connected():
		s.since = time.Time{}
		return ModeLive
	case s.since.IsZero():
		s.since = now
	}
	if now.Sub(s.since) < staleAfter {
		return ModeRecent
	}
	return ModeStale
}

// Since is when the state was last seen not live; zero while live.
func (s *State) Since() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.since
}

// entries returns the records held, sorted by key, and whether they come
// from the live watch.
func (s *State) entries() ([]*entry, bool) {
	s.mu.RLock()
	out := make([]*entry, 0, len(s.byKey))
	for _, e := range s.byKey {
		out = append(out, e)
	}
	live := s.live
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, live
}

// loadSnapshot makes the snapshot's records the state, as not live: its
// stale_after clock starts now. Only a state that nothing was loaded into
// takes it.
func (s *State) loadSnapshot(values []snapshotRecord) {
	byKey, bySubject := map[string]*entry{}, map[string]*entry{}
	for _, v := range values {
		if e := s.read(v.Key, v.Revision, v.Record); e != nil {
			put(byKey, bySubject, e)
		}
	}
	s.mu.Lock()
	if !s.loaded {
		s.byKey, s.bySubject = byKey, bySubject
		s.loaded, s.live, s.since = true, false, s.now()
	}
	s.mu.Unlock()
	s.changed()
}

// Run watches the bucket until ctx ends, re-establishing the watch with
// backoff whenever it breaks. A re-established watch loads the whole
// bucket again and replaces the state in one step, so answers never come
// from a half-loaded copy.
func (s *State) Run(ctx context.Context, kv jetstream.KeyValue) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.watch(ctx, kv)
		if ctx.Err() != nil {
			return
		}
		s.setLive(false)
		s.log.Warn("enforcement watch ended; re-establishing", "error", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *State) setLive(ok bool) {
	s.mu.Lock()
	s.live = ok
	if !ok && s.since.IsZero() {
		s.since = s.now()
	}
	s.mu.Unlock()
}

type watchEnded struct{ reason string }

func (e watchEnded) Error() string { return e.reason }

func (s *State) watch(ctx context.Context, kv jetstream.KeyValue) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchAll(wctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	freshKeys, freshSubjects := map[string]*entry{}, map[string]*entry{}
	loading := true
	for {
		var kve jetstream.KeyValueEntry
		var ok bool
		select {
		case kve, ok = <-w.Updates():
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return watchEnded{"watch closed"}
		}
		if kve == nil { // the initial values are all in
			s.mu.Lock()
			s.byKey, s.bySubject = freshKeys, freshSubjects
			s.loaded, s.live, s.since = true, true, time.Time{}
			s.mu.Unlock()
			loading = false
			select {
			case <-s.synced:
			default:
				close(s.synced)
			}
			s.changed()
			continue
		}
		// Decoded and checked outside the lock: answers never wait for it.
		var e *entry
		if kve.Operation() == jetstream.KeyValuePut {
			e = s.read(kve.Key(), kve.Revision(), kve.Value())
		} else {
			s.deleted(kve.Key())
		}
		if loading {
			replace(freshKeys, freshSubjects, kve.Key(), e)
			continue
		}
		s.mu.Lock()
		replace(s.byKey, s.bySubject, kve.Key(), e)
		s.mu.Unlock()
		s.changed()
	}
}

func (s *State) changed() {
	if s.updates != nil {
		s.updates()
	}
}

// replace makes e the record under key; nil (a delete, or a record that
// may not be answered) leaves the key without one, as if it had none.
func replace(byKey, bySubject map[string]*entry, key string, e *entry) {
	if old, ok := byKey[key]; ok {
		delete(byKey, key)
		if bySubject[old.rec.Subject] == old {
			delete(bySubject, old.rec.Subject)
		}
	}
	if e != nil {
		put(byKey, bySubject, e)
	}
}

func put(byKey, bySubject map[string]*entry, e *entry) {
	byKey[e.key] = e
	bySubject[e.rec.Subject] = e
}
