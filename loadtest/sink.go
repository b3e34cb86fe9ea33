package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
)

const (
	// sinkWorker is the worker under test, as `mailmon run -workers` names it.
	sinkWorker = "clickhouse-sink"
	// sinkDurable is the sink's consumer on each stream (pipelines/topology.yaml).
	sinkDurable = "clickhouse-sink"
	// baselineBatchRows is the raw insert's batch size: the size peers.md
	// measured as the fast end of row-wise Append.
	baselineBatchRows = 50_000
	// baselinePrefix names the baseline copy of each sink table.
	baselinePrefix = "lt_baseline_"
	// verifyTimeout bounds counting rows per id after the run, also when
	// the run itself timed out.
	verifyTimeout = 3 * time.Minute
	// duplicatesMethod says what "duplicates" counts.
	duplicatesMethod = "event ids with more than one row after OPTIMIZE TABLE ... FINAL"
)

type sinkOptions struct {
	n          int
	timeout    time.Duration
	keep       bool
	workers    string
	maxPending int
	cpuProfile string
	mode       string
	sinkConfig string
}

// The sink scenario's modes. backlog compares like with like: the sink
// drains events already in JetStream, the baseline inserts rows already in
// memory. live adds the publisher's load to the same two cores.
const (
	modeBacklog = "backlog"
	modeLive    = "live"
)

func parseSinkFlags(args []string, stderr io.Writer) (sinkOptions, error) {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o sinkOptions
	fs.IntVar(&o.n, "n", 1_000_000, "number of events to publish (at least one per kind)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the events are not all in ClickHouse by then")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, logs, NATS and ClickHouse data) for inspection")
	fs.StringVar(&o.workers, "workers", sinkWorker, "workers the mailmon child runs (`mailmon run -workers`)")
	fs.IntVar(&o.maxPending, "max-pending", 16384, "most published events awaiting a JetStream ack at once")
	fs.StringVar(&o.mode, "mode", modeBacklog, "backlog: publish all events with the sink's consumers paused, then time the sink draining them; live: time publishing and storing together")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the mailmon child's CPU profile over the first 15 s of ingest to this file (go tool pprof FILE), and its /metrics at the end to FILE.metrics")
	fs.StringVar(&o.sinkConfig, "sink-config", "", "settings for the child's clickhouse_sink section, as a YAML flow mapping without braces, e.g. 'batch_rows: 20000, decoders: 4'")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if kinds := len(schemas.Kinds()); o.n < kinds {
		problems = append(problems, fmt.Sprintf("-n must be at least %d (one event per kind), got %d", kinds, o.n))
	}
	if o.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("-timeout must be positive, got %s", o.timeout))
	}
	if o.mode != modeBacklog && o.mode != modeLive {
		problems = append(problems, fmt.Sprintf("-mode must be %s or %s, got %q", modeBacklog, modeLive, o.mode))
	}
	if o.maxPending < 1 {
		problems = append(problems, fmt.Sprintf("-max-pending must be at least 1, got %d", o.maxPending))
	}
	if strings.TrimSpace(o.workers) == "" {
		problems = append(problems, "-workers must name at least one worker")
	}
	return o, joinProblems(problems)
}

