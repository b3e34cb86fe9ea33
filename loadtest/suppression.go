package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// The suppression scenario: N entries in the suppression bucket, then the
// policy service started on them, from the bucket (cold) and from its
// snapshot (warm), and asked at a steady rate over several connections,
// as Postfix's smtpd processes ask. It reports the time to load the set
// at start, the resident memory per entry, and the answer latency against
// the same service asked the same requests with an empty bucket.
//
// NATS runs in a mailmon process of its own (with the complaint-evaluator,
// idle here), so the policy service's memory is its own, not the
// JetStream server's; the policy service connects to it as its own user.
const (
	// The targets the exit status checks.
	suppressTargetP99Ratio      = 2.0
	suppressTargetBytesPerEntry = 100.0
	suppressTargetStart         = 30 * time.Second
	// suppressCustomers is how many customers the entries are spread over.
	suppressCustomers = 1000
)

type suppressionOptions struct {
	n, conns, rate, churn     int
	hit                       float64
	duration, timeout, settle time.Duration
	keep                      bool
}

func parseSuppressionFlags(args []string, stderr io.Writer) (suppressionOptions, error) {
	fs := flag.NewFlagSet("suppression", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o suppressionOptions
	fs.IntVar(&o.n, "n", 10_000_000, "entries in the suppression bucket")
	fs.IntVar(&o.conns, "conns", 20, "policy connections (Postfix keeps about one per smtpd process)")
	fs.IntVar(&o.rate, "rate", 2000, "policy requests per second over all connections")
	fs.IntVar(&o.churn, "churn", 20, "entries added per second while the loaded service is asked (the suppressor's writes)")
	fs.Float64Var(&o.hit, "hit", 0.1, "share of requests for a suppressed recipient")
	fs.DurationVar(&o.duration, "duration", 70*time.Second, "length of each request phase (over a minute, so one snapshot write falls in it)")
	fs.DurationVar(&o.settle, "settle", 15*time.Second, "wait after a load before memory is read (the load's garbage returned)")
	fs.DurationVar(&o.timeout, "timeout", 40*time.Minute, "give up after this")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, NATS data, snapshot)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if o.n < 1000 {
		problems = append(problems, "-n must be at least 1000")
	}
	if o.conns < 1 || o.rate < o.conns || o.churn < 0 {
		problems = append(problems, "-conns must be at least 1, -rate at least -conns, -churn not negative")
	}
	if o.hit < 0 || o.hit > 1 {
		problems = append(problems, "-hit must be between 0 and 1")
	}
	if o.duration < 5*time.Second || o.timeout <= 0 || o.settle < 0 {
		problems = append(problems, "-duration must be at least 5s, -timeout positive, -settle not negative")
	}
	return o, joinProblems(problems)
}

// suppressionResult is the JSON line the scenario ends with.
type suppressionResult struct {
	Scenario    string  `json:"scenario"`
	Entries     int     `json:"entries"`
	PublishS    float64 `json:"publish_s"`
	PublishPerS int     `json:"publish_per_s"`
	BucketBytes uint64  `json:"bucket_bytes"`
	// Start: from the process start to the set enforced whole, and to the
	// watch caught up with the bucket; service_load_s is the service's own
	// figure (mailmon_policy_service_suppression_load_seconds).
	ColdStartS       float64 `json:"cold_start_s"`
	ColdServiceLoadS float64 `json:"cold_service_load_s"`
	WarmEnforcingS   float64 `json:"warm_enforcing_s"`
	WarmLiveS        float64 `json:"warm_live_s"`
	SnapshotBytes    int64   `json:"snapshot_bytes"`
	// Memory of the policy-service process (RSS) and its Go heap in use.
	RSSEmptyMB        float64 `json:"rss_empty_mb"`
	RSSColdMB         float64 `json:"rss_cold_mb"`
	RSSWarmMB         float64 `json:"rss_warm_mb"`
	BytesPerEntryCold float64 `json:"bytes_per_entry_cold"`
	BytesPerEntryWarm float64 `json:"bytes_per_entry_warm"`
	HeapPerEntryWarm  float64 `json:"heap_bytes_per_entry_warm"`
	// Requests.
	Conns        int     `json:"conns"`
	Rate         int     `json:"rate"`
	Requests     int     `json:"requests_per_run"`
	BaseP50us    float64 `json:"baseline_p50_us"`
	BaseP99us    float64 `json:"baseline_p99_us"`
	OursP50us    float64 `json:"ours_p50_us"`
	OursP99us    float64 `json:"ours_p99_us"`
	OursMaxUs    float64 `json:"ours_max_us"`
	P50Ratio     float64 `json:"p50_ratio"`
	P99Ratio     float64 `json:"p99_ratio"`
	Rejected     int     `json:"rejected"`
	WrongAnswers int     `json:"wrong_answers"`
	Churned      int     `json:"churned"`
	ElapsedS     float64 `json:"elapsed_s"`
	Error        string  `json:"error,omitempty"`
	KeptDir      string  `json:"kept_dir,omitempty"`
}

