package policyservice

import (
	"math"
	"slices"
	"sync"
	"time"
)

// suppressSet is the service's copy of the suppression bucket, reduced to
// what an answer needs: for each entry the 64-bit hash of its key
// (suppression.SetKey) and its expiry in Unix seconds (0: never). Nothing
// else is kept: the answer never says why a recipient is suppressed, so
// the reason, the source events and the address are not needed here. At
// ten million entries that is about 12 bytes of data per entry, plus the
// map's own overhead.
//
// One goroutine (the watch) writes it; requests read it under the read
// lock. The watch reads the map without the lock (it is the only writer),
// which is how the snapshot copy is taken without holding readers up.
type suppressSet struct {
	mu      sync.RWMutex
	entries map[uint64]uint32
	// revision is the bucket revision the entries are at: the last one
	// applied, or the snapshot's.
	revision uint64
	loaded   bool // from the snapshot or the whole bucket
	live     bool // the watch is up and has caught up with the bucket
}

// suppressPair is one entry as the snapshot lays it out.
type suppressPair struct {
	key    uint64
	expiry uint32
}

// expirySeconds turns an entry's expiry into the set's form: 0 for never,
// else the Unix second it ends at, rounded down, so an entry never counts
// after its expiry. ok is false when it has already expired at now.
func expirySeconds(expires, now time.Time) (uint32, bool) {
	if expires.IsZero() {
		return 0, true
	}
	if !now.Before(expires) {
		return 0, false
	}
	sec := expires.Unix()
	switch {
	case sec <= now.Unix():
		return 0, false // ends within the current second
	case sec > math.MaxUint32:
		return math.MaxUint32, true // past 2106: as good as never
	}
	return uint32(sec), true
}

// active reports whether key is suppressed at now (Unix seconds).
func (s *suppressSet) active(key uint64, now int64) bool {
	s.mu.RLock()
	exp, ok := s.entries[key]
	s.mu.RUnlock()
	return ok && (exp == 0 || now < int64(exp))
}

// Len is the number of entries held (some may have expired).
func (s *suppressSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

func (s *suppressSet) status() (revision uint64, loaded, live bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision, s.loaded, s.live
}

// replace makes entries the set, at revision.
func (s *suppressSet) replace(entries map[uint64]uint32, revision uint64, live bool) {
	s.mu.Lock()
	s.entries, s.revision, s.loaded, s.live = entries, revision, true, live
	s.mu.Unlock()
}

// apply puts (keep) or removes one entry, at revision.
func (s *suppressSet) apply(key uint64, expiry uint32, keep bool, revision uint64) {
	s.mu.Lock()
	if keep {
		s.entries[key] = expiry
	} else {
		delete(s.entries, key)
	}
	s.revision = max(s.revision, revision)
	s.mu.Unlock()
}

func (s *suppressSet) setLive(live bool) {
	s.mu.Lock()
	s.live = live
	s.mu.Unlock()
}

// pairs copies the entries in force at now, unsorted, with the revision
// they are at. Only the writer may call it without the lock.
func (s *suppressSet) pairs(now int64) ([]suppressPair, uint64) {
	out := make([]suppressPair, 0, len(s.entries))
	for k, exp := range s.entries {
		if exp == 0 || now < int64(exp) {
			out = append(out, suppressPair{k, exp})
		}
	}
	return out, s.revision
}

// sortPairs sorts pairs by key, the snapshot's order.
func sortPairs(pairs []suppressPair) {
	slices.SortFunc(pairs, func(a, b suppressPair) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
}