// sinkResult is the JSON line the scenario ends with.
type sinkResult struct {
	Scenario string `json:"scenario"`
	Mode     string `json:"mode"`
	N        int    `json:"n"`
	// OursPerS is n / (the sink's consumers resumed, or the first publish in
	// live mode, until ClickHouse holds n distinct ids).
	OursPerS float64 `json:"ours_per_s"`
	// BaselinePerS is n / (raw batch insert of the same rows).
	BaselinePerS float64 `json:"baseline_per_s"`
	Ratio        float64 `json:"ratio"`
	// Published is how many events were handed to JetStream: n, unless
	// the run timed out first.
	Published int `json:"published"`
	// Lost counts published event ids with no row in their table.
	Lost int `json:"lost"`
	// Duplicates is described by DuplicatesMethod.
	Duplicates       int    `json:"duplicates"`
	DuplicatesMethod string `json:"duplicates_method"`
	// RawDuplicateRows is count() - uniqExact(id) over the sink's tables
	// before OPTIMIZE: extra rows written (re-deliveries), which
	// ReplacingMergeTree merges away.
	RawDuplicateRows int `json:"raw_duplicate_rows"`
	// UnexpectedRows are rows whose id was not published, or landed in
	// another kind's table.
	UnexpectedRows int `json:"unexpected_rows"`
	// DeadLetters is the number of messages in the sink's dead-letter subject.
	DeadLetters   int     `json:"dead_letters"`
	PublishErrors int     `json:"publish_errors"`
	GenerateS     float64 `json:"generate_s"`
	PublishS      float64 `json:"publish_s"`
	// PublishPerS is n / publish_s: how fast JetStream took the events
	// while the sink was consuming them.
	PublishPerS float64 `json:"publish_per_s"`
	IngestS     float64 `json:"ingest_s"`
	BaselineS   float64 `json:"baseline_s"`
	ElapsedS    float64 `json:"elapsed_s"`
	// AckOnlyPerS is how fast a bare consumer in the harness takes the
	// same n messages from JetStream and acks each one, doing nothing
	// else: the floor cost of at-least-once consumption with per-message
	// acks. CeilingRatio = ack_only / (ack_only + baseline) estimates the
	// ratio a sink would reach if consuming cost this and inserting cost
	// the baseline, each using the whole machine, and nothing more.
	AckOnlyPerS  float64 `json:"ack_only_per_s,omitempty"`
	CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
	// IngestCPUS, BaselineCPUS and AckOnlyCPUS are the CPU seconds the
	// harness (loadtest), mailmon (with its embedded NATS server) and its
	// clickhouse-server used in each phase: the sink's ingest, the raw
	// insert (for the harness, only while it inserts, not while it builds
	// the rows) and the bare consumer. Missing where /proc cannot tell.
	IngestCPUS   map[string]float64 `json:"ingest_cpu_s,omitempty"`
	BaselineCPUS map[string]float64 `json:"baseline_cpu_s,omitempty"`
	AckOnlyCPUS  map[string]float64 `json:"ack_only_cpu_s,omitempty"`
	// Verified is false when the rows could not be counted; Lost is then n.
	Verified bool   `json:"verified"`
	TimedOut bool   `json:"timed_out"`
	Error    string `json:"error,omitempty"`
	KeptDir  string `json:"kept_dir,omitempty"`
}

func (r sinkResult) ok() bool {
	return r.Error == "" && !r.TimedOut && r.Verified && r.Lost == 0 && r.Duplicates == 0 && r.UnexpectedRows == 0
}

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseSinkFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "sink", err)
	}
	started := time.Now()
	res := sinkResult{Scenario: "sink", Mode: opts.mode, N: opts.n, Lost: opts.n, DuplicatesMethod: duplicatesMethod}
	s := &sinkRun{opts: opts, res: &res, log: stderr}
	if err := s.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "sink", res, res.ok())
}

// sinkRun holds the state of one run of the sink scenario.
type sinkRun struct {
	opts sinkOptions
	res  *sinkResult
	log  io.Writer

	gen  *generator
	top  pipelines.Topology
	ch   *child
	conn driver.Conn
	js   jetstream.JetStream
	ids  []string
	// httpPort serves the child's /metrics and /debug/pprof/.
	httpPort int
	bodies   [][]byte // encoded events, indexed like ids; dropped once published

	published atomic.Int64
	pub       *asyncPublisher
}

func (s *sinkRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, s.opts.timeout)
	defer cancel()
	defer func() {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			s.res.TimedOut = true
		}
	}()

	root, err := s.prepare()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mailmon-loadtest-sink-")
	if err != nil {
		return err
	}
	defer func() {
		if dirErr := keepOrRemove(dir, s.opts.keep, &s.res.KeptDir, s.log); dirErr != nil {
			err = errors.Join(err, dirErr)
		}
	}()
	stop, err := s.start(ctx, root, dir)
	defer func() {
		if stopErr := stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err != nil {
		return err
	}

	runErr := s.measureSink(ctx)
	if errors.Is(runErr, context.DeadlineExceeded) && parent.Err() == nil {
		runErr = fmt.Errorf("timed out after %s: %w", s.opts.timeout, runErr)
	}
	if runErr == nil {
		runErr = s.waitForMerges(ctx)
	}
	if runErr == nil {
		runErr = s.measureBaseline(ctx)
	}
	if runErr == nil {
		runErr = s.waitForMerges(ctx)
	}
	if runErr == nil {
		runErr = s.measureAckOnly(ctx)
	}
	if parent.Err() != nil {
		return errors.Join(runErr, parent.Err())
	}
	// Count rows per id even after a timeout, on a fresh bounded context,
	// so the report says how much arrived.
	verifyCtx, cancelVerify := context.WithTimeout(context.WithoutCancel(parent), verifyTimeout)
	defer cancelVerify()
	if err := s.verify(verifyCtx); err != nil {
		return errors.Join(runErr, fmt.Errorf("verify: %w", err))
	}
	if s.res.BaselinePerS > 0 {
		s.res.Ratio = round(s.res.OursPerS/s.res.BaselinePerS, 3)
	}
	return runErr
}

