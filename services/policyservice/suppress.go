package policyservice

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// suppressSnapshotEvery is the least time between two suppression
// snapshots: a write of ten million entries takes about a second.
const suppressSnapshotEvery = time.Minute

// suppressing is the server's suppression part: the set, the answer it
// gives, and the handshake by which the snapshot writer gets a copy of
// the live set from the watch.
type suppressing struct {
	set     suppressSet
	answer  string // "REJECT <reject_text>"
	hasher  suppression.Hasher
	metrics *suppressMetrics
	// copies carries the snapshot writer's requests for a copy of the set
	// to the watch, the set's only writer, which answers between two
	// updates: the copy is exactly the set at its revision.
	copies chan chan suppressCopy
	dirty  chan struct{} // signalled after every change of the live set
	every  time.Duration // least time between two snapshots
}

// suppressCopy is the watch's answer to a copy request; ok is false when
// the set is not live (a snapshot is only written from live state).
type suppressCopy struct {
	pairs    []suppressPair
	revision uint64
	ok       bool
}

// suppressAnswer is the answer to a suppressed recipient: the configured
// reply code (access(5)'s "5NN text" action) or REJECT, and the configured
// text, which must start with a 5.x.x enhanced status code and pass the
// checks every text answered to Postfix passes.
func suppressAnswer(code int, rejectText string) (string, error) {
	text, err := cleanText(rejectText)
	if err != nil {
		return "", err
	}
	if code, _, _ := strings.Cut(text, " "); !validStatus(code) || code[0] != '5' {
		return "", fmt.Errorf("must start with a 5.x.x enhanced status code, got %s", quoteShort(text))
	}
	if code != 0 {
		if code < 550 || code > 559 {
			return "", fmt.Errorf("reply code %d is not 550 to 559", code)
		}
		return strconv.Itoa(code) + " " + text, nil
	}
	return "REJECT " + text, nil
}

func newSuppressing(cfg suppression.Config, reg prometheus.Registerer) (*suppressing, error) {
	answer, err := suppressAnswer(cfg.RejectCode, cfg.RejectText)
	if err != nil {
		return nil, fmt.Errorf("suppression.reject_text: %w", err)
	}
	m, err := newSuppressMetrics(reg, cfg.DryRunCustomers)
	if err != nil {
		return nil, err
	}
	return &suppressing{answer: answer, hasher: cfg.Hasher(), metrics: m,
		copies: make(chan chan suppressCopy), dirty: make(chan struct{}, 1), every: suppressSnapshotEvery,
		set: suppressSet{entries: map[uint64]uint32{}}}, nil
}

func (p *suppressing) changed() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// suppressed reports whether the request's recipient is on a suppression
// list that applies to it: the global list, or the list of one of the
// request's customers (its address or its domain). A match for a
// customer in dry_run_customers is only counted. A recipient that does
// not normalise is not suppressed: it is not an address any entry could
// be about.
func (s *Server) suppressed(req Request, customers []string, now time.Time) bool {
	p := s.supp
	if p.set.Len() == 0 {
		return false
	}
	addr, domain, err := s.cfg.Suppression.Normalize.Address(req["recipient"])
	if err != nil {
		return false
	}
	sec := now.Unix()
	hit := func(keys []suppression.RequestKey) bool {
		for _, k := range keys {
			if p.set.active(suppression.SetKey(k.Key), sec) {
				return true
			}
		}
		return false
	}
	if len(customers) == 0 {
		return hit(p.hasher.RequestKeys("", addr, domain))
	}
	for _, c := range customers {
		if !hit(p.hasher.RequestKeys(c, addr, domain)) {
			continue
		}
		if s.cfg.Suppression.DryRun(c) {
			p.metrics.dryRun.WithLabelValues(c).Inc()
			continue
		}
		return true
	}
	return false
}

// loadSuppressionSnapshot starts the set from the snapshot file, if there
// is a usable one.
func (s *Server) loadSuppressionSnapshot(path string) {
	p := s.supp
	began := time.Now()
	entries, revision, err := readSuppressionSnapshot(path, s.now())
	if err != nil {
		p.metrics.snapshotErrors.Inc()
		s.log.Error("suppression snapshot unusable; loading the whole bucket instead", "path", path, "error", err)
		return
	}
	if entries == nil {
		s.log.Info("no suppression snapshot yet; loading the whole bucket", "path", path)
		return
	}
	p.set.replace(entries, revision, false)
	took := time.Since(began)
	p.metrics.loaded("snapshot", len(entries), took)
	s.log.Info("suppression snapshot loaded; enforcing it, then reading the bucket's changes since", "path", path,
		"entries", len(entries), "revision", revision, "took", took.Round(time.Millisecond))
}

