package clickhousesink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/worker"
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

// flush stores one batch and acks each message once ClickHouse confirmed
// its row, or dead-letters it; nothing leaves otherwise (the consumers have
// no delivery limit, so what is handed back comes back).
//
// A failed insert is retried, the same rows, with capped exponential
// backoff. Failures that say nothing about the rows (connection lost,
// timeout, server overloaded, out of space, read-only) are retried until
// they pass. When the server itself refuses the same rows reject_after
// times, the batch is split in halves, each stored on its own the same
// way, so one row the server can never take is isolated in a batch of its
// own and dead-lettered while every other row is stored. A row the driver
// refuses to append is dead-lettered at once. When flushCtx ends
// (shutdown deadline) what is not stored is nakked. flush never changes
// the batch slice it is given: the table goroutine reads it to keep the
// messages alive.
func (t *table) flush(ctx context.Context, batch []held) {
	s := t.sink
	defer s.budget.give(len(batch))
	// parts is a stack of the slices of batch still to be stored.
	parts := [][]held{batch}
	for len(parts) > 0 {
		rows := parts[len(parts)-1]
		parts = parts[:len(parts)-1]
		halves, done := t.store(ctx, rows)
		if !done {
			n := len(rows)
			for _, p := range parts {
				n += len(p)
			}
			s.log.Warn("shutting down with rows not stored; handing them back to JetStream", "table", t.kind.Table, "rows", n)
			for _, p := range append(parts, rows) {
				for _, h := range p {
					s.nak(h.msg)
				}
			}
			return
		}
		// The second half is pushed first so the first is stored first.
		for i := len(halves) - 1; i >= 0; i-- {
			parts = append(parts, halves[i])
		}
	}
}

// store inserts rows and acks them, retrying until the insert succeeds. It
// returns the two halves of rows when the server refused them reject_after
// times (the caller stores each), and done false, with rows untouched, when
// ctx ended first.
func (t *table) store(ctx context.Context, rows []held) (halves [][]held, done bool) {
	s := t.sink
	delay := s.cfg.RetryMin.Std()
	refusals := 0
	for attempt := 1; len(rows) > 0; attempt++ {
		start := time.Now()
		insertCtx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout.Std())
		bad, err := insertBatch(insertCtx, s.conn, t.query, rows)
		cancel()
		if bad >= 0 {
			// Dead-lettered, or handed back if the shutdown came first:
			// either way no longer this batch's.
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
			return nil, true
		}
		s.metrics.insertErrors.WithLabelValues(t.kind.Table).Inc()
		if refusedByServer(err) {
			refusals++
		}
		if refusals >= s.cfg.RejectAfter {
			if len(rows) == 1 {
				s.deadLetter(ctx, rows[0].msg, reasonRejected, fmt.Errorf("%s: refused %d times: %w", t.kind.Table, refusals, err))
				return nil, true
			}
			s.metrics.splits.WithLabelValues(t.kind.Table).Inc()
			s.log.Warn("insert refused repeatedly; splitting the batch to isolate the rows at fault", "table", t.kind.Table,
				"rows", len(rows), "refusals", refusals, "error", err)
			mid := len(rows) / 2
			return [][]held{rows[:mid], rows[mid:]}, true
		}
		s.log.Warn("insert failed; retrying the same batch", "table", t.kind.Table, "rows", len(rows),
			"attempt", attempt, "retry_in", delay, "error", err)
		if !worker.Sleep(ctx, delay) {
			return nil, false
		}
		delay = min(2*delay, s.cfg.RetryMax.Std())
	}
	return nil, true
}

// serverStateCodes are ClickHouse error codes that describe the server's
// state rather than the rows sent: retrying the same rows later succeeds,
// so they never count towards reject_after.
var serverStateCodes = map[int32]bool{
	60:  true, // UNKNOWN_TABLE: a migration not applied, not the rows' fault
	81:  true, // UNKNOWN_DATABASE: likewise
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	225: true, // NO_ZOOKEEPER
	236: true, // ABORTED
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	243: true, // NOT_ENOUGH_SPACE
	252: true, // TOO_MANY_PARTS: merges are behind
	319: true, // UNKNOWN_STATUS_OF_INSERT
	394: true, // QUERY_WAS_CANCELLED
	999: true, // KEEPER_EXCEPTION
}

// refusedByServer reports whether err is ClickHouse answering the insert
// with an exception that may be the rows' fault. A lost connection, a
// timeout or an exception about the server's own state is not.
func refusedByServer(err error) bool {
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) {
		return false
	}
	return !serverStateCodes[exc.Code]
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