// prepare loads the example events and checks that the topology routes
// every kind; it returns the module root.
func (s *sinkRun) prepare() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	s.gen, err = newGenerator(filepath.Join(root, "schemas", "testdata", "events"), s.opts.n, time.Now())
	if err != nil {
		return "", err
	}
	s.top, err = pipelines.Default()
	if err != nil {
		return "", err
	}
	for _, k := range s.gen.mix.kinds {
		if _, ok := s.top.StreamFor(k.Subject); !ok {
			return "", fmt.Errorf("no stream captures %s (%s)", k.Subject, k.Type)
		}
	}
	return root, nil
}

// start builds mailmon into dir, starts it with its own embedded NATS and
// local ClickHouse, waits until it is ready and connects to both servers.
// The returned stop closes the connections and stops mailmon; call it even
// when start fails.
func (s *sinkRun) start(ctx context.Context, root, dir string) (stop func() error, err error) {
	var closers []func() error
	stop = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		closers = nil
		return errors.Join(errs...)
	}

	progress(s.log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return stop, err
	}
	p, err := freePorts()
	if err != nil {
		return stop, err
	}
	extra := ""
	if s.opts.sinkConfig != "" {
		extra = "clickhouse_sink: {" + s.opts.sinkConfig + "}\n"
	}
	configPath, err := writeConfig(dir, p, extra)
	if err != nil {
		return stop, err
	}
	s.httpPort = p.HTTP
	progress(s.log, "starting mailmon run -workers %s (nats 127.0.0.1:%d, clickhouse 127.0.0.1:%d)", s.opts.workers, p.NATS, p.ClickHouseTCP)
	s.ch, err = startChild(bin, configPath, s.opts.workers)
	if err != nil {
		return stop, err
	}
	closers = append(closers, func() error {
		progress(s.log, "stopping mailmon")
		return s.ch.stop()
	})
	if err := s.ch.waitReady(ctx, p.HTTP); err != nil {
		return stop, err
	}

	nc, err := connectChildNATS(configPath, p.NATS)
	if err != nil {
		return stop, fmt.Errorf("connect to nats: %w", err)
	}
	closers = append(closers, func() error { nc.Close(); return nil })
	if s.pub, err = newAsyncPublisher(nc, s.opts.maxPending); err != nil {
		return stop, err
	}
	s.js = s.pub.js
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{"127.0.0.1:" + strconv.Itoa(p.ClickHouseTCP)},
		Auth: clickhouse.Auth{Database: database, Username: "default"},
		// CREATE TABLE ... AS copies LowCardinality columns, which 18.16
		// accepts only with this setting.
		Settings:    clickhouse.Settings{"allow_experimental_low_cardinality_type": 1},
		DialTimeout: 5 * time.Second,
		// OPTIMIZE ... FINAL over a million rows takes a while; anything
		// slower than this is a hang.
		ReadTimeout: 2 * time.Minute,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return stop, fmt.Errorf("clickhouse: %w", err)
	}
	s.conn = conn
	closers = append(closers, conn.Close)
	if err := conn.Ping(ctx); err != nil {
		return stop, fmt.Errorf("clickhouse: %w", err)
	}
	return stop, nil
}

