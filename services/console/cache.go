package console

import (
	"sync"
	"time"
)

// baselineTTL is how long a baseline answer is reused. Its days are over;
// only events that arrive late (a backlog stored after an outage) change
// it, and they show within this time.
const baselineTTL = 10 * time.Minute

// baselineEntries caps the cache: one entry per first day, view and
// filters asked for recently.
const baselineEntries = 256

type baselineKey struct {
	firstDay                         time.Time
	by, provider, sourceIP, customer string
}

type baselineEntry struct {
	rates map[cellKey]dailyRates
	at    time.Time
}

// baselineCache keeps recent baseline answers. The zero value is not
// usable; a nil *baselineCache caches nothing.
type baselineCache struct {
	mu      sync.Mutex
	entries map[baselineKey]baselineEntry
}

func newBaselineCache() *baselineCache {
	return &baselineCache{entries: map[baselineKey]baselineEntry{}}
}

func (c *baselineCache) get(k baselineKey, now time.Time) (map[cellKey]dailyRates, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.Sub(e.at) >= baselineTTL || now.Before(e.at) {
		return nil, false
	}
	return e.rates, true
}

func (c *baselineCache) put(k baselineKey, rates map[cellKey]dailyRates, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= baselineEntries {
		for key, e := range c.entries { // drop the expired, or else any one
			if now.Sub(e.at) >= baselineTTL {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < baselineEntries {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = baselineEntry{rates: rates, at: now}
}
