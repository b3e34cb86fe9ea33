package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/deploy/grafana"
	"github.com/mailmon/mailmon/schemas"
)

// consoleWorkers is what the console scenario's mailmon child runs: the
// sink that stores the published slice, and the console it measures.
const consoleWorkers = "clickhouse-sink,console"

type consoleOptions struct {
	shape      worldShape
	sinkDays   int
	fetches    int
	timeout    time.Duration
	keep       bool
	workers    string
	batchRows  int
	maxBacklog int
	targetP95  time.Duration
}

func parseConsoleFlags(args []string, stderr io.Writer) (consoleOptions, error) {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o consoleOptions
	var seed uint64
	fs.IntVar(&o.shape.days, "days", 30, "days of traffic to load, ending now")
	fs.IntVar(&o.shape.perDay, "deliveries-per-day", 1_000_000, "delivery attempts per day (probes, complaints, listings and decisions come in proportion)")
	fs.IntVar(&o.shape.ips, "ips", 20, "sending IPs (each probed at every provider every 5 minutes)")
	fs.IntVar(&o.shape.providers, "providers", 8, "mailbox providers")
	fs.IntVar(&o.shape.customers, "customers", 40, "customers sending through the IPs")
	fs.Uint64Var(&seed, "seed", 17, "seed of the generated traffic (event ids are new on every run)")
	fs.IntVar(&o.sinkDays, "sink-days", 1, "the most recent days published to JetStream and stored by the clickhouse-sink worker; the older days are batch-inserted into the raw tables directly (their materialised views fill the rollups either way)")
	fs.IntVar(&o.fetches, "fetches", 20, "times each console page, Grafana panel query and rollup/raw answer is fetched")
	fs.DurationVar(&o.timeout, "timeout", 90*time.Minute, "give up when the run is not done by then")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, logs, NATS and ClickHouse data) for inspection")
	fs.StringVar(&o.workers, "workers", consoleWorkers, "workers the mailmon child runs (`mailmon run -workers`)")
	fs.IntVar(&o.batchRows, "batch-rows", 100_000, "rows per direct batch insert")
	fs.IntVar(&o.maxBacklog, "max-backlog", 500_000, "most published events not yet stored before publishing waits for the sink")
	fs.DurationVar(&o.targetP95, "target-p95", 500*time.Millisecond, "a page passes when its p95 is at most this")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	o.shape.seed = seed
	var problems []string
	positive := func(name string, v int) {
		if v < 1 {
			problems = append(problems, fmt.Sprintf("-%s must be at least 1, got %d", name, v))
		}
	}
	positive("days", o.shape.days)
	positive("deliveries-per-day", o.shape.perDay)
	positive("ips", o.shape.ips)
	positive("providers", o.shape.providers)
	positive("customers", o.shape.customers)
	positive("fetches", o.fetches)
	positive("batch-rows", o.batchRows)
	positive("max-backlog", o.maxBacklog)
	if o.sinkDays < 0 || o.sinkDays > o.shape.days {
		problems = append(problems, fmt.Sprintf("-sink-days must be between 0 and -days (%d), got %d", o.shape.days, o.sinkDays))
	}
	if o.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("-timeout must be positive, got %s", o.timeout))
	}
	if o.targetP95 <= 0 {
		problems = append(problems, fmt.Sprintf("-target-p95 must be positive, got %s", o.targetP95))
	}
	if strings.TrimSpace(o.workers) == "" {
		problems = append(problems, "-workers must name at least one worker")
	}
	return o, joinProblems(problems)
}

// timing is the p50 and p95 of repeated fetches, in milliseconds.
type timing struct {
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	Maxms float64 `json:"max_ms"`
}

func timingOf(d []time.Duration) timing {
	us := make([]int64, len(d))
	for i, x := range d {
		us[i] = x.Microseconds()
	}
	slices.Sort(us)
	ms := func(v int64) float64 { return round(float64(v)/1000, 1) }
	if len(us) == 0 {
		return timing{}
	}
	return timing{P50ms: ms(percentile(us, 50)), P95ms: ms(percentile(us, 95)), Maxms: ms(us[len(us)-1])}
}

// pageFigure is one console page's fetch times.
type pageFigure struct {
	Page   string `json:"page"`
	Format string `json:"format"` // html or json
	timing
	Bytes  int    `json:"bytes"`
	Errors int    `json:"errors"`
	Error  string `json:"error,omitempty"`
	Pass   bool   `json:"pass"`
}

// answerFigure is one figure a page shows, computed from its rollup and
// from the raw table over the same range: both timed, the rows compared.
type answerFigure struct {
	Answer string  `json:"answer"`
	Page   string  `json:"page"`
	Range  string  `json:"range"`
	Rollup timing  `json:"rollup"`
	Raw    timing  `json:"raw"`
	Ratio  float64 `json:"ratio"` // raw p50 / rollup p50
	Rows   int     `json:"rows"`
	Equal  bool    `json:"equal"`
	Diff   string  `json:"diff,omitempty"`
}

// consoleResult is the JSON line the scenario ends with.
type consoleResult struct {
	Scenario         string `json:"scenario"`
	Days             int    `json:"days"`
	DeliveriesPerDay int    `json:"deliveries_per_day"`
	IPs              int    `json:"ips"`
	Providers        int    `json:"providers"`
	Customers        int    `json:"customers"`
	// N is every event loaded, both ways.
	N int `json:"n"`
	// Rows per raw table loaded.
	Rows map[string]int `json:"rows"`
	// LoadMethod says which events went through the sink.
	LoadMethod string `json:"load_method"`
	// OursPerS is the sink's rate over its slice: events published to
	// JetStream until the raw tables hold every one of them.
	OursPerS float64 `json:"ours_per_s"`
	// BaselinePerS is the direct batch insert's rate over the older days
	// (generating the rows included, as the sink's figure includes
	// generating and publishing them); Ratio = ours / baseline.
	BaselinePerS float64 `json:"baseline_per_s"`
	Ratio        float64 `json:"ratio"`
	SinkEvents   int     `json:"sink_events"`
	SinkS        float64 `json:"sink_s"`
	DirectEvents int     `json:"direct_events"`
	DirectS      float64 `json:"direct_s"`
	// SinkAllEstimateS is how long the whole load would take through the
	// sink at its measured rate.
	SinkAllEstimateS float64 `json:"sink_all_estimate_s"`
	// Lost and Duplicates count the sink slice's events missing from, or
	// stored more than once in, the raw tables (before merges); the
	// directly inserted days are checked by row count (DirectMismatch).
	Lost           int `json:"lost"`
	Duplicates     int `json:"duplicates"`
	DirectMismatch int `json:"direct_mismatch"`
	PublishErrors  int `json:"publish_errors"`
	// MergesAtMeasure is the number of background merges running when the
	// measurements began (waited for, at most a few minutes).
	MergesAtMeasure int            `json:"merges_at_measure"`
	Answers         []answerFigure `json:"answers"`
	AnswersEqual    bool           `json:"answers_equal"`
	Pages           []pageFigure   `json:"pages"`
	PageChecks      []pageCheck    `json:"page_checks"`
	Panels          []panelFigure  `json:"panels"`
	TargetP95ms     float64        `json:"target_p95_ms"`
	TargetsMet      bool           `json:"targets_met"`
	CPUS            map[string]any `json:"cpu_s,omitempty"`
	Skipped         []string       `json:"skipped,omitempty"`
	ElapsedS        float64        `json:"elapsed_s"`
	Error           string         `json:"error,omitempty"`
	KeptDir         string         `json:"kept_dir,omitempty"`
}