// measureSink publishes the events and waits until ClickHouse holds one row
// for each of them.
func (s *sinkRun) measureSink(ctx context.Context) error {
	n := s.opts.n
	tables := s.sinkTables()
	if err := s.generate(); err != nil {
		return err
	}

	if s.opts.mode == modeBacklog {
		if err := s.publishBacklog(ctx); err != nil {
			return err
		}
	}
	progress(s.log, "publishing %d events of %d kinds", n, len(s.gen.mix.kinds))
	start := time.Now()
	cpu := cpuSince(s.ch.cmd.Process.Pid)
	publishDone := make(chan error, 1)
	if s.opts.mode == modeBacklog {
		publishDone <- nil // published already; the clock starts as the sink resumes
	} else {
		go func() { publishDone <- s.publish(ctx) }()
	}
	if s.opts.cpuProfile != "" {
		go s.profileChild(ctx, 15*time.Second)
	}
	// On an early return, wait for the publisher (it stops once ctx ends)
	// so it no longer uses the connection when the run closes it.
	defer func() {
		if publishDone != nil {
			<-publishDone
		}
	}()

	var (
		published    bool
		publishErr   error
		lastProgress = time.Now()
	)
	for {
		select {
		case publishErr = <-publishDone:
			publishDone = nil
			if publishErr != nil {
				return fmt.Errorf("publish: %w", publishErr)
			}
			published = true
			s.bodies = nil // the baseline rebuilds its rows from the ids
			if s.opts.mode == modeLive {
				s.res.PublishS = round(time.Since(start).Seconds(), 3)
				s.res.PublishPerS = round(float64(n)/time.Since(start).Seconds(), 0)
				progress(s.log, "published %d events in %.1f s (%d publish errors, retried)", n, s.res.PublishS, s.res.PublishErrors)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := s.ch.failed(); err != nil {
			return err
		}
		rows, err := s.activeRows(ctx, tables)
		if err != nil {
			return err
		}
		if time.Since(lastProgress) >= 2*time.Second {
			lastProgress = time.Now()
			progress(s.log, "%d published, %d rows in clickhouse (%.0f rows/s so far)", s.published.Load(), rows, float64(rows)/time.Since(start).Seconds())
		}
		// Rows are cheap to count from system.parts; distinct ids are
		// counted only once there are enough rows to hold them all.
		if !published || rows < uint64(n) {
			continue
		}
		distinct, err := s.distinctIDs(ctx, tables)
		if err != nil {
			return err
		}
		if distinct >= uint64(n) {
			took := time.Since(start)
			s.res.IngestS = round(took.Seconds(), 3)
			s.res.OursPerS = round(float64(n)/took.Seconds(), 0)
			s.res.IngestCPUS = cpu()
			progress(s.log, "clickhouse holds %d distinct ids after %.1f s: %.0f events/s", distinct, took.Seconds(), s.res.OursPerS)
			if s.opts.cpuProfile != "" {
				s.saveChildMetrics(ctx, s.opts.cpuProfile+".metrics")
			}
			return nil
		}
	}
}

// generate builds and encodes every event before the clock starts, so
// the load generator's own work does not compete with the system under
// test for the CPU. The bodies live in a few large blocks rather than a
// million small allocations.
func (s *sinkRun) generate() error {
	n := s.opts.n
	started := time.Now()
	s.ids = make([]string, n)
	s.bodies = make([][]byte, n)
	const blockSize = 16 << 20
	var block []byte
	for i := range n {
		ev, err := s.gen.event(i)
		if err != nil {
			return err
		}
		s.ids[i] = ev.EventHeader().ID
		data, err := encode(ev)
		if err != nil {
			return fmt.Errorf("encode %s: %w", s.ids[i], err)
		}
		if cap(block)-len(block) < len(data) {
			block = make([]byte, 0, max(blockSize, len(data)))
		}
		at := len(block)
		block = append(block, data...)
		s.bodies[i] = block[at:len(block):len(block)]
	}
	s.res.GenerateS = round(time.Since(started).Seconds(), 3)
	progress(s.log, "generated %d events in %.1f s", n, s.res.GenerateS)
	return nil
}

// publish sends every event with PublishAsync (message id = event id),
// keeping at most max-pending unacknowledged, then republishes the ones
// JetStream failed to ack; the message id makes a second copy harmless.
func (s *sinkRun) publish(ctx context.Context) error {
	for i, data := range s.bodies {
		subject := s.gen.mix.kinds[s.gen.mix.kindIndex(i)].Subject
		if err := s.pub.publish(ctx, subject, data, s.ids[i]); err != nil {
			return err
		}
		s.published.Add(1)
	}
	var err error
	s.res.PublishErrors, err = s.pub.finish(ctx)
	return err
}

// measureBaseline inserts the same rows into a copy of each table with raw
// clickhouse-go batches: PrepareBatch, Append(schemas.Row(ev)...), Send.
func (s *sinkRun) measureBaseline(ctx context.Context) error {
	kinds := s.gen.mix.kinds
	queries := make([]string, len(kinds))
	for i, k := range kinds {
		table := baselinePrefix + k.Table
		if err := s.conn.Exec(ctx, "CREATE TABLE "+table+" AS "+k.Table); err != nil {
			return fmt.Errorf("create %s: %w", table, err)
		}
		names := make([]string, 0, len(schemas.Columns(k)))
		for _, c := range schemas.Columns(k) {
			names = append(names, c.Name)
		}
		queries[i] = "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ")"
	}

	progress(s.log, "baseline: raw batch insert of the same %d rows, %d rows per batch", s.opts.n, baselineBatchRows)
	byKind := make([][]int, len(kinds))
	for i := range s.opts.n {
		k := s.gen.mix.kindIndex(i)
		byKind[k] = append(byKind[k], i)
	}
	// Only the driver's work is timed: the rows of a batch are built
	// before its clock starts, as generate does for the published events.
	var took time.Duration
	var clientCPU float64 // the harness's CPU in the timed inserts only
	cpu := cpuSince(s.ch.cmd.Process.Pid)
	rows := make([][]any, 0, baselineBatchRows)
	for k, indices := range byKind {
		for len(indices) > 0 {
			chunk := indices[:min(baselineBatchRows, len(indices))]
			indices = indices[len(chunk):]
			rows = rows[:0]
			for _, i := range chunk {
				ev, err := s.gen.eventWithID(i, s.ids[i])
				if err != nil {
					return err
				}
				rows = append(rows, schemas.Row(ev))
			}
			started, cpuBefore := time.Now(), selfCPU()
			if err := s.insertBatch(ctx, queries[k], rows); err != nil {
				return fmt.Errorf("baseline %s: %w", kinds[k].Table, err)
			}
			took += time.Since(started)
			clientCPU += selfCPU() - cpuBefore
		}
	}
	s.res.BaselineS = round(took.Seconds(), 3)
	s.res.BaselineCPUS = cpu()
	if s.res.BaselineCPUS != nil {
		s.res.BaselineCPUS["loadtest"] = round(clientCPU, 2)
	}
	s.res.BaselinePerS = round(float64(s.opts.n)/took.Seconds(), 0)
	progress(s.log, "baseline: %d rows in %.1f s: %.0f rows/s", s.opts.n, took.Seconds(), s.res.BaselinePerS)

	stored, err := s.activeRows(ctx, s.baselineTables())
	if err != nil {
		return err
	}
	if stored != uint64(s.opts.n) {
		return fmt.Errorf("baseline tables hold %d rows, want %d", stored, s.opts.n)
	}
	return nil
}

// waitForMerges waits, at most mergeSettleTimeout, until ClickHouse runs
// no background merge, so that one phase's merges do not slow the next
// phase down: the sink leaves many fresh parts behind it.
func (s *sinkRun) waitForMerges(ctx context.Context) error {
	deadline := time.Now().Add(mergeSettleTimeout)
	for {
		var running uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&running); err != nil {
			return fmt.Errorf("count merges: %w", err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			progress(s.log, "%d merges still running after %s; going on", running, mergeSettleTimeout)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// mergeSettleTimeout bounds waitForMerges.
const mergeSettleTimeout = time.Minute

// ackOnlyDurable is the harness's bare consumer on each stream.
const ackOnlyDurable = "loadtest-ack-only"

// measureAckOnly consumes the n published messages again with a bare
// consumer per stream (same filter, explicit acks, the sink's pull size)
// that acks each message and does nothing else, and times it.
func (s *sinkRun) measureAckOnly(ctx context.Context) error {
	var sinkConsumers []pipelines.Consumer
	for _, c := range s.top.Consumers {
		if c.Durable == sinkDurable {
			sinkConsumers = append(sinkConsumers, c)
		}
	}
	consumers := make([]jetstream.Consumer, 0, len(sinkConsumers))
	for _, c := range sinkConsumers {
		cons, err := s.js.CreateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Durable: ackOnlyDurable, FilterSubject: c.FilterSubject, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: time.Minute, MaxAckPending: c.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return fmt.Errorf("ack-only consumer on %s: %w", c.Stream, err)
		}
		defer func() { _ = s.js.DeleteConsumer(context.WithoutCancel(ctx), c.Stream, ackOnlyDurable) }()
		consumers = append(consumers, cons)
	}
	progress(s.log, "ack-only: a bare consumer takes and acks the same %d messages", s.opts.n)
	var acked atomic.Int64
	n := int64(s.opts.n)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := time.Now()
	cpu := cpuSince(s.ch.cmd.Process.Pid)
	errs := make(chan error, len(consumers))
	for _, cons := range consumers {
		go func() {
			it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(ackOnlyPull, ackOnlyPullBytes))
			if err != nil {
				errs <- err
				return
			}
			defer it.Stop()
			for acked.Load() < n {
				m, err := it.Next(jetstream.NextContext(runCtx))
				if err != nil {
					errs <- err
					return
				}
				if err := m.Ack(); err != nil {
					errs <- err
					return
				}
				if acked.Add(1) == n {
					cancel()
				}
			}
			errs <- nil
		}()
	}
	for range consumers {
		if err := <-errs; err != nil && runCtx.Err() == nil {
			return fmt.Errorf("ack-only: %w", err)
		}
	}
	if acked.Load() < n {
		return fmt.Errorf("ack-only: %d of %d messages acked: %w", acked.Load(), n, ctx.Err())
	}
	took := time.Since(started)
	s.res.AckOnlyCPUS = cpu()
	s.res.AckOnlyPerS = round(float64(n)/took.Seconds(), 0)
	if s.res.BaselinePerS > 0 {
		s.res.CeilingRatio = round(s.res.AckOnlyPerS/(s.res.AckOnlyPerS+s.res.BaselinePerS), 3)
	}
	progress(s.log, "ack-only: %d messages in %.1f s: %.0f messages/s", n, took.Seconds(), s.res.AckOnlyPerS)
	return nil
}

// ackOnlyPull and ackOnlyPullBytes are the bare consumer's pull size, the
// sink's default fetch_batch and fetch_bytes.
const (
	ackOnlyPull      = 5000
	ackOnlyPullBytes = 4 << 20
)

// insertBatch is the raw clickhouse-go insert: PrepareBatch, Append, Send.
func (s *sinkRun) insertBatch(ctx context.Context, query string, rows [][]any) error {
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if err := b.Append(row...); err != nil {
			b.Abort()
			return fmt.Errorf("append: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// verify counts rows per published id in the sink's tables.
func (s *sinkRun) verify(ctx context.Context) error {
	kinds := s.gen.mix.kinds
	index := make(map[string]int32, len(s.ids))
	for i, id := range s.ids {
		index[id] = int32(i)
	}
	found := make([]bool, len(s.ids))
	var rawDuplicates, duplicates, unexpected uint64
	for k, kind := range kinds {
		var rows, distinct uint64
		if err := s.conn.QueryRow(ctx, "SELECT count(), uniqExact(id) FROM "+kind.Table).Scan(&rows, &distinct); err != nil {
			return fmt.Errorf("%s: %w", kind.Table, err)
		}
		rawDuplicates += rows - distinct
		if err := s.conn.Exec(ctx, "OPTIMIZE TABLE "+kind.Table+" FINAL"); err != nil {
			return fmt.Errorf("optimize %s: %w", kind.Table, err)
		}
		err := func() error {
			r, err := s.conn.Query(ctx, "SELECT id, count() FROM "+kind.Table+" GROUP BY id")
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
				var id string
				var count uint64
				if err := r.Scan(&id, &count); err != nil {
					return err
				}
				i, ok := index[id]
				if !ok || s.gen.mix.kindIndex(int(i)) != k {
					unexpected += count
					continue
				}
				found[i] = true
				if count > 1 {
					duplicates++
				}
			}
			return r.Err()
		}()
		if err != nil {
			return fmt.Errorf("%s: %w", kind.Table, err)
		}
	}
	// Events are published in index order. Those after the last one handed
	// to JetStream (when the run timed out) were never sent, so they are
	// not lost.
	sent := int(s.published.Load())
	lost := 0
	for _, ok := range found[:sent] {
		if !ok {
			lost++
		}
	}
	deadLetters, err := s.deadLetters(ctx)
	if err != nil {
		return err
	}
	s.res.Published = sent
	s.res.Lost = lost
	s.res.Duplicates = int(duplicates)
	s.res.RawDuplicateRows = int(rawDuplicates)
	s.res.UnexpectedRows = int(unexpected)
	s.res.DeadLetters = deadLetters
	s.res.Verified = true
	progress(s.log, "verified: lost %d, duplicates %d, raw duplicate rows %d, unexpected rows %d, dead letters %d",
		lost, duplicates, rawDuplicates, unexpected, deadLetters)
	return nil
}

// deadLetters counts the messages on the sink's dead-letter subject.
func (s *sinkRun) deadLetters(ctx context.Context) (int, error) {
	subject := schemas.SubjectDeadLetterPrefix + sinkWorker
	st, ok := s.top.StreamFor(subject)
	if !ok {
		return 0, fmt.Errorf("no stream captures %s", subject)
	}
	stream, err := s.js.Stream(ctx, st.Name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", st.Name, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", st.Name, err)
	}
	return int(info.State.Subjects[subject]), nil
}

// activeRows is the number of rows in the tables' active parts: cheap to
// ask while inserts run, and it counts every row, duplicates included.
func (s *sinkRun) activeRows(ctx context.Context, tables []string) (uint64, error) {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = "'" + t + "'"
	}
	var rows uint64
	err := s.conn.QueryRow(ctx, "SELECT sum(rows) FROM system.parts WHERE database = '"+database+
		"' AND active AND table IN ("+strings.Join(quoted, ", ")+")").Scan(&rows)
	if err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return rows, nil
}

// distinctIDs is the number of distinct ids summed over the tables; ids
// never repeat across tables, because each belongs to one kind.
func (s *sinkRun) distinctIDs(ctx context.Context, tables []string) (uint64, error) {
	var total uint64
	for _, t := range tables {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT uniqExact(id) FROM "+t).Scan(&n); err != nil {
			return 0, fmt.Errorf("count ids in %s: %w", t, err)
		}
		total += n
	}
	return total, nil
}

func (s *sinkRun) sinkTables() []string {
	out := make([]string, 0, len(s.gen.mix.kinds))
	for _, k := range s.gen.mix.kinds {
		out = append(out, k.Table)
	}
	return out
}

func (s *sinkRun) baselineTables() []string {
	out := make([]string, 0, len(s.gen.mix.kinds))
	for _, k := range s.gen.mix.kinds {
		out = append(out, baselinePrefix+k.Table)
	}
	return out
}

// profileChild saves the child's CPU profile over d to opts.cpuProfile.
func (s *sinkRun) profileChild(ctx context.Context, d time.Duration) {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", s.httpPort, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		progress(s.log, "cpu profile: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		progress(s.log, "cpu profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, body)
	}
	if err == nil {
		err = os.WriteFile(s.opts.cpuProfile, body, 0o644)
	}
	if err != nil {
		progress(s.log, "cpu profile: %v", err)
		return
	}
	progress(s.log, "cpu profile of the mailmon child written to %s", s.opts.cpuProfile)
}

// publishBacklog pauses the sink's consumers, publishes every event, and
// resumes them: JetStream then holds the whole load when the clock starts.
func (s *sinkRun) publishBacklog(ctx context.Context) error {
	var streams []string
	for _, c := range s.top.Consumers {
		if c.Durable == sinkDurable {
			streams = append(streams, c.Stream)
		}
	}
	for _, stream := range streams {
		if _, err := s.js.PauseConsumer(ctx, stream, sinkDurable, time.Now().Add(s.opts.timeout)); err != nil {
			return fmt.Errorf("pause %s/%s: %w", stream, sinkDurable, err)
		}
	}
	progress(s.log, "publishing %d events with the sink paused", s.opts.n)
	start := time.Now()
	if err := s.publish(ctx); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	s.res.PublishS = round(time.Since(start).Seconds(), 3)
	s.res.PublishPerS = round(float64(s.opts.n)/time.Since(start).Seconds(), 0)
	progress(s.log, "published %d events in %.1f s (%d publish errors, retried); resuming the sink", s.opts.n, s.res.PublishS, s.res.PublishErrors)
	for _, stream := range streams {
		if _, err := s.js.ResumeConsumer(ctx, stream, sinkDurable); err != nil {
			return fmt.Errorf("resume %s/%s: %w", stream, sinkDurable, err)
		}
	}
	return nil
}

// saveChildMetrics saves the child's /metrics page next to its profile.
func (s *sinkRun) saveChildMetrics(ctx context.Context, path string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", s.httpPort), nil)
	if err == nil {
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = os.WriteFile(path, body, 0o644)
			}
		}
	}
	if err != nil {
		progress(s.log, "child metrics: %v", err)
	}
}
