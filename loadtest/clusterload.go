package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// --- the load -------------------------------------------------------------

// clusterPublisher publishes the mixed load at a steady rate: event i of
// the generator is due at i/rate after the start, with a deterministic id
// (idFor), so a republished event is the same message and JetStream's
// duplicate window and ClickHouse's dedupe by id see one event.
type clusterPublisher struct {
	js    jetstream.JetStream
	gen   *generator
	rate  int
	runMs uint64

	acked   []atomic.Bool
	sent    atomic.Int64
	ackedN  atomic.Int64
	futures chan clusterFuture
	checked chan struct{}

	failMu sync.Mutex
	failed []int
}

type clusterFuture struct {
	i int
	f jetstream.PubAckFuture
}

func newClusterPublisher(nc *nats.Conn, root string, rate int, limit time.Duration) (*clusterPublisher, error) {
	n := rate * int(limit/time.Second+1)
	gen, err := newGenerator(filepath.Join(root, "schemas", "testdata", "events"), n, time.Now())
	if err != nil {
		return nil, err
	}
	// An async publish sent to a leader that dies gets no answer: the
	// timeout ends its future, and the event is published again at the end.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	return &clusterPublisher{js: js, gen: gen, rate: rate, runMs: uint64(time.Now().UnixMilli()),
		acked: make([]atomic.Bool, n), futures: make(chan clusterFuture, 8192), checked: make(chan struct{})}, nil
}

// idFor is event i's id: a UUID (version 7 layout) of the run's start in
// milliseconds and i.
func (p *clusterPublisher) idFor(i int) string {
	u := uint64(i)
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", p.runMs>>16, p.runMs&0xffff, (u>>48)&0xfff, 0x8000|((u>>32)&0x3fff), u&0xffffffffffff)
}

func (p *clusterPublisher) msg(i int) (*nats.Msg, error) {
	ev, err := p.gen.eventWithID(i, p.idFor(i))
	if err != nil {
		return nil, err
	}
	return message(ev)
}

// run publishes until ctx ends (or the generator runs out).
func (p *clusterPublisher) run(ctx context.Context) {
	go p.check()
	defer close(p.futures)
	start := time.Now()
	for i := range p.acked {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(p.rate))); d > time.Millisecond {
			if sleepCtx(ctx, d) != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		m, err := p.msg(i)
		if err != nil {
			p.fail(i)
			continue
		}
		for {
			f, err := p.js.PublishMsgAsync(m, jetstream.WithRetryAttempts(60), jetstream.WithRetryWait(250*time.Millisecond), jetstream.WithStallWait(time.Second))
			if err == nil {
				p.futures <- clusterFuture{i, f}
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
				p.fail(i)
				break
			}
		}
		p.sent.Store(int64(i + 1))
	}
}

func (p *clusterPublisher) fail(i int) {
	p.failMu.Lock()
	p.failed = append(p.failed, i)
	p.failMu.Unlock()
}

// check waits for every future in publish order.
func (p *clusterPublisher) check() {
	defer close(p.checked)
	for cf := range p.futures {
		select {
		case <-cf.f.Ok():
			p.acked[cf.i].Store(true)
			p.ackedN.Add(1)
		case <-cf.f.Err():
			p.fail(cf.i)
		}
	}
}