func (r suppressionResult) ok() bool {
	return r.Error == "" && r.WrongAnswers == 0 && r.P99Ratio > 0 && r.P99Ratio <= suppressTargetP99Ratio &&
		r.BytesPerEntryCold < suppressTargetBytesPerEntry && r.BytesPerEntryWarm < suppressTargetBytesPerEntry &&
		r.WarmEnforcingS < suppressTargetStart.Seconds()
}

func runSuppression(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseSuppressionFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "suppression", err)
	}
	started := time.Now()
	res := suppressionResult{Scenario: "suppression", Entries: opts.n, Conns: opts.conns, Rate: opts.rate}
	s := &suppressionRun{opts: opts, res: &res, log: stderr}
	if err := s.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "suppression", res, res.ok())
}

type suppressionRun struct {
	opts suppressionOptions
	res  *suppressionResult
	log  io.Writer

	dir, bin string
	nc       *nats.Conn // to the NATS host that holds the entries
}

// policyChild is one policy-service process and where it answers.
type policyChild struct {
	*child
	httpPort   int
	policyAddr string
	started    time.Time
}

func (s *suppressionRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, s.opts.timeout)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mailmon-loadtest-suppression-", s.opts.keep, &s.res.KeptDir, s.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	s.dir = dir
	progress(s.log, "building mailmon")
	if s.bin, err = buildMailmon(ctx, root, dir); err != nil {
		return err
	}

	// Two NATS hosts: one gets the entries, the other keeps an empty
	// bucket for the baseline service.
	full, err := s.startNATSHost(ctx, "full")
	if err != nil {
		return err
	}
	defer stopLogged(s.log, full.child)
	empty, err := s.startNATSHost(ctx, "empty")
	if err != nil {
		return err
	}
	defer stopLogged(s.log, empty.child)
	if s.nc, err = connectChildNATS(full.config, full.port); err != nil {
		return err
	}
	defer s.nc.Close()

	// 1. The baseline: the policy service on an empty bucket. It runs
	// to the end, beside the loaded one, so both are measured at the same
	// moments.
	base, err := s.startPolicy(ctx, "baseline", empty)
	if err != nil {
		return err
	}
	defer stopLogged(s.log, base.child)
	if err := base.waitMetric(ctx, "mailmon_policy_service_suppression_watch_up", func(v float64) bool { return v == 1 }); err != nil {
		return err
	}

	// 2. The entries.
	if err := s.load(ctx); err != nil {
		return err
	}

	// 3. Cold start: the whole bucket.
	cold, err := s.startPolicy(ctx, "loaded", full)
	if err != nil {
		return err
	}
	n := float64(s.opts.n)
	if err := cold.waitMetric(ctx, "mailmon_policy_service_suppression_watch_up", func(v float64) bool { return v == 1 }); err != nil {
		return s.stopAfter(cold, err)
	}
	s.res.ColdStartS = round(time.Since(cold.started).Seconds(), 2)
	m, err := cold.metrics(ctx)
	if err != nil {
		return s.stopAfter(cold, err)
	}
	if m["mailmon_policy_service_suppression_entries"] != n {
		return s.stopAfter(cold, fmt.Errorf("cold start holds %v entries, want %d", m["mailmon_policy_service_suppression_entries"], s.opts.n))
	}
	s.res.ColdServiceLoadS = round(m["mailmon_policy_service_suppression_load_seconds"], 2)
	progress(s.log, "cold start: %d entries enforced and watched %.1fs after the process started (the load itself %.1fs)",
		s.opts.n, s.res.ColdStartS, s.res.ColdServiceLoadS)
	if err := cold.waitMetric(ctx, "mailmon_policy_service_suppression_snapshot_writes_total", func(v float64) bool { return v >= 1 }); err != nil {
		return s.stopAfter(cold, err)
	}
	sleepCtx(ctx, s.opts.settle)
	rss, _, err := cold.memory(ctx)
	if err != nil {
		return s.stopAfter(cold, err)
	}
	rssEmpty, _, err := base.memory(ctx)
	if err != nil {
		return s.stopAfter(cold, err)
	}
	s.res.RSSEmptyMB = round(rssEmpty/(1<<20), 1)
	s.res.RSSColdMB = round(rss/(1<<20), 1)
	s.res.BytesPerEntryCold = round((rss-rssEmpty)/n, 1)
	progress(s.log, "cold: %.1f MB resident (the baseline %.1f MB), %.1f bytes per entry", s.res.RSSColdMB, s.res.RSSEmptyMB, s.res.BytesPerEntryCold)
	if err := cold.stop(); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(s.policyDir("loaded"), "policy-service", "suppression.bin")); err == nil {
		s.res.SnapshotBytes = st.Size()
	}

	// 4. Warm start: the snapshot, then the bucket's changes since.
	warm, err := s.startPolicy(ctx, "loaded", full)
	if err != nil {
		return err
	}
	defer stopLogged(s.log, warm.child)
	if err := warm.waitMetric(ctx, "mailmon_policy_service_suppression_entries", func(v float64) bool { return v == n }); err != nil {
		return err
	}
	s.res.WarmEnforcingS = round(time.Since(warm.started).Seconds(), 2)
	if err := warm.waitMetric(ctx, "mailmon_policy_service_suppression_watch_up", func(v float64) bool { return v == 1 }); err != nil {
		return err
	}
	s.res.WarmLiveS = round(time.Since(warm.started).Seconds(), 2)
	progress(s.log, "warm start: %d entries enforced %.2fs after the process started, watch caught up at %.2fs",
		s.opts.n, s.res.WarmEnforcingS, s.res.WarmLiveS)
	sleepCtx(ctx, s.opts.settle)
	rss, heap, err := warm.memory(ctx)
	if err != nil {
		return err
	}
	rssEmpty, heapEmpty, err := base.memory(ctx)
	if err != nil {
		return err
	}
	s.res.RSSWarmMB = round(rss/(1<<20), 1)
	s.res.BytesPerEntryWarm = round((rss-rssEmpty)/n, 1)
	s.res.HeapPerEntryWarm = round((heap-heapEmpty)/n, 1)
	progress(s.log, "warm: %.1f MB resident (the baseline %.1f MB), %.1f bytes per entry (Go heap in use %.1f bytes per entry); asking both for %s",
		s.res.RSSWarmMB, rssEmpty/(1<<20), s.res.BytesPerEntryWarm, s.res.HeapPerEntryWarm, s.opts.duration)

	// 5. The same requests to both services, interleaved, while entries
	// keep being added to the loaded one's bucket.
	baseLat, ours, err := s.ask(ctx, base, warm)
	if err != nil {
		return err
	}
	slices.Sort(baseLat)
	slices.Sort(ours)
	s.res.Requests = len(ours)
	s.res.BaseP50us, s.res.BaseP99us = micros(percentile(baseLat, 50)), micros(percentile(baseLat, 99))
	s.res.OursP50us, s.res.OursP99us = micros(percentile(ours, 50)), micros(percentile(ours, 99))
	s.res.OursMaxUs = micros(ours[len(ours)-1])
	if s.res.BaseP50us > 0 && s.res.BaseP99us > 0 {
		s.res.P50Ratio = round(s.res.OursP50us/s.res.BaseP50us, 2)
		s.res.P99Ratio = round(s.res.OursP99us/s.res.BaseP99us, 2)
	}
	progress(s.log, "answers: baseline p50 %.0fus p99 %.0fus; with %d entries p50 %.0fus p99 %.0fus (ratio %.2f); %d rejected, %d wrong",
		s.res.BaseP50us, s.res.BaseP99us, s.opts.n, s.res.OursP50us, s.res.OursP99us, s.res.P99Ratio, s.res.Rejected, s.res.WrongAnswers)
	if err := warm.failed(); err != nil {
		return err
	}
	return base.failed()
}