// ok: everything loaded once, every rollup answer and every checked page
// figure equals the raw one, and every page and panel answered. The p95 target is a figure
// (targets_met), not a condition of the exit status.
func (r *consoleResult) ok() bool {
	if r.Error != "" || r.Lost != 0 || r.Duplicates != 0 || r.DirectMismatch != 0 || !r.AnswersEqual {
		return false
	}
	for _, p := range r.Pages {
		if p.Errors > 0 {
			return false
		}
	}
	for _, p := range r.Panels {
		if p.Errors > 0 {
			return false
		}
	}
	for _, c := range r.PageChecks {
		if !c.Equal {
			return false
		}
	}
	return true
}

func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseConsoleFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "console", err)
	}
	started := time.Now()
	res := &consoleResult{
		Scenario: "console", Days: opts.shape.days, DeliveriesPerDay: opts.shape.perDay, IPs: opts.shape.ips,
		Providers: opts.shape.providers, Customers: opts.shape.customers, TargetP95ms: float64(opts.targetP95.Milliseconds()),
		Rows: map[string]int{}, Answers: []answerFigure{}, Pages: []pageFigure{}, Panels: []panelFigure{}, PageChecks: []pageCheck{},
	}
	r := &consoleRun{opts: opts, res: res, log: stderr}
	if err := r.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	r.printTable(stderr)
	return printResult(stdout, stderr, "console", res, res.ok())
}

// consoleRun holds the state of one run of the console scenario.
type consoleRun struct {
	opts consoleOptions
	res  *consoleResult
	log  io.Writer

	world    *world
	root     string
	ch       *child
	conn     driver.Conn
	js       jetstream.JetStream
	httpPort int
	chPort   int

	sinkFrom int // first bucket published through the sink
	expected map[string]int
	sinkWant map[string]int

	pub *asyncPublisher
}

func (r *consoleRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, r.opts.timeout)
	defer cancel()
	r.root, err = moduleRoot()
	if err != nil {
		return err
	}
	r.world, err = newWorld(filepath.Join(r.root, "schemas", "testdata", "events"), r.opts.shape, time.Now())
	if err != nil {
		return err
	}
	r.sinkFrom = r.world.buckets() - r.opts.sinkDays*bucketsPerDay
	r.expected, r.sinkWant = map[string]int{}, map[string]int{}

	dir, end, err := tempRunDir("mailmon-loadtest-console-", r.opts.keep, &r.res.KeptDir, r.log)
	if err != nil {
		return err
	}
	defer end(&err)
	stop, err := r.start(ctx, dir)
	defer func() {
		if stopErr := stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err != nil {
		return err
	}
	if err := r.loadDirect(ctx); err != nil {
		return fmt.Errorf("direct insert: %w", err)
	}
	if err := r.loadSink(ctx); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	r.describeLoad()
	if err := r.verifyLoad(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	r.res.MergesAtMeasure, err = r.settleMerges(ctx, 3*time.Minute)
	if err != nil {
		return err
	}
	if err := r.measureAnswers(ctx); err != nil {
		return fmt.Errorf("answers: %w", err)
	}
	if err := r.checkPages(ctx); err != nil {
		return fmt.Errorf("page figures: %w", err)
	}
	if err := r.measurePages(ctx); err != nil {
		return fmt.Errorf("pages: %w", err)
	}
	if err := r.measurePanels(ctx); err != nil {
		return fmt.Errorf("grafana panels: %w", err)
	}
	r.res.TargetsMet = true
	for _, p := range r.res.Pages {
		r.res.TargetsMet = r.res.TargetsMet && p.Pass
	}
	if len(r.res.Pages) == 0 {
		r.res.TargetsMet = false
	}
	if err := r.ch.failed(); err != nil {
		return err
	}
	return nil
}

// start builds mailmon, starts it with its own embedded NATS and local
// ClickHouse and connects to both; stop undoes what start did.
func (r *consoleRun) start(ctx context.Context, dir string) (stop func() error, err error) {
	var closers []func() error
	stop = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		closers = nil
		return errors.Join(errs...)
	}
	progress(r.log, "building mailmon")
	bin, err := buildMailmon(ctx, r.root, dir)
	if err != nil {
		return stop, err
	}
	p, err := freePorts()
	if err != nil {
		return stop, err
	}
	configPath, err := writeConfig(dir, p, "")
	if err != nil {
		return stop, err
	}
	r.httpPort, r.chPort = p.HTTP, p.ClickHouseTCP
	progress(r.log, "starting mailmon run -workers %s (http 127.0.0.1:%d, clickhouse 127.0.0.1:%d)", r.opts.workers, p.HTTP, p.ClickHouseTCP)
	r.ch, err = startChild(bin, configPath, r.opts.workers)
	if err != nil {
		return stop, err
	}
	closers = append(closers, func() error {
		progress(r.log, "stopping mailmon")
		return r.ch.stop()
	})
	if err := r.ch.waitReady(ctx, p.HTTP); err != nil {
		return stop, err
	}
	nc, err := connectChildNATS(configPath, p.NATS)
	if err != nil {
		return stop, fmt.Errorf("connect to nats: %w", err)
	}
	closers = append(closers, func() error { nc.Close(); return nil })
	if r.pub, err = newAsyncPublisher(nc, 16384); err != nil {
		return stop, err
	}
	r.js = r.pub.js
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{"127.0.0.1:" + strconv.Itoa(p.ClickHouseTCP)},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
		// A raw query over 30 days of deliveries takes seconds; anything
		// slower than this is a hang.
		ReadTimeout:  5 * time.Minute,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		MaxOpenConns: 4,
	})
	if err != nil {
		return stop, fmt.Errorf("clickhouse: %w", err)
	}
	r.conn = conn
	closers = append(closers, conn.Close)
	if err := conn.Ping(ctx); err != nil {
		return stop, fmt.Errorf("clickhouse: %w", err)
	}
	return stop, nil
}

