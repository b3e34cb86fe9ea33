package clickhousesink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// WorkerName is the sink's subcommand, log name and dead-letter suffix.
const WorkerName = "clickhouse-sink"

// Durable is the name of the sink's consumer on every event stream.
const Durable = "clickhouse-sink"

// Sink is the clickhouse-sink worker. Build it with New and start it with
// Run.
type Sink struct {
	cfg     Config
	ch      chstore.Config
	js      jetstream.JetStream
	pub     *bus.Publisher
	log     *slog.Logger
	set     worker.Settings
	metrics *metrics
	// streams are the streams the topology gives a clickhouse-sink
	// consumer, in declaration order.
	streams []string
	budget  *budget
	// tables routes a decoded event's type to its table's batcher.
	tables map[string]*table

	// conn is set once Run has connected.
	conn driver.Conn
	// beatEvery is how often held messages are kept alive (a third of
	// the shortest AckWait); set once Run has bound the consumers.
	beatEvery time.Duration
}

// New checks the configuration and builds a sink; nothing is connected
// until Run. The server, database and retention come from the shared
// `clickhouse` section in s.ClickHouse.
func New(cfg Config, s worker.Settings) (*Sink, error) {
	var check config.Check
	check.Nest("clickhouse_sink", cfg.Validate())
	check.Nest("clickhouse", s.ClickHouse.Validate())
	if err := check.Err(); err != nil {
		return nil, err
	}
	s, err := s.Complete(WorkerName)
	if err != nil {
		return nil, err
	}
	top, err := pipelines.Default()
	if err != nil {
		return nil, err
	}
	var streams []string
	for _, c := range top.Consumers {
		if c.Durable == Durable {
			streams = append(streams, c.Stream)
		}
	}
	if len(streams) == 0 {
		return nil, fmt.Errorf("the topology declares no %s consumer", Durable)
	}
	m, err := newMetrics(s.Metrics)
	if err != nil {
		return nil, err
	}
	sink := &Sink{
		cfg:     cfg,
		ch:      s.ClickHouse,
		js:      s.JetStream,
		pub:     s.Publisher,
		log:     s.Logger,
		set:     s,
		metrics: m,
		streams: streams,
		budget:  newBudget(cfg.MaxPending, m.held),
		tables:  map[string]*table{},
	}
	for _, k := range schemas.Kinds() {
		sink.tables[k.Type] = &table{sink: sink, kind: k, query: insertQuery(k, s.ClickHouse), in: make(chan []held)}
	}
	return sink, nil
}

// insertQuery is the batch INSERT for k's table. On a cluster it names the
// replicated local table of the replica the sink is connected to (one
// shard: every replica holds every row), not the Distributed table: the
// insert returns once the rows are in a part, so an acknowledged message
// is stored and replicating, and a retried batch is the same block in the
// same table, which replicated deduplication drops (the block hashes are
// shared by the replicas in ZooKeeper, so the retry may go to another
// replica). A Distributed insert reaching a node without a replica of the
// shard is only queued on its disk (insert_distributed_sync is off by
// default) and re-formed into blocks of its own; and it is slower (see the
// README).
func insertQuery(k schemas.Kind, ch chstore.Config) string {
	q := schemas.InsertQuery(k)
	if !ch.Clustered() {
		return q
	}
	return strings.Replace(q, "INSERT INTO "+k.Table+" ", "INSERT INTO "+chstore.LocalTable(k.Table)+" ", 1)
}