func stopLogged(log io.Writer, c *child) {
	if err := c.stop(); err != nil {
		progress(log, "stop: %v", err)
	}
}

func (s *suppressionRun) stopAfter(c *policyChild, err error) error {
	if stopErr := c.stop(); stopErr != nil {
		progress(s.log, "stop: %v", stopErr)
	}
	return err
}

// natsHost is a mailmon process that holds a NATS server.
type natsHost struct {
	*child
	config string // its config file (its credentials are beside it)
	port   int
}

// startNATSHost starts a mailmon process that holds NATS (and the
// complaint-evaluator, idle here).
func (s *suppressionRun) startNATSHost(ctx context.Context, name string) (*natsHost, error) {
	dir := filepath.Join(s.dir, "nats-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := freePorts()
	if err != nil {
		return nil, err
	}
	doc := childConfigHead("# Written by the mailmon load-test harness (suppression scenario): a NATS host.", dir, p.HTTP, p.NATS)
	cfg := filepath.Join(dir, "mailmon.yaml")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		return nil, err
	}
	c, err := startChild(s.bin, cfg, "complaint-evaluator")
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, p.HTTP); err != nil {
		c.stop()
		return nil, err
	}
	return &natsHost{child: c, config: cfg, port: p.NATS}, nil
}

