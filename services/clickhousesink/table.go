package clickhousesink

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
)

// table batches the events of one kind and inserts them. It fills an open
// batch while earlier ones are being inserted, so pulling and inserting
// overlap, and runs at most maxInflight inserts at once: ClickHouse
// parses one insert while the next is sent. Order between batches does not
// matter, since rows are deduplicated by id. A stuck insert stops the table
// from taking more once maxInflight batches and a full open one are held.
type table struct {
	sink  *Sink
	kind  schemas.Kind
	query string
	in    chan []held
}

// maxInflight is how many inserts of one table may run at once.
const maxInflight = 2

// A batch holding at least batch_rows/burstEndShare rows is inserted as
// soon as nothing new arrived for burstEndIdle, without waiting for
// batch_age: the burst that filled it is over (a backlog drained, a
// restart caught up), and waiting adds only latency. Trickling traffic
// never fills that much before batch_age, so it still comes in few,
// large inserts.
const (
	burstEndShare = 10
	burstEndIdle  = 100 * time.Millisecond
)

// run owns the table's batches until stop is closed and everything held is
// settled. flushCtx ends at the shutdown deadline.
func (t *table) run(flushCtx context.Context, stop <-chan struct{}, beatEvery time.Duration) {
	s := t.sink
	batchAge := s.cfg.BatchAge.Std()
	var (
		open       []held
		openSince  time.Time // when the oldest open message arrived
		openBeat   time.Time // when the open messages were last kept alive
		lastIn     time.Time // when messages last arrived
		inflight   = map[int][]held{}
		flightBeat = map[int]time.Time{}
		nextBatch  int
		stopping   bool
	)
	done := make(chan int, maxInflight)
	ticker := time.NewTicker(min(max(batchAge/4, 5*time.Millisecond), burstEndIdle/2, beatEvery/2))
	defer ticker.Stop()

	startFlush := func(now time.Time) {
		if len(inflight) >= maxInflight || len(open) == 0 {
			return
		}
		full := len(open) >= s.cfg.BatchRows
		aged := now.Sub(openSince) >= batchAge
		burstOver := len(open) >= max(s.cfg.BatchRows/burstEndShare, 1) && now.Sub(lastIn) >= burstEndIdle
		if !stopping && !full && !aged && !burstOver {
			return
		}
		id := nextBatch
		nextBatch++
		batch := open
		inflight[id], flightBeat[id] = batch, openBeat
		open = nil
		go func() {
			t.flush(flushCtx, batch)
			done <- id
		}()
	}
	for !stopping || len(inflight) > 0 || len(open) > 0 {
		var in chan []held
		if !stopping && len(open) < s.cfg.BatchRows {
			in = t.in
		}
		select {
		case hs := <-in:
			now := time.Now()
			lastIn = now
			if len(open) == 0 {
				openSince, openBeat = now, now
			}
			open = append(open, hs...)
			startFlush(now)
		case id := <-done:
			delete(inflight, id)
			delete(flightBeat, id)
			startFlush(time.Now())
		case now := <-ticker.C:
			// InProgress only for messages held long enough to matter, so
			// a healthy sink sends none.
			if len(open) > 0 && now.Sub(openBeat) >= beatEvery {
				s.beat(open)
				openBeat = now
			}
			for id, batch := range inflight {
				if now.Sub(flightBeat[id]) >= beatEvery {
					s.beat(batch)
					flightBeat[id] = now
				}
			}
			startFlush(now)
		case <-stop:
			stopping, stop = true, nil
			startFlush(time.Now())
		}
	}
}

// flush inserts one batch and acks its messages once ClickHouse confirmed
// it. A failed insert is retried, the same rows, with capped exponential
// backoff until it succeeds or flushCtx ends; then the messages are nakked
// and JetStream redelivers them. A row the driver refuses to append can
// never succeed: it is dead-lettered and the rest is inserted without it.
// flush never changes the batch slice it is given: the table goroutine
// reads it to keep the messages alive.
func (t *table) flush(ctx context.Context, batch []held) {
	s := t.sink
	defer s.budget.give(len(batch))
	rows := batch
	delay := s.cfg.RetryMin.Std()
	for attempt := 1; len(rows) > 0; {
		start := time.Now()
		insertCtx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout.Std())
		bad, err := insertBatch(insertCtx, s.conn, t.query, rows)
		cancel()
		if bad >= 0 {
			s.deadLetter(ctx, rows[bad].msg, reasonRejected, fmt.Errorf("%s: %w", t.kind.Table, err))
			rest := make([]held, 0, len(rows)-1)
			rows = append(append(rest, rows[:bad]...), rows[bad+1:]...)
			continue
		}
		s.metrics.insertSeconds.WithLabelValues(t.kind.Table).Observe(time.Since(start).Seconds())
		if err == nil {
			s.metrics.rows.WithLabelValues(t.kind.Table).Add(float64(len(rows)))
			s.metrics.batchRows.WithLabelValues(t.kind.Table).Observe(float64(len(rows)))
			for _, h := range rows {
				if err := h.msg.Ack(); err != nil {
					// Stored but not acked: redelivered, and the table
					// deduplicates it by id.
					s.metrics.ackErrors.Inc()
				}
			}
			return
		}
		s.metrics.insertErrors.WithLabelValues(t.kind.Table).Inc()
		s.log.Warn("insert failed; retrying the same batch", "table", t.kind.Table, "rows", len(rows),
			"attempt", attempt, "retry_in", delay, "error", err)
		if !sleep(ctx, delay) {
			s.log.Warn("shutting down with a batch not stored; handing it back to JetStream", "table", t.kind.Table, "rows", len(rows))
			for _, h := range rows {
				s.nak(h.msg)
			}
			return
		}
		delay = min(2*delay, s.cfg.RetryMax.Std())
		attempt++
	}
}

// insertBatch sends rows as one native batch. If the driver refuses to
// append a row, the batch is aborted and that row's index returned with
// the error; otherwise the index is -1 and err is the outcome of Send.
func insertBatch(ctx context.Context, conn driver.Conn, query string, rows []held) (int, error) {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return -1, err
	}
	var row []any
	for i, h := range rows {
		row = schemas.AppendRow(row, h.ev)
		if err := b.Append(row...); err != nil {
			_ = b.Abort()
			return i, err
		}
	}
	return -1, b.Send()
}
