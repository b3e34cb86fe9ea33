package probesender

import (
	"sync"
	"time"
)

// limiter is a token bucket per provider: perMinute tokens, refilled
// evenly over a minute, burst up to perMinute. Zero disables the cap.
type limiter struct {
	mu      sync.Mutex
	now     func() time.Time
	rates   map[string]int
	def     int
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(def int, rates map[string]int, now func() time.Time) *limiter {
	return &limiter{now: now, def: def, rates: rates, buckets: map[string]*bucket{}}
}

// reserve takes a token for provider and returns how long to wait before
// using it (0: at once). A reservation is not given back.
func (l *limiter) reserve(provider string) time.Duration {
	rate, ok := l.rates[provider]
	if !ok {
		rate = l.def
	}
	if rate <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[provider]
	if b == nil {
		b = &bucket{tokens: float64(rate), last: now}
		l.buckets[provider] = b
	}
	perToken := time.Minute / time.Duration(rate)
	b.tokens += float64(now.Sub(b.last)) / float64(perToken)
	if b.tokens > float64(rate) {
		b.tokens = float64(rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens * float64(perToken))
}
