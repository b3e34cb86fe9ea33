package policyservice

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// State is the policy service's copy of the enforcement bucket, kept
// current by a KV watch: a new decision is answered from the moment the
// watch delivers it, with no polling and no per-request round trip.
type State struct {
	mu      sync.RWMutex
	records map[string]enforcement.Record // by subject
	subject map[string]string             // KV key → subject
	synced  chan struct{}                 // closed after the first full load
	// healthy is false while the watch is being re-established; since is
	// when that started.
	healthy bool
	since   time.Time
	// connected reports whether the NATS connection is up.
	connected func() bool
	log       *slog.Logger
	updates   func() // called after every change (metrics, tests)
}

// NewState returns an empty state, not yet loaded.
func NewState(connected func() bool, log *slog.Logger) *State {
	if connected == nil {
		connected = func() bool { return true }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &State{records: map[string]enforcement.Record{}, subject: map[string]string{}, synced: make(chan struct{}), connected: connected, log: log}
}

// Synced is closed once the bucket has been loaded once.
func (s *State) Synced() <-chan struct{} { return s.synced }

// Lookup returns the record in force at now for subject.
func (s *State) Lookup(subject string, now time.Time) (enforcement.Record, bool) {
	s.mu.RLock()
	r, ok := s.records[subject]
	s.mu.RUnlock()
	if !ok || !r.Active(now) {
		return enforcement.Record{}, false
	}
	return r, true
}

// Len is the number of records held (some may have expired).
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records)
}

// Usable reports whether answers may be given from the state at now: it
// was loaded, and the watch and the NATS connection are up, or went down
// less than staleAfter ago.
func (s *State) Usable(now time.Time, staleAfter time.Duration) bool {
	select {
	case <-s.synced:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.healthy && s.connected()
	switch {
	case ok:
		s.since = time.Time{}
		return true
	case s.since.IsZero():
		s.since = now
	}
	return now.Sub(s.since) < staleAfter
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
		s.setHealthy(false)
		s.log.Warn("enforcement watch ended; re-establishing", "error", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *State) setHealthy(ok bool) {
	s.mu.Lock()
	s.healthy = ok
	if !ok && s.since.IsZero() {
		s.since = time.Now()
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
	fresh := map[string]enforcement.Record{}
	freshKeys := map[string]string{}
	loading := true
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-w.Updates():
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return watchEnded{"watch closed"}
		}
		if e == nil { // the initial values are all in
			s.mu.Lock()
			s.records, s.subject = fresh, freshKeys
			s.healthy, s.since = true, time.Time{}
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
		if loading {
			apply(fresh, freshKeys, e, s.log)
			continue
		}
		s.mu.Lock()
		apply(s.records, s.subject, e, s.log)
		s.mu.Unlock()
		s.changed()
	}
}

func (s *State) changed() {
	if s.updates != nil {
		s.updates()
	}
}

// apply folds one watch entry into records.
func apply(records map[string]enforcement.Record, subjects map[string]string, e jetstream.KeyValueEntry, log *slog.Logger) {
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		if subj, ok := subjects[key]; ok {
			delete(records, subj)
			delete(subjects, key)
		}
		return
	}
	r, err := enforcement.Unmarshal(e.Value())
	if err != nil {
		log.Warn("ignoring undecodable enforcement entry", "key", key, "error", err)
		return
	}
	if old, ok := subjects[key]; ok && old != r.Subject {
		delete(records, old)
	}
	records[r.Subject] = r
	subjects[key] = r.Subject
}