// watchSuppression keeps the set by watching the suppression bucket until
// ctx ends. The first watch after a snapshot was loaded resumes from the
// snapshot's revision, so only the changes since are read; any other
// watch loads the whole bucket and swaps it in once it is all in. While
// there is no live watch the entries held are still enforced, each until
// its own expiry: they are facts about recipients, not decisions that
// go stale.
func (s *Server) watchSuppression(ctx context.Context) {
	p := s.supp
	_, resume, _ := p.set.status() // loaded from the snapshot
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		kv, err := s.set.JetStream.KeyValue(ctx, suppression.Bucket)
		if err == nil {
			from := uint64(0)
			if resume {
				from = s.resumeRevision(ctx, kv)
			}
			resume = false
			err = s.suppressionWatch(ctx, kv, from)
		}
		if ctx.Err() != nil {
			return
		}
		p.set.setLive(false)
		p.metrics.watchUp.Set(0)
		p.metrics.watchRestarts.Inc()
		s.log.Warn("suppression watch down; enforcing the entries held until their expiry", "error", err,
			"entries", p.set.Len(), "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// resumeRevision is the revision a watch resumes from after the snapshot,
// or 0 (load the whole bucket) when the bucket cannot continue it: a
// bucket whose last revision is below the snapshot's was made anew.
func (s *Server) resumeRevision(ctx context.Context, kv jetstream.KeyValue) uint64 {
	revision, _, _ := s.supp.set.status()
	st, err := kv.Status(ctx)
	if err != nil {
		s.log.Warn("suppression bucket status unavailable; loading the whole bucket", "error", err)
		return 0
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().State.LastSeq < revision {
		s.log.Warn("suppression bucket is behind the snapshot (made anew?); loading the whole bucket",
			"snapshot_revision", revision, "bucket_revision", bs.StreamInfo().State.LastSeq)
		return 0
	}
	return revision + 1
}

// suppressionWatch is one watch of the bucket: from revision from (the
// changes since a snapshot), or, when from is 0, the whole bucket. The
// initial values are applied to the set as they come when the set held
// nothing (a first start) or holds the snapshot the watch resumes from;
// a whole bucket loaded again over a set already held is loaded aside and
// swapped in at once, so answers never come from a half-loaded copy.
func (s *Server) suppressionWatch(ctx context.Context, kv jetstream.KeyValue, from uint64) error {
	p := s.supp
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opts []jetstream.WatchOpt
	source := "bucket"
	if from > 0 {
		opts, source = append(opts, jetstream.ResumeFromRevision(from)), "resume"
	}
	_, held, _ := p.set.status()
	inPlace := from > 0 || !held
	began := time.Now()
	w, err := kv.WatchAll(wctx, opts...)
	if err != nil {
		return err
	}
	defer w.Stop()
	invalidAtStart := p.metrics.invalidN.Load()
	load := s.newSuppressLoad(inPlace)
	defer load.stop()
	for {
		var kve jetstream.KeyValueEntry
		var ok bool
		select {
		case kve, ok = <-w.Updates():
		case reply := <-p.copies:
			var c suppressCopy
			if load == nil {
				c.pairs, c.revision = p.set.pairs(s.now().Unix())
				c.ok = true
			}
			reply <- c
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return watchEnded{"suppression watch closed"}
		}
		if load != nil {
			if kve != nil {
				load.add(kve)
				continue
			}
			// The initial values are all in.
			load.finish(&p.set)
			load = nil
			took := time.Since(began)
			p.metrics.loaded(source, p.set.Len(), took)
			p.metrics.watchUp.Set(1)
			revision, _, _ := p.set.status()
			s.log.Info("suppression bucket watched", "source", source, "entries", p.set.Len(), "revision", revision,
				"invalid", p.metrics.invalidN.Load()-invalidAtStart, "took", took.Round(time.Millisecond))
			p.changed()
			continue
		}
		if kve == nil {
			continue
		}
		key, expiry, keep := s.readSuppression(kve)
		p.set.apply(key, expiry, keep, kve.Revision())
		p.metrics.entries.Set(float64(len(p.set.entries))) // the writer reads it without the lock
		p.changed()
	}
}

// suppressLoad decodes a watch's initial values on every core: among
// them each key comes at most once (the bucket keeps one revision per
// key), so their order does not matter. Decoding is most of the work of
// loading a bucket of millions of entries.
type suppressLoad struct {
	srv     *Server
	inPlace bool
	batch   []jetstream.KeyValueEntry
	jobs    chan []jetstream.KeyValueEntry
	results chan []suppressChange
	workers sync.WaitGroup
	merged  chan struct{}
	added   int // values queued
	// Built by the merging goroutine; read after merged is closed.
	fresh    map[uint64]uint32
	revision uint64
}

type suppressChange struct {
	key      uint64
	expiry   uint32
	keep     bool
	revision uint64
}

const suppressBatch = 512

func (s *Server) newSuppressLoad(inPlace bool) *suppressLoad {
	l := &suppressLoad{srv: s, inPlace: inPlace, jobs: make(chan []jetstream.KeyValueEntry, 8),
		results: make(chan []suppressChange, 8), merged: make(chan struct{})}
	for range max(runtime.GOMAXPROCS(0), 1) {
		l.workers.Go(func() {
			for batch := range l.jobs {
				out := make([]suppressChange, len(batch))
				for i, kve := range batch {
					key, expiry, keep := s.readSuppression(kve)
					out[i] = suppressChange{key, expiry, keep, kve.Revision()}
				}
				l.results <- out
			}
		})
	}
	go func() {
		defer close(l.merged)
		set := &s.supp.set
		for changes := range l.results {
			if l.inPlace {
				set.mu.Lock()
			} else if l.fresh == nil {
				l.fresh = map[uint64]uint32{}
			}
			m := l.fresh
			if l.inPlace {
				m = set.entries
			}
			for _, c := range changes {
				if c.keep {
					m[c.key] = c.expiry
				} else {
					delete(m, c.key)
				}
				l.revision = max(l.revision, c.revision)
			}
			if l.inPlace {
				set.revision = max(set.revision, l.revision)
				n := len(set.entries)
				set.mu.Unlock()
				s.supp.metrics.entries.Set(float64(n))
			}
		}
	}()
	return l
}

// add queues one initial value. The first one tells how many follow, so
// the map is made that big once instead of growing.
func (l *suppressLoad) add(kve jetstream.KeyValueEntry) {
	if l.added == 0 {
		l.presize(kve.Delta() + 1)
	}
	l.added++
	l.batch = append(l.batch, kve)
	if len(l.batch) == suppressBatch {
		l.jobs <- l.batch
		l.batch = nil
	}
}

// presize makes the map the load fills hold n entries without growing.
// It runs before any result is merged.
func (l *suppressLoad) presize(n uint64) {
	n = min(n, 1<<30)
	if !l.inPlace {
		if l.fresh == nil {
			l.fresh = make(map[uint64]uint32, n)
		}
		return
	}
	set := &l.srv.supp.set
	set.mu.Lock()
	if len(set.entries) == 0 {
		set.entries = make(map[uint64]uint32, n)
	}
	set.mu.Unlock()
}

// finish waits for every value to be merged and makes the set live: the
// loaded-aside map swapped in, or the set updated in place marked loaded.
func (l *suppressLoad) finish(set *suppressSet) {
	l.drain()
	if l.inPlace {
		set.mu.Lock()
		set.loaded, set.live = true, true
		set.revision = max(set.revision, l.revision)
		set.mu.Unlock()
	} else {
		if l.fresh == nil {
			l.fresh = map[uint64]uint32{}
		}
		set.replace(l.fresh, l.revision, true)
		l.fresh = nil
	}
	if l.added >= 100_000 {
		// The load's garbage (every value as received and decoded) is
		// many times the set's size: give it back now rather than over
		// minutes. The set itself holds no pointers, so this is cheap.
		debug.FreeOSMemory()
	}
}

func (l *suppressLoad) drain() {
	if l.jobs == nil {
		return
	}
	if len(l.batch) > 0 {
		l.jobs <- l.batch
		l.batch = nil
	}
	close(l.jobs)
	l.workers.Wait()
	close(l.results)
	<-l.merged
	l.jobs = nil
}

// stop ends the load's goroutines when the watch ends before the initial
// values are all in; a nil load is done already.
func (l *suppressLoad) stop() {
	if l != nil {
		l.drain()
	}
}

// readSuppression turns one bucket change into the set's form: the set
// key, the expiry and whether the key is to be held (false for a delete,
// an expired entry or a value that is not a valid entry under its key,
// which is counted and left out).
func (s *Server) readSuppression(kve jetstream.KeyValueEntry) (key uint64, expiry uint32, keep bool) {
	key = suppression.SetKey(kve.Key())
	if kve.Operation() != jetstream.KeyValuePut {
		return key, 0, false
	}
	e, err := suppression.Unmarshal(kve.Value())
	if err == nil && e.Key != kve.Key() {
		err = errors.New("stored under another key than its own")
	}
	if err == nil {
		if _, _, _, ok := suppression.ParseKey(kve.Key()); !ok {
			err = errors.New("not a suppression key")
		}
	}
	if err != nil {
		s.supp.metrics.countInvalid()
		return key, 0, false
	}
	expiry, keep = expirySeconds(e.Expires, s.now())
	return key, expiry, keep
}

// keepSuppressionSnapshot writes the snapshot after changes of the live
// set, at most once per suppressSnapshotEvery; the first one as soon as
// the set is live.
func (s *Server) keepSuppressionSnapshot(ctx context.Context, path string) {
	p := s.supp
	var last time.Time
	for {
		select {
		case <-p.dirty:
		case <-ctx.Done():
			return
		}
		if wait := p.every - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		reply := make(chan suppressCopy, 1)
		select {
		case p.copies <- reply: // taken once a watch runs
		case <-ctx.Done():
			return
		}
		c := <-reply
		if !c.ok {
			continue // not live: the end of the load signals again
		}
		err := writeSuppressionSnapshot(path, c.pairs, c.revision)
		last = time.Now()
		if err != nil {
			p.metrics.snapshotErrors.Inc()
			s.log.Error("could not write the suppression snapshot; the previous one stays", "path", path, "error", err)
			continue
		}
		p.metrics.snapshotWrites.Inc()
		p.metrics.snapshotEntries.Set(float64(len(c.pairs)))
		if len(c.pairs) >= 100_000 {
			// The copy is garbage now; give its memory back at once.
			c.pairs = nil
			debug.FreeOSMemory()
		}
	}
}

type suppressMetrics struct {
	entries         prometheus.Gauge
	rejects         prometheus.Counter
	dryRun          *prometheus.CounterVec
	invalid         prometheus.Counter
	watchUp         prometheus.Gauge
	watchRestarts   prometheus.Counter
	loads           *prometheus.CounterVec
	loadSeconds     prometheus.Gauge
	snapshotWrites  prometheus.Counter
	snapshotErrors  prometheus.Counter
	snapshotEntries prometheus.Gauge
	// invalidN mirrors invalid, for the load's log line.
	invalidN atomic.Int64
}

func newSuppressMetrics(reg prometheus.Registerer, dryRunCustomers []string) (*suppressMetrics, error) {
	const ns, sub = "mailmon", "policy_service"
	m := &suppressMetrics{
		entries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_entries", Help: "Suppression entries held (expired ones until the bucket deletes them)."}),
		rejects: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_rejects_total", Help: "Recipients answered REJECT because they are suppressed."}),
		dryRun: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_dry_run_total", Help: "Suppressed recipients of a dry_run_customers customer, answered as if not suppressed, by customer."}, []string{"customer"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_invalid_total", Help: "Suppression bucket values left out: undecodable, or not the entry of their key."}),
		watchUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_watch_up", Help: "1 while the watch of the suppression bucket is up and caught up."}),
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_watch_restarts_total", Help: "Times the watch of the suppression bucket broke or could not start (the entries held are still enforced)."}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_loads_total", Help: "Loads of the suppression set, by source: snapshot, bucket (the whole bucket), resume (the changes since the snapshot)."}, []string{"source"}),
		loadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_load_seconds", Help: "Time the last load of the suppression set took."}),
		snapshotWrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_snapshot_writes_total", Help: "Snapshots of the suppression set written to disk."}),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_snapshot_errors_total", Help: "Suppression snapshots that could not be written, or read at start."}),
		snapshotEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "suppression_snapshot_entries", Help: "Entries in the last suppression snapshot written."}),
	}
	for _, c := range dryRunCustomers {
		m.dryRun.WithLabelValues(c) // the only label values there can be
	}
	for _, src := range []string{"snapshot", "bucket", "resume"} {
		m.loads.WithLabelValues(src)
	}
	r := obs.NewRegistrar(reg)
	m.entries = obs.Register(r, m.entries)
	m.rejects = obs.Register(r, m.rejects)
	m.dryRun = obs.Register(r, m.dryRun)
	m.invalid = obs.Register(r, m.invalid)
	m.watchUp = obs.Register(r, m.watchUp)
	m.watchRestarts = obs.Register(r, m.watchRestarts)
	m.loads = obs.Register(r, m.loads)
	m.loadSeconds = obs.Register(r, m.loadSeconds)
	m.snapshotWrites = obs.Register(r, m.snapshotWrites)
	m.snapshotErrors = obs.Register(r, m.snapshotErrors)
	m.snapshotEntries = obs.Register(r, m.snapshotEntries)
	return m, r.Err()
}

func (m *suppressMetrics) loaded(source string, entries int, took time.Duration) {
	m.loads.WithLabelValues(source).Inc()
	m.loadSeconds.Set(took.Seconds())
	m.entries.Set(float64(entries))
}

// countInvalid counts a value left out.
func (m *suppressMetrics) countInvalid() {
	m.invalid.Inc()
	m.invalidN.Add(1)
}