// finish publishes again, synchronously and with the same ids, what
// JetStream did not ack, and fills in the publish figures.
func (p *clusterPublisher) finish(ctx context.Context, res *clusterResult) error {
	select {
	case <-p.checked:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.failMu.Lock()
	failed := p.failed
	p.failMu.Unlock()
	res.Republished = len(failed)
	var errs []error
	for _, i := range failed {
		m, err := p.msg(i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for attempt := 0; attempt < 20 && !p.acked[i].Load(); attempt++ {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = p.js.PublishMsg(pctx, m)
			cancel()
			if err == nil {
				p.acked[i].Store(true)
				p.ackedN.Add(1)
				break
			}
			if sleepCtx(ctx, 250*time.Millisecond) != nil {
				break
			}
		}
		if !p.acked[i].Load() {
			res.Unacked++
		}
	}
	res.Published = int(p.ackedN.Load())
	if res.Unacked > 0 {
		errs = append(errs, fmt.Errorf("%d events never acked by JetStream", res.Unacked))
	}
	return errors.Join(errs...)
}

// --- the policy checks ----------------------------------------------------

// policyWatch asks the policy service about the two check customers,
// again and again, as Postfix would: clusterBad must be refused,
// clusterGood let through. A connection error is a gap, not a wrong
// answer; the longest time without a correct answer is the gap figure.
type policyWatch struct {
	addr string

	mu                   sync.Mutex
	asked, wrong, errors int
	gapMax               time.Duration
	last                 map[string]time.Time
	wrongSeen            []string
}

func (w *policyWatch) correct(customer, answer string) bool {
	if customer == clusterBad {
		return strings.HasPrefix(answer, "REJECT")
	}
	return answer == "DUNNO"
}

func (w *policyWatch) run(ctx context.Context) {
	start := time.Now()
	w.mu.Lock()
	w.last = map[string]time.Time{clusterBad: start, clusterGood: start}
	w.mu.Unlock()
	var p *policyClient
	defer func() {
		if p != nil {
			p.c.Close()
		}
	}()
	for ctx.Err() == nil {
		if p == nil {
			var err error
			if p, err = dialPolicyClient(w.addr); err != nil {
				w.mu.Lock()
				w.errors++
				w.mu.Unlock()
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
		}
		for _, customer := range []string{clusterBad, clusterGood} {
			a, _, err := p.ask(enforcementRequest(customer))
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				w.errors++
				w.mu.Unlock()
				p.c.Close()
				p = nil
				break
			}
			w.asked++
			if w.correct(customer, a) {
				w.gapMax = max(w.gapMax, now.Sub(w.last[customer]))
				w.last[customer] = now
			} else {
				w.wrong++
				if len(w.wrongSeen) < 5 {
					w.wrongSeen = append(w.wrongSeen, fmt.Sprintf("%s %s: %q", now.Format("15:04:05.000"), customer, a))
				}
			}
			w.mu.Unlock()
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

// finish closes the open gaps at the end and fills in the figures.
func (w *policyWatch) finish(res *clusterResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, t := range w.last {
		w.gapMax = max(w.gapMax, now.Sub(t))
	}
	res.PolicyAsked, res.PolicyWrong, res.PolicyErrors = w.asked, w.wrong, w.errors
	res.PolicyGapMaxMs = w.gapMax.Milliseconds()
}

// enforceBad pushes clusterBad over the evaluator's act threshold (600
// deliveries, then 3 complaints: 0.5 % against 0.3 %) and gives
// clusterGood the same deliveries and no complaint, then waits until the
// policy service answers both as the checks expect.
func (c *clusterRun) enforceBad(ctx context.Context) error {
	setup := schemas.Source{Worker: "loadtest-setup", Host: "loadtest"}
	var deliveries []schemas.Event
	for _, customer := range []string{clusterBad, clusterGood} {
		for j := range 600 {
			ev := delivered(customer, j, time.Now().Add(-10*time.Minute))
			ev.EventHeader().Source = setup
			deliveries = append(deliveries, ev)
		}
	}
	if err := c.publishSync(ctx, deliveries); err != nil {
		return err
	}
	// Complaints are judged against the deliveries counted so far.
	waitUntil(ctx, 30*time.Second, 200*time.Millisecond, "evaluators count the setup deliveries", func() error {
		n := 0
		for _, w := range c.evals {
			got, err := evaluatorEvents(ctx, w.httpPort)
			if err != nil {
				return err
			}
			n += got[schemas.TypeDeliveryAttempted]
		}
		if n < len(deliveries) {
			return fmt.Errorf("%d of %d counted", n, len(deliveries))
		}
		return nil
	})
	w := &policyWatch{addr: c.policyAddr()}
	var last string
	for round := range 4 {
		var complaints []schemas.Event
		for range 3 - 2*min(round, 1) { // 3, then 1 more per round
			ev := complained(clusterBad, time.Now())
			ev.EventHeader().Source = setup
			complaints = append(complaints, ev)
		}
		if err := c.publishSync(ctx, complaints); err != nil {
			return err
		}
		err := waitUntil(ctx, 15*time.Second, 100*time.Millisecond, "policy service refuses "+clusterBad, func() error {
			p, err := dialPolicyClient(c.policyAddr())
			if err != nil {
				return err
			}
			defer p.c.Close()
			for _, customer := range []string{clusterBad, clusterGood} {
				a, _, err := p.ask(enforcementRequest(customer))
				if err != nil {
					return err
				}
				if !w.correct(customer, a) {
					last = fmt.Sprintf("%s answered %q", customer, a)
					return errors.New(last)
				}
			}
			return nil
		})
		if err == nil {
			progress(c.log, "policy service refuses %s and lets %s through", clusterBad, clusterGood)
			return nil
		}
	}
	return fmt.Errorf("the evaluator never cut %s off (last: %s)", clusterBad, last)
}

func (c *clusterRun) publishSync(ctx context.Context, evs []schemas.Event) error {
	for _, ev := range evs {
		m, err := message(ev)
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = c.js.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			return fmt.Errorf("publish setup event: %w", err)
		}
	}
	return nil
}

// evaluatorEvents parses mailmon_complaint_evaluator_events_total by type
// from an evaluator's /metrics.
func evaluatorEvents(ctx context.Context, port int) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpQuick.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	const prefix = `mailmon_complaint_evaluator_events_total{type="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		typ, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		out[typ] = int(f)
	}
	return out, sc.Err()
}

// --- ClickHouse -----------------------------------------------------------

// storedQuery counts the load's distinct ids over every kind's table
// (the Distributed tables when clustered).
func storedQuery() string {
	var parts []string
	for _, k := range schemas.Kinds() {
		parts = append(parts, fmt.Sprintf("SELECT uniqExact(id) AS c FROM %s.%s WHERE source_worker = 'loadtest'", database, k.Table))
	}
	return "SELECT sum(c) FROM (" + strings.Join(parts, " UNION ALL ") + ")"
}

func (c *clusterRun) stored(ctx context.Context) (int, error) {
	out, err := chQueryAny(ctx, c.ch, storedQuery())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// catchUp watches ClickHouse after a kill: when the first new event was
// stored (takeover of the inserts) and when it held as many events as
// JetStream had acked at the kill (caught up).
type catchUp struct {
	kill     *clusterKill
	since    time.Time
	firstNew bool // takeover is the first growth
	done     chan struct{}
	cancel   context.CancelFunc
}

func (c *clusterRun) watchCatchUp(ctx context.Context, k *clusterKill, firstNew bool) *catchUp {
	base, _ := c.stored(ctx)
	target := int(c.pub.ackedN.Load())
	wctx, cancel := context.WithCancel(ctx)
	cu := &catchUp{kill: k, since: time.Now(), firstNew: firstNew, done: make(chan struct{}), cancel: cancel}
	k.CaughtUpMs = -1
	if firstNew {
		k.TakeoverMs = -1
	}
	go func() {
		defer close(cu.done)
		for wctx.Err() == nil {
			n, err := c.stored(wctx)
			ms := time.Since(cu.since).Milliseconds()
			if err == nil {
				if firstNew && k.TakeoverMs < 0 && n > base {
					k.TakeoverMs = ms
				}
				if n >= target {
					k.CaughtUpMs = ms
					if !firstNew || k.TakeoverMs >= 0 {
						return
					}
				}
			}
			sleepCtx(wctx, 250*time.Millisecond)
		}
	}()
	return cu
}

// wait ends the watch after at most d more.
func (cu *catchUp) wait(d time.Duration) {
	select {
	case <-cu.done:
	case <-time.After(d):
	}
	cu.cancel()
	<-cu.done
}

// settle waits until ClickHouse holds every acked event.
func (c *clusterRun) settle(ctx context.Context) error {
	want := c.res.Published
	var got int
	err := waitUntil(ctx, c.opts.settle, time.Second, "clickhouse holds every acked event", func() error {
		var err error
		if got, err = c.stored(ctx); err != nil {
			return err
		}
		if got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	progress(c.log, "clickhouse holds all %d acked events", want)
	if !c.res.ClickHouseCluster {
		return nil
	}
	// Replication: both replicas' own tables hold the same rows of the
	// load, the killed one included.
	var differ []string
	err = waitUntil(ctx, c.opts.settle, time.Second, "both replicas hold the same rows", func() error {
		differ = differ[:0]
		for _, k := range schemas.Kinds() {
			q := fmt.Sprintf("SELECT count() FROM %s.%s_local WHERE source_worker = 'loadtest'", database, k.Table)
			var counts []string
			for _, r := range c.ch {
				out, err := chQuery(ctx, r, q)
				if err != nil {
					return err
				}
				counts = append(counts, strings.TrimSpace(out))
			}
			if counts[0] != counts[1] {
				differ = append(differ, fmt.Sprintf("%s %s", k.Table, strings.Join(counts, "/")))
			}
		}
		if len(differ) > 0 {
			return fmt.Errorf("rows differ: %s", strings.Join(differ, ", "))
		}
		return nil
	})
	c.res.ReplicasDiffer = len(differ)
	if err == nil {
		progress(c.log, "both replicas hold the same rows")
	}
	return err
}

// verify matches the load's rows in ClickHouse against the acked ids:
// lost, doubled after FINAL, raw duplicate rows, distinct per kind.
func (c *clusterRun) verify(ctx context.Context) error {
	sent := int(c.pub.sent.Load())
	index := make(map[string]int, sent)
	for i := range sent {
		index[c.pub.idFor(i)] = i
	}
	found := make([]bool, sent)
	for k, kind := range c.pub.gen.mix.kinds {
		table := database + "." + kind.Table
		out, err := chQueryAny(ctx, c.ch, "SELECT id, count() FROM "+table+" WHERE source_worker = 'loadtest' GROUP BY id FORMAT TabSeparated")
		if err != nil {
			return fmt.Errorf("verify %s: %w", table, err)
		}
		distinct := 0
		for line := range strings.Lines(out) {
			id, cnt, ok := strings.Cut(strings.TrimSpace(line), "\t")
			if !ok {
				continue
			}
			n, _ := strconv.Atoi(cnt)
			distinct++
			c.res.RawDuplicateRows += n - 1
			if i, ok := index[id]; ok && c.pub.gen.mix.kindIndex(i) == k {
				found[i] = true
			}
		}
		c.res.Rows[kind.Type] = distinct
		c.res.Stored += distinct
		out, err = chQueryAny(ctx, c.ch, "SELECT count() FROM "+table+" FINAL WHERE source_worker = 'loadtest'")
		if err != nil {
			return fmt.Errorf("verify %s FINAL: %w", table, err)
		}
		final, _ := strconv.Atoi(strings.TrimSpace(out))
		c.res.Doubled += final - distinct
	}
	for i := range sent {
		if c.pub.acked[i].Load() && !found[i] {
			c.res.Lost++
		}
	}
	return nil
}

// summary writes the human summary to stderr.
func (c *clusterRun) summary() {
	r := c.res
	progress(c.log, "summary: published %d (acked), stored %d, lost %d, doubled %d (raw duplicate rows %d), never acked %d",
		r.Published, r.Stored, r.Lost, r.Doubled, r.RawDuplicateRows, r.Unacked)
	progress(c.log, "summary: policy asked %d, wrong %d, connection errors %d, longest gap without a correct answer %dms",
		r.PolicyAsked, r.PolicyWrong, r.PolicyErrors, r.PolicyGapMaxMs)
	if c.pw != nil {
		c.pw.mu.Lock()
		for _, s := range c.pw.wrongSeen {
			progress(c.log, "summary: wrong policy answer at %s", s)
		}
		c.pw.mu.Unlock()
	}
	for _, k := range r.Kills {
		progress(c.log, "summary: kill %-20s %-12s takeover %6dms (%s), caught up %6dms, restart ready %6dms", k.What, k.Victim, k.TakeoverMs, k.Takeover, k.CaughtUpMs, k.RestartReadyMs)
	}
	for _, e := range r.Errors {
		progress(c.log, "summary: error: %s", e)
	}
}