func (s *suppressionRun) policyDir(name string) string { return filepath.Join(s.dir, "policy-"+name) }

// startPolicy starts a policy-service process connected to the NATS host
// as the policy-service user; name picks its data dir (and so its
// snapshot).
func (s *suppressionRun) startPolicy(ctx context.Context, name string, host *natsHost) (*policyChild, error) {
	dir := s.policyDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p, err := freePorts()
	if err != nil {
		return nil, err
	}
	policyAddr := fmt.Sprintf("127.0.0.1:%d", p.ClickHouseTCP) // a free port; ClickHouse is not used
	doc := fmt.Sprintf(`# Written by the mailmon load-test harness (suppression scenario): the policy service.
data_dir: %q
log:
  level: warn
  format: text
nats:
  url: "nats://127.0.0.1:%d"
  users:
    policy-service:
      password_file: %q
http:
  addr: "127.0.0.1:%d"
policy_service:
  listen: %q
`, dir, host.port, filepath.Join(filepath.Dir(host.config), "nats", "credentials", "policy-service"), p.HTTP, policyAddr)
	cfg := filepath.Join(dir, "mailmon.yaml")
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		return nil, err
	}
	began := time.Now()
	c, err := startChild(s.bin, cfg, "policy-service")
	if err != nil {
		return nil, err
	}
	pc := &policyChild{child: c, httpPort: p.HTTP, policyAddr: policyAddr, started: began}
	if err := c.waitReady(ctx, p.HTTP); err != nil {
		c.stop()
		return nil, err
	}
	return pc, nil
}

