package clickhousesink

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// budget counts the messages the sink may still take before it holds
// max_pending unacknowledged. Pullers take before they fetch and everyone
// who settles a message (ack, nak, dead letter) gives back.
type budget struct {
	mu    sync.Mutex
	limit int
	free  int
	// freed is closed and replaced whenever budget is given back, waking
	// every puller waiting for room.
	freed chan struct{}
	gauge prometheus.Gauge
}

func newBudget(limit int, gauge prometheus.Gauge) *budget {
	return &budget{limit: limit, free: limit, freed: make(chan struct{}), gauge: gauge}
}

// take waits until some budget is free and takes up to want of it. It
// returns the amount taken, or ctx's error.
func (b *budget) take(ctx context.Context, want int) (int, error) {
	for {
		b.mu.Lock()
		if b.free > 0 {
			n := min(want, b.free)
			b.free -= n
			b.gauge.Set(float64(b.limit - b.free))
			b.mu.Unlock()
			return n, nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// tryTake takes up to want of what is free without waiting and returns
// the amount taken.
func (b *budget) tryTake(want int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(want, b.free)
	if n <= 0 {
		return 0
	}
	b.free -= n
	b.gauge.Set(float64(b.limit - b.free))
	return n
}

// give returns n to the budget.
func (b *budget) give(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.gauge.Set(float64(b.limit - b.free))
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// held is how many messages are taken and not yet given back.
func (b *budget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.free
}