// Run connects to ClickHouse (waiting for it if it is down), applies the
// migrations, and stores every event of every stream until ctx ends. It
// then stops pulling, flushes what it holds if ClickHouse answers within
// shutdown_timeout, hands the rest back to JetStream unacknowledged, and
// returns nil. It returns an error when the migrations fail, a consumer is
// missing, or the NATS connection is closed under it.
func (s *Sink) Run(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	if conn == nil {
		return nil // ctx ended while waiting for ClickHouse
	}
	s.conn = conn
	defer conn.Close()
	s.set.Health.Register(WorkerName, func(ctx context.Context) error { return conn.Ping(ctx) })
	s.setTTL(ctx)

	consumers := make([]jetstream.Consumer, len(s.streams))
	beatEvery := time.Duration(0)
	for i, stream := range s.streams {
		c, err := s.js.Consumer(ctx, stream, Durable)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consumer %s on stream %s (apply the pipelines first): %w", Durable, stream, err)
		}
		// A limited consumer drops a message after that many deliveries,
		// and every nak at shutdown and every AckWait expiry (a crash, a
		// slow insert) is one: the message would leave with neither a row
		// nor a dead letter. The sink counts refusals itself instead.
		if md := c.CachedInfo().Config.MaxDeliver; md > 0 {
			return fmt.Errorf("consumer %s on stream %s has max_deliver %d; the sink needs unlimited deliveries (-1, as pipelines/topology.yaml declares) so no message is dropped without a row or a dead letter: apply the pipelines", Durable, stream, md)
		}
		consumers[i] = c
		ackWait := c.CachedInfo().Config.AckWait
		if ackWait <= 0 {
			ackWait = 30 * time.Second // the server's default
		}
		if beatEvery == 0 || ackWait/3 < beatEvery {
			beatEvery = ackWait / 3
		}
	}
	s.beatEvery = beatEvery

	// Flushing outlives ctx by at most ShutdownTimeout: the final batches
	// still reach ClickHouse if it answers, and a stuck insert cannot hold
	// the process forever.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopTables := make(chan struct{})
	var tables sync.WaitGroup
	for _, t := range s.tables {
		tables.Go(func() { t.run(flushCtx, stopTables, beatEvery) })
	}

	pullCtx, cancelPull := context.WithCancel(ctx)
	defer cancelPull()
	// Pullers hand raw messages to the decoders, which hand decoded ones
	// to the tables. Each stage stops after the one before it. The channel
	// is unbuffered so that every message is always with a goroutine that
	// keeps it alive while it waits.
	raws := make(chan []jetstream.Msg)
	var decoders sync.WaitGroup
	for range s.decoders() {
		decoders.Go(func() { s.decodeLoop(pullCtx, raws, beatEvery) })
	}
	var pullers sync.WaitGroup
	var failMu sync.Mutex
	var failure error
	for i, c := range consumers {
		pullers.Go(func() {
			if err := s.pull(pullCtx, s.streams[i], c, raws, beatEvery); err != nil {
				failMu.Lock()
				failure = errors.Join(failure, err)
				failMu.Unlock()
				cancelPull()
			}
		})
	}
	var background sync.WaitGroup
	background.Go(func() { s.retentionLoop(pullCtx) })
	background.Go(func() { s.lagLoop(pullCtx, consumers) })

	<-pullCtx.Done()
	pullers.Wait()
	close(raws)
	decoders.Wait()
	background.Wait()
	shutdownTimer := time.AfterFunc(s.cfg.ShutdownTimeout.Std(), cancelFlush)
	defer shutdownTimer.Stop()
	close(stopTables)
	tables.Wait()
	s.log.Info("clickhouse-sink stopped", "held", s.budget.held())
	return failure
}

// connect opens the ClickHouse connection and applies the migrations. A
// server that is down is waited for with backoff: the sink must come up
// before ClickHouse without being restarted. It returns a nil conn when
// ctx ends first.
func (s *Sink) connect(ctx context.Context) (driver.Conn, error) {
	delay := s.cfg.RetryMin.Std()
	for {
		conn, err := chstore.Open(ctx, s.ch)
		if err == nil {
			if _, err := chstore.MigrateFor(ctx, conn, s.ch, schemas.Migrations); err != nil {
				conn.Close()
				if ctx.Err() != nil {
					return nil, nil
				}
				return nil, err
			}
			return conn, nil
		}
		// chstore errors name the server and user, never the password.
		s.log.Warn("clickhouse not reachable; retrying", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(delay):
		}
		delay = min(2*delay, s.cfg.RetryMax.Std())
	}
}