// metrics reads the child's unlabelled metrics (and the first series of
// labelled ones).
func (c *policyChild) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.httpPort), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		if _, seen := out[name]; seen {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// waitMetric polls the child's metric until ok accepts it.
func (c *policyChild) waitMetric(ctx context.Context, name string, ok func(float64) bool) error {
	last := "no answer"
	for {
		m, err := c.metrics(ctx)
		if err == nil {
			if v, found := m[name]; found {
				if ok(v) {
					return nil
				}
				last = strconv.FormatFloat(v, 'f', -1, 64)
			}
		} else {
			last = err.Error()
		}
		if err := c.failed(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (last %s): %w", name, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// memory is the child's resident memory and Go heap in use, in bytes.
func (c *policyChild) memory(ctx context.Context) (rss, heap float64, err error) {
	m, err := c.metrics(ctx)
	if err != nil {
		return 0, 0, err
	}
	rss, ok := m["process_resident_memory_bytes"]
	if !ok {
		return 0, 0, fmt.Errorf("the policy service exports no process_resident_memory_bytes")
	}
	return rss, m["go_memstats_heap_inuse_bytes"], nil
}

// The entries: entry i is customer i%suppressCustomers's address
// user<i>@dom<i%5000>.example, as the suppressor keys it (no hash key:
// SHA-256). Entries i >= n are never stored (except those the churn adds,
// from 3n on), so they are the requests' unsuppressed recipients.
func suppressCustomer(i int) string { return fmt.Sprintf("cust-%04d", i%suppressCustomers) }
func suppressAddress(i int) (addr, domain string) {
	domain = fmt.Sprintf("dom%d.example", i%5000)
	return fmt.Sprintf("user%d@%s", i, domain), domain
}

// suppressOwner and suppressDigest derive a key's parts the way the
// suppression package does (its key layout r.<owner>.<digest>); the
// scenario checks every answer, so a drift shows as wrong answers.
func suppressOwner(customer string) string {
	d := sha256.Sum256([]byte("customer\x00" + customer))
	return hex.EncodeToString(d[:8])
}

func suppressDigest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:16])
}

// suppressValue is a bucket value as the suppressor writes it for a hard
// bounce.
type suppressValue struct {
	schemas.SuppressionTarget
	Reason         string    `json:"reason"`
	BounceReason   string    `json:"bounce_reason,omitempty"`
	BounceCategory string    `json:"bounce_category,omitempty"`
	Status         string    `json:"status,omitempty"`
	Reply          string    `json:"reply,omitempty"`
	SourceEventIDs []string  `json:"source_event_ids,omitempty"`
	Expires        time.Time `json:"expires,omitzero"`
	AddedID        string    `json:"added_id"`
	Created        time.Time `json:"created"`
}

func suppressEntry(i int, now time.Time) (key string, value []byte) {
	customer := suppressCustomer(i)
	addr, domain := suppressAddress(i)
	digest := suppressDigest(addr)
	key = "r." + suppressOwner(customer) + "." + digest
	v := suppressValue{
		SuppressionTarget: schemas.SuppressionTarget{Key: key, Scope: schemas.SuppressCustomerRecipient, Customer: customer,
			Recipient: addr, RecipientHash: digest, RecipientDomain: domain},
		Reason: schemas.SuppressHardBounce, BounceReason: "user_unknown", BounceCategory: "user_unknown", Status: "5.1.1",
		Reply:          "550 5.1.1 <" + addr + ">: Recipient address rejected: User unknown in virtual mailbox table",
		SourceEventIDs: []string{schemas.NewID()}, AddedID: schemas.NewID(), Created: now.UTC().Truncate(time.Millisecond),
	}
	if i%10 < 7 { // most bounce entries expire, complaints never
		v.Expires = now.Add(90 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	}
	value, _ = json.Marshal(v)
	return key, value
}

// load publishes the n entries straight to the bucket's subjects.
func (s *suppressionRun) load(ctx context.Context) error {
	progress(s.log, "loading %d entries into the suppression bucket", s.opts.n)
	pub, err := newAsyncPublisher(s.nc, 16384)
	if err != nil {
		return err
	}
	now := time.Now()
	began := time.Now()
	for i := range s.opts.n {
		key, value := suppressEntry(i, now)
		if err := publishKV(ctx, pub, "$KV.suppression."+key, value); err != nil {
			return err
		}
		if i > 0 && i%1_000_000 == 0 {
			progress(s.log, "%d entries published (%.0f/s)", i, float64(i)/time.Since(began).Seconds())
		}
	}
	again, err := pub.finish(ctx)
	if err != nil {
		return err
	}
	took := time.Since(began)
	s.res.PublishS = round(took.Seconds(), 1)
	s.res.PublishPerS = int(float64(s.opts.n) / took.Seconds())
	js := pub.js
	st, err := js.Stream(ctx, "KV_suppression")
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	s.res.BucketBytes = info.State.Bytes
	if info.State.Msgs != uint64(s.opts.n) {
		return fmt.Errorf("the bucket holds %d values after %d puts", info.State.Msgs, s.opts.n)
	}
	progress(s.log, "%d entries in the bucket (%.1f GB) in %.1fs (%d/s, %d published again)", s.opts.n,
		float64(s.res.BucketBytes)/1e9, took.Seconds(), s.res.PublishPerS, again)
	return nil
}

// publishKV publishes one bucket value asynchronously, waiting while too
// many are pending; no message id: a second put of a value is harmless.
func publishKV(ctx context.Context, p *asyncPublisher, subject string, value []byte) error {
	for {
		_, err := p.js.PublishAsync(subject, value, jetstream.WithStallWait(time.Second))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// ask sends the same requests to both services, interleaved: conns
// workers, each with a connection to either, each at rate/conns requests
// per second to each, for duration, the service asked first alternating.
// A share hit of the requests is for an entry's address from its
// customer (550 5.1.1 from the loaded service), as many for a stored address
// from another customer, the rest for addresses never stored (DUNNO).
// Entries are added at churn per second meanwhile.
func (s *suppressionRun) ask(ctx context.Context, base, loaded *policyChild) (baseLat, ours []int64, err error) {
	per := time.Duration(float64(time.Second) * float64(s.opts.conns) / float64(s.opts.rate))
	var mu sync.Mutex
	var wg sync.WaitGroup
	phase, stop := context.WithTimeout(ctx, s.opts.duration)
	defer stop()
	if s.opts.churn > 0 {
		wg.Go(func() { s.churn(phase) })
	}
	for w := range s.opts.conns {
		wg.Go(func() {
			b, o, rejected, wrong, werr := s.askOne(phase, base.policyAddr, loaded.policyAddr, w, per)
			mu.Lock()
			defer mu.Unlock()
			baseLat, ours = append(baseLat, b...), append(ours, o...)
			s.res.Rejected += rejected
			s.res.WrongAnswers += wrong
			if werr != nil && err == nil {
				err = werr
			}
		})
	}
	wg.Wait()
	if err == nil && (len(baseLat) == 0 || len(ours) == 0) {
		err = fmt.Errorf("no answers")
	}
	return baseLat, ours, err
}

func (s *suppressionRun) askOne(ctx context.Context, baseAddr, oursAddr string, w int, per time.Duration) (baseLat, ours []int64, rejected, wrong int, err error) {
	b, err := dialPolicyClient(baseAddr)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer b.c.Close()
	o, err := dialPolicyClient(oursAddr)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer o.c.Close()
	rnd := rand.New(rand.NewPCG(uint64(w), 42))
	next := time.Now().Add(time.Duration(rnd.Int64N(int64(per))))
	for q := 0; ; q++ {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return baseLat, ours, rejected, wrong, nil
			}
		} else if ctx.Err() != nil {
			return baseLat, ours, rejected, wrong, nil
		}
		next = next.Add(per)
		i, customer := 0, ""
		suppressed := false
		switch x := rnd.Float64(); {
		case x < s.opts.hit:
			i = rnd.IntN(s.opts.n)
			customer, suppressed = suppressCustomer(i), true
		case x < s.opts.hit*2:
			i = rnd.IntN(s.opts.n)
			customer = suppressCustomer(i + 1) // a stored address, another customer
		default:
			i = s.opts.n + rnd.IntN(s.opts.n)
			customer = suppressCustomer(i)
		}
		rcpt, _ := suppressAddress(i)
		req := postfixRequest(customer, rcpt, w, q)
		first, second := b, o
		if q%2 == 1 {
			first, second = o, b
		}
		a1, l1, err := first.ask(req)
		if err != nil {
			return baseLat, ours, rejected, wrong, err
		}
		a2, l2, err := second.ask(req)
		if err != nil {
			return baseLat, ours, rejected, wrong, err
		}
		baseAction, oursAction := a1, a2
		if first == o {
			baseAction, oursAction = a2, a1
			ours, baseLat = append(ours, l1), append(baseLat, l2)
		} else {
			baseLat, ours = append(baseLat, l1), append(ours, l2)
		}
		if strings.HasPrefix(oursAction, "550 ") {
			rejected++
		}
		if baseAction != "DUNNO" {
			wrong++
		}
		if suppressed && !strings.HasPrefix(oursAction, "550 5.1.1") || !suppressed && oursAction != "DUNNO" {
			wrong++
		}
	}
}

// postfixRequest is a request as Postfix 3.7's smtpd sends it at RCPT TO.
func postfixRequest(customer, rcpt string, w, q int) string {
	return "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n" +
		"helo_name=app" + strconv.Itoa(w) + ".example\nqueue_id=\nsender=bounces@" + customer + ".example\n" +
		"recipient=" + rcpt + "\nrecipient_count=0\nclient_address=10.0.0." + strconv.Itoa(w%250+1) + "\n" +
		"client_name=app" + strconv.Itoa(w) + ".example\nreverse_client_name=app" + strconv.Itoa(w) + ".example\n" +
		"instance=" + strconv.Itoa(w) + "." + strconv.Itoa(q) + "\nsasl_method=plain\nsasl_username=" + customer + "\n" +
		"sasl_sender=\nsize=48211\nccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n" +
		"encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n" +
		"etrn_domain=\nstress=\nserver_address=10.0.0.25\nserver_port=587\npolicy_context=\n" +
		"compatibility_level=3.6\nmail_version=3.7.11\n\n"
}

// churn adds entries at opts.churn per second until ctx ends, as the
// suppressor would.
func (s *suppressionRun) churn(ctx context.Context) {
	per := time.Second / time.Duration(s.opts.churn)
	t := time.NewTicker(per)
	defer t.Stop()
	for i := 3 * s.opts.n; ; i++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		key, value := suppressEntry(i, time.Now())
		if err := s.nc.Publish("$KV.suppression."+key, value); err != nil {
			return
		}
		s.res.Churned++
	}
}

// micros turns nanoseconds into microseconds with one decimal.
func micros(ns int64) float64 { return round(float64(ns)/1e3, 1) }