// insertJob is one direct batch insert.
type insertJob struct {
	kind schemas.Kind
	rows [][]any
}

// loadDirect batch-inserts the buckets before the sink's slice into the raw
// tables, generating the next batch while ClickHouse stores this one.
func (r *consoleRun) loadDirect(ctx context.Context) error {
	if r.sinkFrom == 0 {
		return nil
	}
	progress(r.log, "direct insert: %d days of traffic (%d deliveries a day) into the raw tables", r.opts.shape.days-r.opts.sinkDays, r.opts.shape.perDay)
	started := time.Now()
	cpu := cpuSince(r.ch.cmd.Process.Pid)
	jobs := make(chan insertJob, 2)
	insertErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var err error
		for job := range jobs {
			if err == nil {
				err = r.insert(ctx, job)
				if err != nil {
					cancel()
				}
			}
		}
		insertErr <- err
	}()
	pending := map[string]*insertJob{}
	flush := func(table string) error {
		job := pending[table]
		if job == nil || len(job.rows) == 0 {
			return nil
		}
		delete(pending, table)
		select {
		case jobs <- *job:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	total := 0
	lastProgress := time.Now()
	genErr := func() error {
		for b := range r.sinkFrom {
			err := r.world.generate(b, func(ev schemas.Event) error {
				k, err := schemas.KindOf(ev)
				if err != nil {
					return err
				}
				job := pending[k.Table]
				if job == nil {
					job = &insertJob{kind: k, rows: make([][]any, 0, min(r.opts.batchRows, 1024))}
					pending[k.Table] = job
				}
				job.rows = append(job.rows, schemas.Row(ev))
				r.expected[k.Table]++
				total++
				if len(job.rows) >= r.opts.batchRows {
					return flush(k.Table)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if b%bucketsPerDay == bucketsPerDay-1 || b == r.sinkFrom-1 {
				tables := make([]string, 0, len(pending))
				for t := range pending {
					tables = append(tables, t)
				}
				slices.Sort(tables)
				for _, t := range tables {
					if err := flush(t); err != nil {
						return err
					}
				}
			}
			if time.Since(lastProgress) >= 10*time.Second {
				lastProgress = time.Now()
				progress(r.log, "direct insert: %d events generated (day %d of %d), %.0f events/s", total, b/bucketsPerDay+1, r.opts.shape.days, float64(total)/time.Since(started).Seconds())
			}
		}
		return nil
	}()
	close(jobs)
	err := <-insertErr
	if genErr != nil && !errors.Is(genErr, context.Canceled) {
		err = errors.Join(genErr, err)
	}
	if err != nil {
		return err
	}
	took := time.Since(started)
	r.res.DirectEvents = total
	r.res.DirectS = round(took.Seconds(), 3)
	r.res.BaselinePerS = round(float64(total)/took.Seconds(), 0)
	r.cpuPhase("direct", cpu)
	progress(r.log, "direct insert: %d events in %.1f s: %.0f events/s", total, took.Seconds(), r.res.BaselinePerS)
	return nil
}

func (r *consoleRun) insert(ctx context.Context, job insertJob) error {
	b, err := r.conn.PrepareBatch(ctx, schemas.InsertQuery(job.kind))
	if err != nil {
		return fmt.Errorf("%s: %w", job.kind.Table, err)
	}
	for _, row := range job.rows {
		if err := b.Append(row...); err != nil {
			b.Abort()
			return fmt.Errorf("%s: append: %w", job.kind.Table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("%s: send: %w", job.kind.Table, err)
	}
	return nil
}

// loadSink publishes the sink's slice to JetStream (message id = event id)
// while the clickhouse-sink worker stores it, and waits until the raw
// tables hold every event of the slice.
func (r *consoleRun) loadSink(ctx context.Context) error {
	if r.sinkFrom >= r.world.buckets() {
		return nil
	}
	base, err := r.activeRows(ctx)
	if err != nil {
		return err
	}
	progress(r.log, "sink: publishing the last %d days of traffic to JetStream for the clickhouse-sink worker", r.opts.sinkDays)
	started := time.Now()
	cpu := cpuSince(r.ch.cmd.Process.Pid)
	published := 0
	lastProgress := time.Now()
	for b := r.sinkFrom; b < r.world.buckets(); b++ {
		err := r.world.generate(b, func(ev schemas.Event) error {
			k, err := schemas.KindOf(ev)
			if err != nil {
				return err
			}
			data, err := encode(ev)
			if err != nil {
				return err
			}
			if err := r.pub.publish(ctx, k.Subject, data, ev.EventHeader().ID); err != nil {
				return err
			}
			r.sinkWant[k.Table]++
			r.expected[k.Table]++
			published++
			return nil
		})
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Keep the backlog bounded: the streams' byte limits would
		// otherwise drop what the sink has not stored yet.
		if b%12 == 11 {
			for {
				rows, err := r.activeRows(ctx)
				if err != nil {
					return err
				}
				if published-int(rows-base) <= r.opts.maxBacklog {
					break
				}
				if err := r.ch.failed(); err != nil {
					return err
				}
				if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
					return err
				}
			}
		}
		if time.Since(lastProgress) >= 10*time.Second {
			lastProgress = time.Now()
			progress(r.log, "sink: %d events published, %.0f events/s", published, float64(published)/time.Since(started).Seconds())
		}
	}
	if r.res.PublishErrors, err = r.pub.finish(ctx); err != nil {
		return err
	}
	progress(r.log, "sink: %d events published in %.1f s; waiting for the sink to store them", published, time.Since(started).Seconds())
	from := r.world.bucketStart(r.sinkFrom)
	for {
		if err := r.ch.failed(); err != nil {
			return err
		}
		rows, err := r.activeRows(ctx)
		if err != nil {
			return err
		}
		if int(rows-base) >= published {
			distinct, _, err := r.sliceIDs(ctx, from)
			if err != nil {
				return err
			}
			if distinct >= published {
				break
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%d of %d events stored: %w", rows-base, published, err)
		}
	}
	took := time.Since(started)
	r.res.SinkEvents = published
	r.res.SinkS = round(took.Seconds(), 3)
	r.res.OursPerS = round(float64(published)/took.Seconds(), 0)
	r.cpuPhase("sink", cpu)
	progress(r.log, "sink: %d events stored in %.1f s: %.0f events/s", published, took.Seconds(), r.res.OursPerS)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// worldKinds are the event kinds the world generates.
var worldKinds = []string{
	schemas.TypeProbeSent, schemas.TypeProbeReceived, schemas.TypeProbeMissing, schemas.TypeDeliveryAttempted,
	schemas.TypeComplaintReceived, schemas.TypeDNSBLListed, schemas.TypeDNSBLDelisted, schemas.TypeDNSAudit,
	schemas.TypeDecisionCutoff, schemas.TypeDecisionReroute, schemas.TypeAlertRaised,
}

// activeRows counts the rows of the world's raw tables in active parts.
func (r *consoleRun) activeRows(ctx context.Context) (uint64, error) {
	tables := r.allWorldTables()
	var rows uint64
	err := r.conn.QueryRow(ctx, "SELECT sum(rows) FROM system.parts WHERE database = '"+database+
		"' AND active AND table IN ('"+strings.Join(tables, "', '")+"')").Scan(&rows)
	if err != nil {
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return rows, nil
}

// allWorldTables are the raw tables the world writes, sorted.
func (r *consoleRun) allWorldTables() []string {
	out := make([]string, 0, len(worldKinds))
	for _, typ := range worldKinds {
		k, _ := schemas.KindByType(typ)
		out = append(out, k.Table)
	}
	slices.Sort(out)
	return out
}

// sliceIDs is the distinct event ids and the rows of the sink's slice
// (every event at or after from), summed over the raw tables.
func (r *consoleRun) sliceIDs(ctx context.Context, from time.Time) (distinct, rows int, err error) {
	for _, t := range r.allWorldTables() {
		var d, n uint64
		if err := r.conn.QueryRow(ctx, "SELECT uniqExact(id), count() FROM "+t+" WHERE time >= "+chTime(from)).Scan(&d, &n); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", t, err)
		}
		distinct += int(d)
		rows += int(n)
	}
	return distinct, rows, nil
}

// chTime is t as a ClickHouse DateTime literal.
func chTime(t time.Time) string {
	return "toDateTime('" + t.UTC().Format(time.DateTime) + "', 'UTC')"
}

func (r *consoleRun) describeLoad() {
	total := 0
	for t, n := range r.expected {
		r.res.Rows[t] = n
		total += n
	}
	r.res.N = total
	switch {
	case r.opts.sinkDays == r.opts.shape.days:
		r.res.LoadMethod = "every event published to JetStream and stored by the clickhouse-sink worker"
	case r.opts.sinkDays == 0:
		r.res.LoadMethod = "every event batch-inserted into the raw tables directly (no sink)"
	default:
		r.res.LoadMethod = fmt.Sprintf("the last %d of %d days (%d events) published to JetStream and stored by the clickhouse-sink worker; "+
			"the %d days before (%d events) batch-inserted into the raw tables directly; the materialised views fill the rollups either way",
			r.opts.sinkDays, r.opts.shape.days, r.res.SinkEvents, r.opts.shape.days-r.opts.sinkDays, r.res.DirectEvents)
	}
	if r.res.BaselinePerS > 0 && r.res.OursPerS > 0 {
		r.res.Ratio = round(r.res.OursPerS/r.res.BaselinePerS, 3)
	}
	if r.res.OursPerS > 0 {
		r.res.SinkAllEstimateS = round(float64(total)/r.res.OursPerS, 0)
	}
}

// verifyLoad checks that the sink stored its slice once and that the
// direct inserts stored every row.
func (r *consoleRun) verifyLoad(ctx context.Context) error {
	from := r.world.bucketStart(r.sinkFrom)
	want := 0
	for _, n := range r.sinkWant {
		want += n
	}
	distinct, rows, err := r.sliceIDs(ctx, from)
	if err != nil {
		return err
	}
	r.res.Lost = max(0, want-distinct)
	r.res.Duplicates = rows - distinct
	for _, t := range r.allWorldTables() {
		var n uint64
		if err := r.conn.QueryRow(ctx, "SELECT count() FROM "+t+" WHERE time < "+chTime(from)).Scan(&n); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		directWant := r.expected[t] - r.sinkWant[t]
		if int(n) != directWant {
			r.res.DirectMismatch += abs(int(n) - directWant)
			progress(r.log, "%s holds %d directly inserted rows, want %d", t, n, directWant)
		}
	}
	progress(r.log, "verified: %d events loaded; sink slice: lost %d, duplicates %d; direct rows off by %d", r.res.N, r.res.Lost, r.res.Duplicates, r.res.DirectMismatch)
	return nil
}

// settleMerges waits at most limit until ClickHouse runs no background
// merge, and returns how many still run.
func (r *consoleRun) settleMerges(ctx context.Context, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for {
		var running uint64
		if err := r.conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&running); err != nil {
			return 0, fmt.Errorf("count merges: %w", err)
		}
		if running == 0 || time.Now().After(deadline) {
			if running > 0 {
				progress(r.log, "%d merges still running after %s; measuring anyway", running, limit)
			}
			return int(running), nil
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// consoleAnswer is one figure a page shows, as the rollup query the page
// runs and the raw query that computes the same rows from the raw table.
type consoleAnswer struct {
	name, page, rng string
	rollup, raw     string
}

// answers are the figures of every page, over the ranges a page is read
// with: the default 24 hours, and 7 or 30 days where a page offers them.
// Ranges are aligned to the rollup's bucket so both sides cover the same
// rows.
func (r *consoleRun) answers() []consoleAnswer {
	end := r.world.end
	day := end.Add(-24 * time.Hour)
	week := end.Add(-7 * 24 * time.Hour)
	month := r.world.start
	hourEnd := end.Truncate(time.Hour)
	dayEnd := end.Truncate(24 * time.Hour).Add(24 * time.Hour)
	monthDays := month.Truncate(24 * time.Hour)
	within := func(col string, from, to time.Time) string {
		return col + " >= " + chTime(from) + " AND " + col + " < " + chTime(to)
	}
	return []consoleAnswer{
		{
			name: "delivered per ip x provider", page: "/", rng: "24h",
			rollup: `SELECT source_ip, provider, sumIf(n, status = 'sent'), sum(n) FROM (SELECT source_ip, provider, status, countMerge(attempts) AS n FROM delivery_status_5m WHERE ` +
				within("bucket", day, end) + ` GROUP BY source_ip, provider, status) GROUP BY source_ip, provider ORDER BY source_ip, provider`,
			raw: `SELECT source_ip, provider, countIf(status = 'sent'), count() FROM delivery_attempted WHERE ` + within("time", day, end) +
				` GROUP BY source_ip, provider ORDER BY source_ip, provider`,
		},
		{
			name: "delivered per customer x provider", page: "/?by=customer", rng: "24h",
			rollup: `SELECT customer, provider, sumIf(n, status = 'sent'), sum(n) FROM (SELECT customer, provider, status, countMerge(attempts) AS n FROM delivery_status_5m WHERE ` +
				within("bucket", day, end) + ` GROUP BY customer, provider, status) GROUP BY customer, provider ORDER BY customer, provider`,
			raw: `SELECT customer, provider, countIf(status = 'sent'), count() FROM delivery_attempted WHERE ` + within("time", day, end) +
				` GROUP BY customer, provider ORDER BY customer, provider`,
		},
		{
			name: "hourly delivery and deferral per ip x provider (7-day median)", page: "/", rng: "7d",
			rollup: `SELECT source_ip, provider, h, sumIf(n, status = 'sent'), sumIf(n, status = 'deferred'), sum(n) FROM (SELECT source_ip, provider, toStartOfHour(bucket) AS h, status, countMerge(attempts) AS n FROM delivery_status_5m WHERE ` +
				within("bucket", week, end) + ` GROUP BY source_ip, provider, h, status) GROUP BY source_ip, provider, h ORDER BY source_ip, provider, h`,
			raw: `SELECT source_ip, provider, toStartOfHour(time) AS h, countIf(status = 'sent'), countIf(status = 'deferred'), count() FROM delivery_attempted WHERE ` +
				within("time", week, end) + ` GROUP BY source_ip, provider, h ORDER BY source_ip, provider, h`,
		},
		{
			name: "probe placement per provider x ip, hourly", page: "/probes", rng: "24h",
			rollup: `SELECT provider, source_ip, toStartOfHour(bucket) AS h, placement, countMerge(received) FROM probe_received_5m WHERE ` + within("bucket", day, end) +
				` GROUP BY provider, source_ip, h, placement ORDER BY provider, source_ip, h, placement`,
			raw: `SELECT provider, source_ip, toStartOfHour(time) AS h, placement, count() FROM probe_received WHERE ` + within("time", day, end) +
				` GROUP BY provider, source_ip, h, placement ORDER BY provider, source_ip, h, placement`,
		},
		{
			name: "probes sent per provider x ip x outcome", page: "/probes", rng: "30d",
			rollup: `SELECT provider, source_ip, outcome, countMerge(sent) FROM probe_sent_5m WHERE ` + within("bucket", month, end) +
				` GROUP BY provider, source_ip, outcome ORDER BY provider, source_ip, outcome`,
			raw: `SELECT provider, source_ip, outcome, count() FROM probe_sent WHERE ` + within("time", month, end) +
				` GROUP BY provider, source_ip, outcome ORDER BY provider, source_ip, outcome`,
		},
		{
			name: "probes missing per provider x ip", page: "/probes", rng: "30d",
			rollup: `SELECT provider, source_ip, countMerge(missing) FROM probe_missing_5m WHERE ` + within("bucket", month, end) +
				` GROUP BY provider, source_ip ORDER BY provider, source_ip`,
			raw: `SELECT provider, source_ip, count() FROM probe_missing WHERE ` + within("time", month, end) +
				` GROUP BY provider, source_ip ORDER BY provider, source_ip`,
		},
		{
			name: "hourly volumes by status", page: "/deliveries", rng: "30d",
			rollup: `SELECT toStartOfHour(bucket) AS h, status, countMerge(attempts) FROM delivery_status_5m WHERE ` + within("bucket", month, end) +
				` GROUP BY h, status ORDER BY h, status`,
			raw: `SELECT toStartOfHour(time) AS h, status, count() FROM delivery_attempted WHERE ` + within("time", month, end) +
				` GROUP BY h, status ORDER BY h, status`,
		},
		{
			name: "deferrals and bounces by reason per provider", page: "/deliveries", rng: "24h",
			rollup: `SELECT provider, status, category, countMerge(attempts) FROM delivery_status_5m WHERE ` + within("bucket", day, end) +
				` AND status != 'sent' GROUP BY provider, status, category ORDER BY provider, status, category`,
			raw: `SELECT provider, status, category, count() FROM delivery_attempted WHERE ` + within("time", day, end) +
				` AND status != 'sent' GROUP BY provider, status, category ORDER BY provider, status, category`,
		},
		{
			name: "remote replies per provider x domain x reason", page: "/deliveries", rng: "24h",
			rollup: `SELECT provider, recipient_domain, status, category, signature, countMerge(attempts) FROM delivery_reply_1h WHERE ` +
				within("bucket", hourEnd.Add(-24*time.Hour), hourEnd) + ` GROUP BY provider, recipient_domain, status, category, signature ORDER BY provider, recipient_domain, status, category, signature`,
			raw: `SELECT provider, recipient_domain, status, category, signature, count() FROM delivery_attempted WHERE ` +
				within("time", hourEnd.Add(-24*time.Hour), hourEnd) + ` AND status != 'sent' GROUP BY provider, recipient_domain, status, category, signature ORDER BY provider, recipient_domain, status, category, signature`,
		},
		{
			name: "counted complaints per customer x provider", page: "/complaints", rng: "24h",
			rollup: `SELECT customer, provider, countMerge(complaints) FROM complaint_counted_5m WHERE ` + within("bucket", day, end) +
				` GROUP BY customer, provider ORDER BY customer, provider`,
			raw: `SELECT customer, provider, count() FROM complaint_received WHERE ` + within("time", day, end) +
				` AND counted = 1 AND trusted = 1 GROUP BY customer, provider ORDER BY customer, provider`,
		},
		{
			name: "counted complaints per customer x provider", page: "/complaints", rng: "30d",
			rollup: `SELECT customer, provider, countMerge(complaints) FROM complaint_counted_5m WHERE ` + within("bucket", month, end) +
				` GROUP BY customer, provider ORDER BY customer, provider`,
			raw: `SELECT customer, provider, count() FROM complaint_received WHERE ` + within("time", month, end) +
				` AND counted = 1 AND trusted = 1 GROUP BY customer, provider ORDER BY customer, provider`,
		},
		{
			name: "listings per zone x target", page: "/blocklists", rng: "30d",
			rollup: `SELECT zone, target, countMerge(listings), maxMerge(last_listed) FROM dnsbl_listed_1d WHERE ` + within("bucket", monthDays, dayEnd) +
				` GROUP BY zone, target ORDER BY zone, target`,
			raw: `SELECT zone, target, count(), max(time) FROM dnsbl_listed WHERE ` + within("time", monthDays, dayEnd) +
				` GROUP BY zone, target ORDER BY zone, target`,
		},
		{
			name: "delistings per zone x target", page: "/blocklists", rng: "30d",
			rollup: `SELECT zone, target, countMerge(delistings), maxMerge(last_delisted) FROM dnsbl_delisted_1d WHERE ` + within("bucket", monthDays, dayEnd) +
				` GROUP BY zone, target ORDER BY zone, target`,
			raw: `SELECT zone, target, count(), max(time) FROM dnsbl_delisted WHERE ` + within("time", monthDays, dayEnd) +
				` GROUP BY zone, target ORDER BY zone, target`,
		},
		{
			name: "cut-offs per subject", page: "/complaints", rng: "30d",
			rollup: `SELECT scope, subject, countMerge(decisions), maxMerge(max_rate), maxMerge(last_until) FROM decision_cutoff_1d WHERE ` + within("bucket", monthDays, dayEnd) +
				` GROUP BY scope, subject ORDER BY scope, subject`,
			raw: `SELECT scope, subject, count(), max(rate), max(until) FROM decision_cutoff WHERE ` + within("time", monthDays, dayEnd) +
				` GROUP BY scope, subject ORDER BY scope, subject`,
		},
		{
			name: "reroutes per subject", page: "/complaints", rng: "30d",
			rollup: `SELECT scope, subject, countMerge(decisions), maxMerge(max_rate), maxMerge(last_until) FROM decision_reroute_1d WHERE ` + within("bucket", monthDays, dayEnd) +
				` GROUP BY scope, subject ORDER BY scope, subject`,
			raw: `SELECT scope, subject, count(), max(rate), max(until) FROM decision_reroute WHERE ` + within("time", monthDays, dayEnd) +
				` GROUP BY scope, subject ORDER BY scope, subject`,
		},
	}
}

// measureAnswers runs every answer's rollup and raw query K times each,
// alternating so both meet the same load, and compares their rows.
func (r *consoleRun) measureAnswers(ctx context.Context) error {
	all := true
	for _, a := range r.answers() {
		fig := answerFigure{Answer: a.name, Page: a.page, Range: a.rng}
		var rollupT, rawT []time.Duration
		var rollupRows, rawRows []string
		for i := range r.opts.fetches {
			t0 := time.Now()
			rows, err := r.queryRows(ctx, a.rollup)
			if err != nil {
				return fmt.Errorf("%s (%s), rollup: %w", a.name, a.rng, err)
			}
			rollupT = append(rollupT, time.Since(t0))
			t0 = time.Now()
			raw, err := r.queryRows(ctx, a.raw)
			if err != nil {
				return fmt.Errorf("%s (%s), raw: %w", a.name, a.rng, err)
			}
			rawT = append(rawT, time.Since(t0))
			if i == 0 {
				rollupRows, rawRows = rows, raw
			}
		}
		fig.Rollup, fig.Raw = timingOf(rollupT), timingOf(rawT)
		if fig.Rollup.P50ms > 0 {
			fig.Ratio = round(fig.Raw.P50ms/fig.Rollup.P50ms, 2)
		}
		fig.Rows = len(rawRows)
		fig.Equal = slices.Equal(rollupRows, rawRows) && len(rawRows) > 0
		if !fig.Equal {
			fig.Diff = firstDifference(rollupRows, rawRows)
			all = false
		}
		progress(r.log, "answer %-62s %3s rollup p50 %7.1f ms p95 %7.1f ms | raw p50 %7.1f ms p95 %7.1f ms | x%.1f, %d rows, equal %v",
			a.name, a.rng, fig.Rollup.P50ms, fig.Rollup.P95ms, fig.Raw.P50ms, fig.Raw.P95ms, fig.Ratio, fig.Rows, fig.Equal)
		r.res.Answers = append(r.res.Answers, fig)
	}
	r.res.AnswersEqual = all
	return nil
}

func firstDifference(rollup, raw []string) string {
	for i := range max(len(rollup), len(raw)) {
		var a, b string
		if i < len(rollup) {
			a = rollup[i]
		}
		if i < len(raw) {
			b = raw[i]
		}
		if a != b {
			return fmt.Sprintf("row %d: rollup %q, raw %q (%d rollup rows, %d raw rows)", i, a, b, len(rollup), len(raw))
		}
	}
	if len(raw) == 0 {
		return "no rows on either side"
	}
	return ""
}

// queryRows runs a query and returns every row as text, to compare and to
// make sure every row was read.
func (r *consoleRun) queryRows(ctx context.Context, query string) ([]string, error) {
	rows, err := r.conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	vals := make([]any, len(types))
	for i, t := range types {
		vals[i] = reflect.New(t.ScanType()).Interface()
	}
	var out []string
	var sb strings.Builder
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		sb.Reset()
		for i, v := range vals {
			if i > 0 {
				sb.WriteByte('|')
			}
			x := reflect.ValueOf(v).Elem().Interface()
			if t, ok := x.(time.Time); ok {
				x = t.UTC().Format(time.RFC3339)
			}
			fmt.Fprint(&sb, x)
		}
		out = append(out, sb.String())
	}
	return out, rows.Err()
}

// consolePage is one console page as a URL path with its query.
type consolePage struct{ name, path string }

// pages are every console page, read with the default range and, where a
// page has a time axis, with 7 and 30 days.
func (r *consoleRun) pages() []consolePage {
	cust := r.world.customers[0].name
	ip := r.world.ips[0]
	prov := r.world.providers[0].name
	return []consolePage{
		{"overview by ip", "/"},
		{"overview by ip 7d", "/?range=7d"},
		{"overview by customer", "/?by=customer"},
		{"probes", "/probes"},
		{"probes 30d", "/probes?range=30d"},
		{"probes one ip x provider 7d", "/probes?range=7d&source_ip=" + url.QueryEscape(ip) + "&provider=" + prov},
		{"deliveries", "/deliveries"},
		{"deliveries 30d", "/deliveries?range=30d"},
		{"deliveries one customer 7d", "/deliveries?range=7d&customer=" + cust},
		{"blocklists", "/blocklists"},
		{"blocklists 30d", "/blocklists?range=30d"},
		{"complaints", "/complaints"},
		{"complaints 30d", "/complaints?range=30d"},
		{"alerts", "/alerts"},
		{"alerts 30d", "/alerts?range=30d"},
		{"trace by tracking id", "/trace?q=" + traceSample},
		{"report daily", "/report?period=daily"},
		{"report weekly one customer", "/report?period=weekly&customer=" + cust},
	}
}

// measurePages fetches every page as HTML and as JSON K times each.
func (r *consoleRun) measurePages(ctx context.Context) error {
	if !slices.Contains(strings.Split(r.opts.workers, ","), "console") {
		r.res.Skipped = append(r.res.Skipped, "pages: the child runs no console worker (-workers "+r.opts.workers+")")
		return nil
	}
	client := &http.Client{Timeout: time.Minute}
	base := "http://127.0.0.1:" + strconv.Itoa(r.httpPort)
	for _, p := range r.pages() {
		for _, format := range []string{"html", "json"} {
			fig := pageFigure{Page: p.path, Format: format}
			var took []time.Duration
			for range r.opts.fetches {
				d, n, err := fetchPage(ctx, client, base+p.path, format)
				if err != nil {
					fig.Errors++
					fig.Error = err.Error()
					continue
				}
				took = append(took, d)
				fig.Bytes = n
			}
			fig.timing = timingOf(took)
			fig.Pass = fig.Errors == 0 && len(took) > 0 && fig.P95ms <= float64(r.opts.targetP95.Milliseconds())
			verdict := "PASS"
			if !fig.Pass {
				verdict = "FAIL"
			}
			progress(r.log, "page %-58s %-4s p50 %7.1f ms p95 %7.1f ms %s%s", p.path, format, fig.P50ms, fig.P95ms, verdict, errorNote(fig.Errors, fig.Error))
			r.res.Pages = append(r.res.Pages, fig)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

func errorNote(n int, msg string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d errors, last: %s)", n, msg)
}

// fetchPage GETs a page and reads it whole; a status other than 200, or a
// JSON answer that does not parse, is an error.
func fetchPage(ctx context.Context, client *http.Client, u, format string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	if format == "json" {
		req.Header.Set("Accept", "application/json")
	} else {
		req.Header.Set("Accept", "text/html")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: %s", resp.Status, firstLine(body))
	}
	if format == "json" && !json.Valid(body) {
		return 0, 0, fmt.Errorf("answer to Accept: application/json is not JSON: %s", firstLine(body))
	}
	return took, len(body), nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (r *consoleRun) cpuPhase(name string, cpu func() map[string]float64) {
	if m := cpu(); m != nil {
		if r.res.CPUS == nil {
			r.res.CPUS = map[string]any{}
		}
		r.res.CPUS[name] = m
	}
}

// printTable writes the per-page verdicts as a table to w (stderr), after
// the run, so the figures are readable without parsing the JSON line.
func (r *consoleRun) printTable(w io.Writer) {
	if len(r.res.Pages) == 0 && len(r.res.Panels) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-80s %-6s %9s %9s  %s\n", "page", "format", "p50 ms", "p95 ms", "target p95 <= "+strconv.Itoa(int(r.res.TargetP95ms))+" ms")
	for _, p := range r.res.Pages {
		verdict := "PASS"
		if !p.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%-80s %-6s %9.1f %9.1f  %s%s\n", p.Page, p.Format, p.P50ms, p.P95ms, verdict, errorNote(p.Errors, p.Error))
	}
	for _, p := range r.res.Panels {
		verdict := "PASS"
		if !p.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%-80s %-6s %9.1f %9.1f  %s%s\n", "grafana "+p.Range+": "+p.Dashboard+" / "+p.Panel, "sql", p.P50ms, p.P95ms, verdict, errorNote(p.Errors, p.Error))
	}
	fmt.Fprintln(w)
}

// panelFigure is one Grafana panel query's (or template variable's) run
// times, its macros expanded for the range with every variable at All.
type panelFigure struct {
	Dashboard string `json:"dashboard"`
	Panel     string `json:"panel"`
	Range     string `json:"range"`
	timing
	Rows   int    `json:"rows"`
	Errors int    `json:"errors"`
	Error  string `json:"error,omitempty"`
	Pass   bool   `json:"pass"`
}

// measurePanels runs every Grafana panel's query and every template
// variable's query K times, expanded as Grafana and the plugin would for
// the dashboards' default range (24 hours) and for 30 days.
func (r *consoleRun) measurePanels(ctx context.Context) error {
	panels, err := grafana.Panels()
	if err != nil {
		return err
	}
	vars, err := grafana.Variables()
	if err != nil {
		return err
	}
	type query struct{ dashboard, name, sql string }
	var queries []query
	for _, p := range panels {
		name := p.Title
		if p.RefID != "" && p.RefID != "A" {
			name += " (" + p.RefID + ")"
		}
		queries = append(queries, query{p.Dashboard, name, p.SQL})
	}
	for _, v := range vars {
		queries = append(queries, query{v.Dashboard, "variable $" + v.Name, v.SQL})
	}
	end := r.world.end
	ranges := []struct {
		name string
		from time.Time
	}{{"24h", end.Add(-24 * time.Hour)}, {"30d", end.Add(-30 * 24 * time.Hour)}}
	for _, rg := range ranges {
		for _, q := range queries {
			fig := panelFigure{Dashboard: q.dashboard, Panel: q.name, Range: rg.name}
			sql, err := grafana.Expand(q.sql, rg.from, end)
			if err != nil {
				return fmt.Errorf("%s / %s: %w", q.dashboard, q.name, err)
			}
			var took []time.Duration
			for range r.opts.fetches {
				t0 := time.Now()
				rows, err := r.queryRows(ctx, sql)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fig.Errors++
					fig.Error = err.Error()
					continue
				}
				took = append(took, time.Since(t0))
				fig.Rows = len(rows)
			}
			fig.timing = timingOf(took)
			fig.Pass = fig.Errors == 0 && len(took) > 0 && fig.P95ms <= float64(r.opts.targetP95.Milliseconds())
			progress(r.log, "grafana %-60s %3s p50 %7.1f ms p95 %7.1f ms, %d rows%s", q.dashboard+" / "+q.name, rg.name, fig.P50ms, fig.P95ms, fig.Rows, errorNote(fig.Errors, fig.Error))
			r.res.Panels = append(r.res.Panels, fig)
		}
	}
	return nil
}

// pageCheck is one console page's JSON figures compared with the same
// figures computed from the raw tables over the page's own range (the
// from/to its JSON echoes).
type pageCheck struct {
	Page    string `json:"page"`
	Figures int    `json:"figures"`
	Equal   bool   `json:"equal"`
	Diff    string `json:"diff,omitempty"`
}

// pageMeta is the part of every page's JSON that says what it covers.
type pageMeta struct {
	Params struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	} `json:"params"`
}

// checkPages reads the overview (by IP and by customer), the probes page
// and the deliveries page as JSON and checks their counts against the raw
// tables: what an operator reads on the console is what was sent.
func (r *consoleRun) checkPages(ctx context.Context) error {
	if !slices.Contains(strings.Split(r.opts.workers, ","), "console") {
		return nil
	}
	client := &http.Client{Timeout: time.Minute}
	base := "http://127.0.0.1:" + strconv.Itoa(r.httpPort)
	get := func(path string, into any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", path, resp.Status, firstLine(body))
		}
		return json.Unmarshal(body, into)
	}
	within := func(m pageMeta) string {
		return "time >= " + chTime(m.Params.From) + " AND time < " + chTime(m.Params.To)
	}

	for _, by := range []struct{ path, col string }{{"/?by=ip", "source_ip"}, {"/?by=customer", "customer"}} {
		var page struct {
			pageMeta
			Cells []struct {
				Row, Provider            string
				Attempts, Sent, Deferred uint64
			} `json:"cells"`
		}
		if err := get(by.path, &page); err != nil {
			return err
		}
		var shown []string
		for _, c := range page.Cells {
			if c.Attempts > 0 {
				shown = append(shown, fmt.Sprintf("%s|%s|%d|%d|%d", c.Row, c.Provider, c.Attempts, c.Sent, c.Deferred))
			}
		}
		slices.Sort(shown)
		raw, err := r.queryRows(ctx, `SELECT `+by.col+`, provider, count(), countIf(status = 'sent'), countIf(status = 'deferred') FROM delivery_attempted WHERE `+
			within(page.pageMeta)+` GROUP BY `+by.col+`, provider ORDER BY `+by.col+`, provider`)
		if err != nil {
			return err
		}
		slices.Sort(raw)
		r.addPageCheck(by.path+" (attempts, sent, deferred per cell)", shown, raw)
	}

	var probes struct {
		pageMeta
		Rows []struct {
			Provider                   string
			SourceIP                   string `json:"source_ip"`
			Sent, Inbox, Spam, Missing uint64
		} `json:"rows"`
	}
	if err := get("/probes", &probes); err != nil {
		return err
	}
	var shown []string
	for _, p := range probes.Rows {
		shown = append(shown, fmt.Sprintf("%s|%s|%d|%d|%d|%d", p.Provider, p.SourceIP, p.Sent, p.Inbox, p.Spam, p.Missing))
	}
	slices.Sort(shown)
	w := within(probes.pageMeta)
	// ClickHouse 18.16 joins two tables per SELECT: nest the second join.
	raw, err := r.queryRows(ctx, `SELECT provider, source_ip, sent, inbox, spam, missing FROM
		(SELECT provider, source_ip, sent, inbox, spam FROM
			(SELECT provider, source_ip, count() AS sent FROM probe_sent WHERE `+w+` GROUP BY provider, source_ip)
			ANY LEFT JOIN (SELECT provider, source_ip, countIf(placement = 'inbox') AS inbox, countIf(placement = 'spam') AS spam FROM probe_received WHERE `+w+` GROUP BY provider, source_ip)
			USING (provider, source_ip))
		ANY LEFT JOIN (SELECT provider, source_ip, count() AS missing FROM probe_missing WHERE `+w+` GROUP BY provider, source_ip)
		USING (provider, source_ip)`)
	if err != nil {
		return err
	}
	slices.Sort(raw)
	r.addPageCheck("/probes (sent, inbox, spam, missing per provider x source)", shown, raw)

	var deliveries struct {
		pageMeta
		Totals map[string]uint64 `json:"totals"`
	}
	if err := get("/deliveries", &deliveries); err != nil {
		return err
	}
	shown = shown[:0]
	for status, n := range deliveries.Totals {
		if n > 0 {
			shown = append(shown, fmt.Sprintf("%s|%d", status, n))
		}
	}
	slices.Sort(shown)
	raw, err = r.queryRows(ctx, `SELECT status, count() FROM delivery_attempted WHERE `+within(deliveries.pageMeta)+` GROUP BY status ORDER BY status`)
	if err != nil {
		return err
	}
	slices.Sort(raw)
	r.addPageCheck("/deliveries (attempts by status)", shown, raw)
	return nil
}

func (r *consoleRun) addPageCheck(page string, shown, raw []string) {
	c := pageCheck{Page: page, Figures: len(raw), Equal: len(raw) > 0 && slices.Equal(shown, raw)}
	if !c.Equal {
		c.Diff = strings.Replace(firstDifference(shown, raw), "rollup", "page", -1)
	}
	progress(r.log, "page figures %s: %d rows from the raw tables, equal %v %s", page, c.Figures, c.Equal, c.Diff)
	r.res.PageChecks = append(r.res.PageChecks, c)
}