// setTTL adds a table TTL on servers that support it, so expired rows go
// even between retention passes. 18.16 does not; there retention is the
// partition drop alone.
func (s *Sink) setTTL(ctx context.Context) {
	if !chstore.SupportsTTL(ctx, s.conn) {
		return
	}
	// Table names come from the registry and the database passed
	// chstore's identifier check, so splicing them is safe.
	setTable := func(table, timeColumn string) {
		target := table
		if s.ch.Clustered() {
			// The rows live in the local tables, on every replica.
			target = chstore.LocalTable(table) + " ON CLUSTER " + s.ch.Cluster
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL %s + INTERVAL %d DAY", s.ch.Database, target, timeColumn, s.ch.RetentionDays)
		if err := s.conn.Exec(ctx, q); err != nil {
			s.log.Warn("setting table TTL failed; partition drops still enforce retention", "table", table, "error", err)
		}
	}
	for _, k := range schemas.Kinds() {
		setTable(k.Table, "time")
	}
	// Dashboard rollups keep the same days as the raw events they count.
	for _, r := range schemas.Rollups() {
		setTable(r.Table, schemas.RollupTimeColumn)
	}
}

// retentionLoop drops expired day partitions at start and then every
// RetentionInterval.
func (s *Sink) retentionLoop(ctx context.Context) {
	tables := make([]string, 0, len(s.tables)+len(schemas.Rollups()))
	for _, k := range schemas.Kinds() {
		tables = append(tables, k.Table)
	}
	// The dashboard rollups are partitioned by day of their bucket, so
	// they expire with the raw events they count.
	for _, r := range schemas.Rollups() {
		tables = append(tables, r.Table)
	}
	ticker := time.NewTicker(s.cfg.RetentionInterval.Std())
	defer ticker.Stop()
	for {
		dropped, err := chstore.DropExpiredPartitionsOnCluster(ctx, s.conn, s.ch.Database, s.ch.Cluster, tables, s.ch.RetentionDays, time.Now())
		s.metrics.dropped.Add(float64(len(dropped)))
		if len(dropped) > 0 {
			s.log.Info("retention dropped day partitions", "partitions", dropped, "retention_days", s.ch.RetentionDays)
		}
		if err != nil && ctx.Err() == nil {
			s.metrics.retentionErrs.Inc()
			s.log.Warn("retention pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// lagLoop samples how far each consumer is behind its stream.
func (s *Sink) lagLoop(ctx context.Context, consumers []jetstream.Consumer) {
	ticker := time.NewTicker(s.cfg.LagInterval.Std())
	defer ticker.Stop()
	for {
		for i, c := range consumers {
			info, err := c.Info(ctx)
			if err != nil {
				continue // sampled again at the next tick
			}
			s.metrics.pending.WithLabelValues(s.streams[i]).Set(float64(info.NumPending))
			s.metrics.ackPending.WithLabelValues(s.streams[i]).Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// held is one message the sink holds unacknowledged, with its decoded event.
type held struct {
	msg jetstream.Msg
	ev  schemas.Event
}

// decoders is the number of decode goroutines.
func (s *Sink) decoders() int {
	if s.cfg.Decoders > 0 {
		return s.cfg.Decoders
	}
	return runtime.GOMAXPROCS(0)
}

// pull takes messages from one stream's consumer while the budget allows
// and passes them on to the decoders in batches. It stops taking when the
// sink holds max_pending messages, which is what keeps memory bounded
// while ClickHouse is down.
//
// It reads through one long-lived pull subscription (Messages) rather than
// one Fetch per batch: a Fetch stops listening when its wait ends, and
// messages the server sends it later (a loaded machine delays them easily)
// are stranded until AckWait. The subscription keeps at most fetch_batch
// messages buffered ahead of the budget.
func (s *Sink) pull(ctx context.Context, stream string, cons jetstream.Consumer, raws chan<- []jetstream.Msg, beatEvery time.Duration) error {
	// How long a batch being collected waits for one more message before it
	// is handed on; the tables age batches, so this only bounds latency.
	const collectWait = 20 * time.Millisecond
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(s.cfg.FetchBatch, int(s.cfg.FetchBytes)), jetstream.PullExpiry(bus.PullExpiry))
	if err != nil {
		return fmt.Errorf("pulling from %s: %w", stream, err)
	}
	defer s.giveBackBuffered(it)
	delay := s.cfg.RetryMin.Std()
	for ctx.Err() == nil {
		// A puller waiting for messages holds budget for one: an idle
		// stream must not sit on room a busy one needs.
		if _, err := s.budget.take(ctx, 1); err != nil {
			return nil
		}
		first, nextErr := it.Next(jetstream.NextContext(ctx))
		var batch []jetstream.Msg
		want := 1
		if nextErr == nil {
			want += s.budget.tryTake(s.cfg.FetchBatch - 1)
			batch = make([]jetstream.Msg, 1, want)
			batch[0] = first
		}
		for len(batch) > 0 && len(batch) < want {
			var raw jetstream.Msg
			raw, nextErr = it.Next(jetstream.NextMaxWait(collectWait))
			if nextErr != nil {
				break
			}
			batch = append(batch, raw)
		}
		s.budget.give(want - len(batch))
		if len(batch) > 0 && !s.passOn(ctx, raws, batch, beatEvery) {
			s.giveBackRaw(batch)
		}
		switch {
		case nextErr == nil, errors.Is(nextErr, nats.ErrTimeout), ctx.Err() != nil:
			delay = s.cfg.RetryMin.Std()
			continue
		}
		if fatal := s.fetchFailed(stream, nextErr); fatal != nil {
			return fatal
		}
		if !worker.Sleep(ctx, delay) {
			return nil
		}
		delay = min(2*delay, s.cfg.RetryMax.Std())
	}
	return nil
}

// passOn hands a pulled batch to a decoder, keeping its messages alive
// while every decoder is busy (they wait on full tables when ClickHouse is
// down). It returns false when ctx ends first.
func (s *Sink) passOn(ctx context.Context, raws chan<- []jetstream.Msg, batch []jetstream.Msg, beatEvery time.Duration) bool {
	return sendKeepingAlive(ctx, raws, batch, beatEvery, func() {
		for _, m := range batch {
			s.keepAlive(m)
		}
	})
}

// decodeLoop decodes and checks the pulled messages until raws is closed,
// dead-letters the bad ones at once and hands the good ones to their
// tables. Once ctx has ended it gives what it receives back to JetStream.
func (s *Sink) decodeLoop(ctx context.Context, raws <-chan []jetstream.Msg, beatEvery time.Duration) {
	for batch := range raws {
		if ctx.Err() != nil {
			s.giveBackRaw(batch)
			continue
		}
		groups := map[*table][]held{}
		for _, raw := range batch {
			ev, reason, err := decode(raw.Subject(), raw.Data())
			if err != nil {
				s.deadLetter(ctx, raw, reason, err)
				s.budget.give(1) // dead-lettered, or handed back at shutdown
				continue
			}
			t := s.tables[ev.EventHeader().Type]
			groups[t] = append(groups[t], held{msg: raw, ev: ev})
		}
		for t, hs := range groups {
			if !s.handOff(ctx, t, hs, beatEvery) {
				s.giveBack(hs)
			}
		}
	}
}

// giveBackBuffered stops the subscription and hands the messages it had
// buffered but not passed on back to the server at once, so they are
// redelivered without waiting out AckWait.
func (s *Sink) giveBackBuffered(it jetstream.MessagesContext) {
	it.Drain()
	for {
		raw, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		s.nak(raw)
	}
}

// fetchFailed counts a failed pull and says whether it is the end: a closed
// connection or a deleted consumer does not come back by retrying.
func (s *Sink) fetchFailed(stream string, err error) error {
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		return nil
	}
	s.metrics.fetchErrors.WithLabelValues(stream).Inc()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, jetstream.ErrMsgIteratorClosed) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("pulling from %s: %w", stream, err)
	}
	s.log.Warn("pull failed; retrying", "stream", stream, "error", err)
	return nil
}

// handOff gives decoded messages to their table. While the table is full
// (its insert is stuck) it keeps them alive on the server with InProgress,
// so they are not redelivered and their delivery count does not run out.
// It returns false when ctx ends first.
func (s *Sink) handOff(ctx context.Context, t *table, hs []held, beatEvery time.Duration) bool {
	return sendKeepingAlive(ctx, t.in, hs, beatEvery, func() { s.beat(hs) })
}

// sendKeepingAlive sends v on ch, calling keepAlive every beatEvery while
// the receiver is busy. It returns false when ctx ends first.
func sendKeepingAlive[T any](ctx context.Context, ch chan<- T, v T, beatEvery time.Duration, keepAlive func()) bool {
	select {
	case ch <- v:
		return true
	default:
	}
	ticker := time.NewTicker(beatEvery)
	defer ticker.Stop()
	for {
		select {
		case ch <- v:
			return true
		case <-ticker.C:
			keepAlive()
		case <-ctx.Done():
			return false
		}
	}
}

// decode parses and checks one message; the reason names what was wrong.
// The subject names the kind; an event on a subject of no kind is read by
// its type field, so it is still stored if it has one.
func decode(subject string, data []byte) (schemas.Event, string, error) {
	var ev schemas.Event
	var err error
	if k, ok := schemas.KindBySubject(subject); ok {
		ev, err = schemas.DecodeAs(k, data)
	} else {
		ev, err = schemas.Decode(data)
	}
	if err != nil {
		return nil, reasonDecode, err
	}
	if err := schemas.Validate(ev); err != nil {
		return nil, reasonInvalid, err
	}
	return ev, "", nil
}

// deadLetter copies a message that can never be stored to
// mailmon.dlq.clickhouse-sink with the reason and terminates it. A copy
// that cannot be stored is retried in place, with backoff, while the
// message is kept alive: handing it back would only bring it round again,
// and on a consumer with a delivery limit could drop it. Only when ctx
// ends (shutdown) is the message handed back to JetStream, which delivers
// it again since the sink's consumers have no delivery limit. It reports
// whether the dead letter was stored.
func (s *Sink) deadLetter(ctx context.Context, raw jetstream.Msg, reason string, cause error) bool {
	delay := s.cfg.RetryMin.Std()
	for attempt := 1; ; attempt++ {
		// The copy is attempted even during shutdown; the publisher bounds
		// it with its own timeout.
		err := bus.DeadLetterMsg(context.WithoutCancel(ctx), s.pub, WorkerName, raw, fmt.Errorf("%s: %w", reason, cause))
		if err == nil {
			break
		}
		s.metrics.deadLetterErrors.Inc()
		s.log.Error("dead letter not stored; retrying, the message is kept", "subject", raw.Subject(),
			"attempt", attempt, "retry_in", delay, "error", err)
		if !s.waitKeepingAlive(ctx, delay, raw) {
			s.log.Warn("shutting down before a dead letter was stored; handing the message back to JetStream", "subject", raw.Subject())
			s.nak(raw)
			return false
		}
		delay = min(2*delay, s.cfg.RetryMax.Std())
	}
	s.metrics.deadLettered.WithLabelValues(reason).Inc()
	s.log.Warn("message dead-lettered", "subject", raw.Subject(), "reason", reason, "error", cause,
		"dead_letter_subject", bus.DeadLetterSubject(WorkerName))
	return true
}

// waitKeepingAlive waits d, sending InProgress for m at least every
// beatEvery, and reports whether the full wait passed before ctx ended.
func (s *Sink) waitKeepingAlive(ctx context.Context, d time.Duration, m jetstream.Msg) bool {
	beat := s.beatEvery
	if beat <= 0 {
		beat = d
	}
	for d > 0 {
		step := min(d, beat)
		if !worker.Sleep(ctx, step) {
			return false
		}
		s.keepAlive(m)
		d -= step
	}
	return true
}

// beat tells the server the sink still works on these messages.
func (s *Sink) beat(hs []held) {
	for _, h := range hs {
		s.keepAlive(h.msg)
	}
}

// giveBackRaw hands undecoded messages back to the server at once and
// releases their budget.
func (s *Sink) giveBackRaw(msgs []jetstream.Msg) {
	for _, m := range msgs {
		s.nak(m)
	}
	s.budget.give(len(msgs))
}

// giveBack hands messages the sink will not store back to the server at
// once (another copy of the sink, or this one after a restart, takes them)
// and releases their budget.
func (s *Sink) giveBack(hs []held) {
	for _, h := range hs {
		s.nak(h.msg)
	}
	s.budget.give(len(hs))
}

// keepAlive tells the server the sink still works on m.
func (s *Sink) keepAlive(m jetstream.Msg) {
	if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		s.metrics.ackErrors.Inc()
	}
}

// nak hands m back to the server for redelivery now.
func (s *Sink) nak(m jetstream.Msg) {
	if err := m.Nak(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		s.metrics.ackErrors.Inc()
	}
}
