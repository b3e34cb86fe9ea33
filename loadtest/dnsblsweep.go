package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/peers"
)

const (
	// sweeperWorker is the worker under test.
	sweeperWorker = "dns-sweeper"
	// domainZone is the scenario's domain blocklist.
	domainZone = "dbl.test"
)

type dnsblOptions struct {
	prefix      string
	zones       int
	domains     int
	listedFrac  float64
	errorFrac   float64
	concurrency int
	rounds      int
	timeout     time.Duration
	seed        uint64
	keep        bool
}

func parseDNSBLFlags(args []string, stderr io.Writer) (dnsblOptions, error) {
	fs := flag.NewFlagSet("dnsbl-sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dnsblOptions
	fs.StringVar(&o.prefix, "prefix", "10.20.0.0/16", "IPv4 range swept (every address; /16 at most)")
	fs.IntVar(&o.zones, "zones", 2, "IP test zones served by rbldnsd (plus one domain zone)")
	fs.IntVar(&o.domains, "domains", 2000, "domains swept against the domain zone")
	fs.Float64Var(&o.listedFrac, "listed", 0.01, "fraction of the targets listed on each zone")
	fs.Float64Var(&o.errorFrac, "errors", 0.001, "fraction of the targets answered with an error code (or 127.0.0.1) on each zone")
	fs.IntVar(&o.concurrency, "concurrency", 32, "queries in flight, for the sweeper and the bare client alike")
	fs.IntVar(&o.rounds, "rounds", 5, "sweeps measured (one per start of mailmon), each between two baseline runs")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the sweep has not finished by then")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the answer key")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (zone files, config, logs)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	p, err := netip.ParsePrefix(o.prefix)
	switch {
	case err != nil || !p.Addr().Is4():
		problems = append(problems, fmt.Sprintf("-prefix %q is not an IPv4 prefix", o.prefix))
	case p.Bits() < 16 || p.Bits() > 28:
		problems = append(problems, fmt.Sprintf("-prefix must be a /16 to a /28, got /%d", p.Bits()))
	}
	if o.zones < 1 || o.zones > 8 {
		problems = append(problems, fmt.Sprintf("-zones must be 1 to 8, got %d", o.zones))
	}
	if o.domains < 0 || o.domains > 20000 {
		problems = append(problems, fmt.Sprintf("-domains must be 0 to 20000, got %d", o.domains))
	}
	if o.listedFrac <= 0 || o.errorFrac < 0 || o.listedFrac+o.errorFrac > 0.5 {
		problems = append(problems, "-listed must be positive, -errors not negative, and together at most 0.5")
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		problems = append(problems, fmt.Sprintf("-concurrency must be 1 to 1024, got %d", o.concurrency))
	}
	if o.rounds < 1 || o.rounds > 20 {
		problems = append(problems, fmt.Sprintf("-rounds must be 1 to 20, got %d", o.rounds))
	}
	if o.timeout <= 0 {
		problems = append(problems, "-timeout must be positive")
	}
	return o, joinProblems(problems)
}

// dnsblResult is the JSON line the scenario ends with.
type dnsblResult struct {
	Scenario string `json:"scenario"`
	Prefix   string `json:"prefix"`
	// Targets are the IPs and domains swept; Pairs the (target, zone)
	// checks they make.
	Targets int `json:"targets"`
	Zones   int `json:"zones"`
	Pairs   int `json:"pairs"`
	// ExpectedListed is the size of the answer key's listings.
	ExpectedListed int `json:"expected_listed"`
	// FalseListings are dnsbl.listed events for pairs the key does not
	// list (an error code or 127.0.0.1 counted as a listing, say).
	FalseListings int `json:"false_listings"`
	// MissedListings are listed pairs of the key without an event.
	MissedListings int `json:"missed_listings"`
	// ExpectedErrors are the key's error-code entries; ErrorsReported how
	// many of them came as dnsbl.error; UnexpectedErrors error events for
	// other pairs (timeouts, ...).
	ExpectedErrors   int `json:"expected_errors"`
	ErrorsReported   int `json:"errors_reported"`
	UnexpectedErrors int `json:"unexpected_errors"`
	// ZonesOK is how many zones passed their self-test.
	ZonesOK int `json:"zones_ok"`
	// LaterTransitions are listed or delisted events of the sweeps after
	// the first, over zones that did not change: there must be none.
	LaterTransitions int `json:"later_transitions"`
	// Queries is the first sweep's dnsbl.checked count: A queries,
	// self-tests and the TXT queries of listings; SweepMs its duration.
	Queries int   `json:"queries"`
	SweepMs int64 `json:"sweep_ms"`
	// OursPerS is the median over the rounds of queries / sweep time, as
	// the sweeper reported them in dnsbl.checked; OursRuns are the rounds.
	OursPerS float64   `json:"ours_per_s"`
	OursRuns []float64 `json:"ours_runs"`
	// BaselinePerS is the median of the bare miekg/dns client's runs (one
	// before the first sweep and one after each), asking the same A names
	// with one UDP socket per goroutine and as many goroutines.
	BaselinePerS  float64   `json:"baseline_per_s"`
	BaselineRuns  []float64 `json:"baseline_runs"`
	BaselineFails int       `json:"baseline_failures"`
	// Ratio is the median over the rounds of the sweep's rate divided by
	// the mean of the baseline runs just before and just after it, so that
	// other load on the machine, which drifts, weighs on both sides alike;
	// RoundRatios are the rounds' ratios.
	Ratio       float64   `json:"ratio"`
	RoundRatios []float64 `json:"round_ratios"`
	// TargetsMet: no false or missed listing, every error code reported,
	// and ratio >= 0.8.
	TargetsMet bool    `json:"targets_met"`
	ElapsedS   float64 `json:"elapsed_s"`
	Error      string  `json:"error,omitempty"`
	KeptDir    string  `json:"kept_dir,omitempty"`
}

func (r dnsblResult) correct() bool {
	return r.Error == "" && r.FalseListings == 0 && r.MissedListings == 0 && r.ErrorsReported == r.ExpectedErrors &&
		r.UnexpectedErrors == 0 && r.ZonesOK == r.Zones && r.LaterTransitions == 0
}

func runDNSBLSweep(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseDNSBLFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "dnsbl-sweep", err)
	}
	started := time.Now()
	res := dnsblResult{Scenario: "dnsbl-sweep", Prefix: opts.prefix, Zones: opts.zones + 1}
	r := &dnsblRun{opts: opts, res: &res, log: stderr}
	if err := r.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.TargetsMet = res.correct() && res.Ratio >= 0.8
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "dnsbl-sweep", res, res.correct())
}

// dnsblPair is one (target, zone) check.
type dnsblPair struct{ target, zone string }

// dnsblRun holds one run of the scenario.
type dnsblRun struct {
	opts dnsblOptions
	res  *dnsblResult
	log  io.Writer

	ipZones []string
	ips     []netip.Addr
	domains []string
	// listed and errs are the answer key.
	listed map[dnsblPair]bool
	errs   map[dnsblPair]bool
	// names are the A query names of every dnsblPair, for the baseline.
	names []string
}

func (r *dnsblRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, r.opts.timeout)
	defer cancel()
	if _, err := os.Stat(peers.RbldnsdBin); err != nil {
		return fmt.Errorf("rbldnsd is not installed (go tool task deps installs it): %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mailmon-loadtest-dnsbl-", r.opts.keep, &r.res.KeptDir, r.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	// rbldnsd drops root for its own user, which must read the zone files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}

	progress(r.log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}
	files := r.generate()
	progress(r.log, "answer key: %d targets x %d zones, %d listed, %d error codes", r.res.Targets, r.res.Zones, len(r.listed), len(r.errs))
	dnsAddr, stopDNS, err := startRbldnsdZones(ctx, dir, files)
	if err != nil {
		return err
	}
	defer stopDNS()

	progress(r.log, "baseline 1: bare miekg/dns client, %d A queries, %d goroutines", len(r.names), r.opts.concurrency)
	if err := r.baseline(ctx, dnsAddr); err != nil {
		return err
	}

	p, err := freePorts()
	if err != nil {
		return err
	}
	configPath, err := r.writeConfig(dir, p, dnsAddr)
	if err != nil {
		return err
	}
	var lastSeq uint64
	for n := 1; n <= r.opts.rounds; n++ {
		if lastSeq, err = r.round(ctx, bin, configPath, p, n, lastSeq); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
				err = fmt.Errorf("timed out after %s: %w", r.opts.timeout, err)
			}
			return err
		}
		progress(r.log, "baseline %d", n+1)
		if err := r.baseline(ctx, dnsAddr); err != nil {
			return err
		}
	}
	r.res.OursPerS = medianOf(r.res.OursRuns, 0)
	r.res.BaselinePerS = medianOf(r.res.BaselineRuns, 0)
	for i, ours := range r.res.OursRuns {
		if around := (r.res.BaselineRuns[i] + r.res.BaselineRuns[i+1]) / 2; around > 0 {
			r.res.RoundRatios = append(r.res.RoundRatios, round(ours/around, 3))
		}
	}
	r.res.Ratio = medianOf(r.res.RoundRatios, 3)
	return nil
}

// round starts mailmon, whose dns-sweeper sweeps once at start, reads the
// DNS stream after sequence from until that sweep's dnsbl.checked, stops
// mailmon (so the baseline that follows has the machine to itself) and
// returns the last stream sequence read. The first round is scored
// against the answer key; later ones, with the state kept in the data
// dir, must publish no transition.
func (r *dnsblRun) round(ctx context.Context, bin, configPath string, p ports, n int, from uint64) (last uint64, err error) {
	progress(r.log, "round %d: starting mailmon run -workers %s (nats 127.0.0.1:%d)", n, sweeperWorker, p.NATS)
	ch, err := startChild(bin, configPath, sweeperWorker)
	if err != nil {
		return 0, err
	}
	defer func() {
		if stopErr := ch.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err := ch.waitReady(ctx, p.HTTP); err != nil {
		return 0, err
	}
	nc, err := connectChildNATS(configPath, p.NATS)
	if err != nil {
		return 0, fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	sum, got, gotErr, last, err := r.collect(ctx, js, ch, from)
	if err != nil {
		return 0, err
	}
	rate := 0.0
	if sum.DurationMs > 0 {
		rate = round(float64(sum.Queries)/(float64(sum.DurationMs)/1000), 0)
	}
	r.res.OursRuns = append(r.res.OursRuns, rate)
	if n == 1 {
		r.score(sum, got, gotErr)
	} else {
		r.res.LaterTransitions += int(sum.NewlyListed + sum.Delisted)
	}
	progress(r.log, "round %d: %d queries in %d ms (%.0f/s), %d listed, %d newly listed, %d delisted", n, sum.Queries, sum.DurationMs, rate, sum.Listed, sum.NewlyListed, sum.Delisted)
	if err := forgetLastSweep(ctx, js); err != nil {
		return 0, err
	}
	progress(r.log, "round %d: stopping mailmon", n)
	return last, nil
}

// forgetLastSweep deletes the dns-sweeper's record of its last and current
// sweep (keys sweep/last and sweep/current of the dnsbl_state bucket, see
// services/dnssweeper/state.go), keeping the pairs' records: a sweeper
// started within an interval of its last complete sweep waits for the
// interval, and the next round needs it to sweep at once, with the state
// of the listings kept.
func forgetLastSweep(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.KeyValue(ctx, "dnsbl_state")
	if err != nil {
		return fmt.Errorf("dnsbl_state bucket: %w", err)
	}
	// The sweeper writes sweep/last shortly after its summary event:
	// wait for it, so it is not written again after the purge.
	for {
		if _, err := kv.Get(ctx, "sweep/last"); err == nil {
			break
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("read sweep/last: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for sweep/last: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, key := range []string{"sweep/last", "sweep/current"} {
		if err := kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("forget %s: %w", key, err)
		}
	}
	return nil
}

// median of xs, rounded to digits.
func medianOf(xs []float64, digits int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return round((s[len(s)/2-1]+s[len(s)/2])/2, digits)
}

// generate builds the zone files and the answer key.
func (r *dnsblRun) generate() map[string]string {
	rng := rand.New(rand.NewPCG(r.opts.seed, 0x6d61696c6d6f6e))
	prefix := netip.MustParsePrefix(r.opts.prefix).Masked()
	for a := prefix.Addr(); prefix.Contains(a); a = a.Next() {
		r.ips = append(r.ips, a)
	}
	for i := range r.opts.domains {
		r.domains = append(r.domains, fmt.Sprintf("d%05d.example", i))
	}
	r.listed, r.errs = map[dnsblPair]bool{}, map[dnsblPair]bool{}
	files := map[string]string{}
	codes := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.10"}

	pick := func(n, size int) []int { return rng.Perm(size)[:n] }
	for z := range r.opts.zones {
		zone := fmt.Sprintf("bl%d.test", z)
		r.ipZones = append(r.ipZones, zone)
		var b strings.Builder
		b.WriteString(":127.0.0.2:Listed in loadtest zone: $\n127.0.0.2\n")
		nListed := max(1, int(float64(len(r.ips))*r.opts.listedFrac))
		nErr := int(float64(len(r.ips)) * r.opts.errorFrac)
		chosen := pick(nListed+nErr, len(r.ips))
		// A listed /28 (rbldnsd's range syntax), if the prefix holds one.
		if len(r.ips) >= 64 {
			start := (rng.IntN(len(r.ips)/16-1) + 1) * 16
			fmt.Fprintf(&b, "%s/28 :127.0.0.3:Snowshoe range $\n", r.ips[start])
			for i := start; i < start+16; i++ {
				r.listed[dnsblPair{r.ips[i].String(), zone}] = true
			}
			chosen = slices.DeleteFunc(chosen, func(i int) bool { return i >= start && i < start+16 })
		}
		for k, i := range chosen {
			ip := r.ips[i].String()
			if k < nListed {
				fmt.Fprintf(&b, "%s :%s:Listed for the load test $\n", ip, codes[rng.IntN(len(codes))])
				r.listed[dnsblPair{ip, zone}] = true
				continue
			}
			if k%2 == 0 {
				fmt.Fprintf(&b, "%s :127.255.255.254:query via public/open resolver\n", ip)
			} else {
				fmt.Fprintf(&b, "%s :127.0.0.1:never a valid answer\n", ip)
			}
			r.errs[dnsblPair{ip, zone}] = true
		}
		files[zone+".zone"] = b.String()
	}
	var b strings.Builder
	b.WriteString(":127.0.1.2:Domain listed in loadtest DBL: $\ntest\n")
	if len(r.domains) > 0 {
		nListed := max(1, int(float64(len(r.domains))*r.opts.listedFrac))
		nErr := int(float64(len(r.domains)) * r.opts.errorFrac)
		for k, i := range pick(min(nListed+nErr, len(r.domains)), len(r.domains)) {
			d := r.domains[i]
			if k < nListed {
				fmt.Fprintf(&b, "%s\n", d)
				r.listed[dnsblPair{d, domainZone}] = true
			} else {
				fmt.Fprintf(&b, "%s :127.0.1.255:IP queries prohibited\n", d)
				r.errs[dnsblPair{d, domainZone}] = true
			}
		}
	}
	files[domainZone+".zone"] = b.String()

	for _, ip := range r.ips {
		rev := reverse4(ip)
		for _, z := range r.ipZones {
			r.names = append(r.names, rev+"."+z+".")
		}
	}
	for _, d := range r.domains {
		r.names = append(r.names, d+"."+domainZone+".")
	}
	r.res.Targets = len(r.ips) + len(r.domains)
	r.res.Pairs = len(r.names)
	r.res.ExpectedListed = len(r.listed)
	r.res.ExpectedErrors = len(r.errs)
	return files
}

func reverse4(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
}

// startRbldnsdZones serves the zone files from dir on a free loopback UDP
// port with a private rbldnsd, stopped by its pid.
func startRbldnsdZones(ctx context.Context, dir string, files map[string]string) (addr string, stop func(), err error) {
	var zones []string
	for name := range files {
		zone := strings.TrimSuffix(name, ".zone")
		kind := "ip4set"
		if zone == domainZone {
			kind = "dnset"
		}
		zones = append(zones, zone+":"+kind+":"+name)
	}
	slices.Sort(zones)
	r, err := peers.StartRbldnsd(ctx, peers.RbldnsdConfig{Dir: dir, Files: files, Zones: zones, Ready: "2.0.0.127.bl0.test"})
	if err != nil {
		return "", nil, err
	}
	return r.Addr, func() { r.Stop() }, nil
}

// writeConfig writes the child's config: embedded NATS, the dns-sweeper
// sweeping the prefix and the domains against the test zones, unthrottled.
func (r *dnsblRun) writeConfig(dir string, p ports, dnsAddr string) (string, error) {
	var b strings.Builder
	b.WriteString(childConfigHead("# Written by the mailmon load-test harness for one run.", dir, p.HTTP, p.NATS))
	fmt.Fprintf(&b, `dns_sweeper:
  resolver: %q
  zones: [%s, %s]
  custom_zones:
`, dnsAddr, strings.Join(r.ipZones, ", "), domainZone)
	for _, z := range r.ipZones {
		fmt.Fprintf(&b, `    - name: %s
      kind: ip
      weight: 1
      codes:
        127.0.0.2: {class: listed, meaning: "listed"}
        127.0.0.3: {class: listed, meaning: "snowshoe range"}
        127.0.0.4: {class: listed, meaning: "spam source"}
        127.0.0.10: {class: listed, meaning: "end-user range"}
        127.255.255.0/24: {class: error, meaning: "error code"}
        127.255.255.254: {class: error, meaning: "query via public/open resolver"}
`, z)
	}
	fmt.Fprintf(&b, `    - name: %s
      kind: domain
      weight: 1
      codes:
        127.0.1.2: {class: listed, meaning: "spam domain"}
        127.0.1.255: {class: error, meaning: "IP queries prohibited"}
  cidrs: [%s]
  domains: [%s]
  max_targets: %d
  seen_ips:
    enabled: false
  interval: 24h
  concurrency: %d
  zone_rate: 0
  timeout: 2s
  retries: 2
  tcp_fallback: false
  fetch_txt: true
  audit:
    enabled: false
`, domainZone, r.opts.prefix, strings.Join(r.domains, ", "), r.res.Targets, r.opts.concurrency)
	path := filepath.Join(dir, "mailmon.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// collect reads the DNS stream after sequence from until the first
// dnsbl.checked, and returns it with the listed and error pairs before it
// and the last sequence read.
func (r *dnsblRun) collect(ctx context.Context, js jetstream.JetStream, ch *child, from uint64) (*schemas.DNSBLChecked, map[dnsblPair]bool, map[dnsblPair]bool, uint64, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mailmon.dnsbl.>"}}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	cons, err := js.OrderedConsumer(ctx, "DNS", cfg)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("read the DNS stream: %w", err)
	}
	got := map[dnsblPair]bool{}
	gotErr := map[dnsblPair]bool{}
	for {
		if err := ch.failed(); err != nil {
			return nil, nil, nil, 0, err
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, nil, 0, ctx.Err()
			}
			continue
		}
		for m := range batch.Messages() {
			ev, err := schemas.Decode(m.Data())
			if err != nil {
				return nil, nil, nil, 0, fmt.Errorf("event on %s does not decode: %w", m.Subject(), err)
			}
			switch e := ev.(type) {
			case *schemas.DNSBLListed:
				got[dnsblPair{e.Target, e.Zone}] = true
			case *schemas.DNSBLError:
				if e.Target != "" {
					gotErr[dnsblPair{e.Target, e.Zone}] = true
				}
			case *schemas.DNSBLChecked:
				meta, err := m.Metadata()
				if err != nil {
					return nil, nil, nil, 0, err
				}
				return e, got, gotErr, meta.Sequence.Stream, nil
			}
		}
		if ctx.Err() != nil {
			return nil, nil, nil, 0, ctx.Err()
		}
	}
}

func (r *dnsblRun) score(sum *schemas.DNSBLChecked, got, gotErr map[dnsblPair]bool) {
	for p := range got {
		if !r.listed[p] {
			r.res.FalseListings++
		}
	}
	for p := range r.listed {
		if !got[p] {
			r.res.MissedListings++
		}
	}
	for p := range gotErr {
		if r.errs[p] {
			r.res.ErrorsReported++
		} else {
			r.res.UnexpectedErrors++
		}
	}
	for _, s := range sum.ZoneStates {
		if s == schemas.ZoneOK {
			r.res.ZonesOK++
		}
	}
	r.res.Queries = int(sum.Queries)
	r.res.SweepMs = sum.DurationMs
}

// baseline asks every name once with a bare miekg/dns client, one UDP
// socket per goroutine, and records the rate.
func (r *dnsblRun) baseline(ctx context.Context, addr string) error {
	var next atomic.Int64
	var fails atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, r.opts.concurrency)
	started := time.Now()
	for range r.opts.concurrency {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			conn, err := c.Dial(addr)
			if err != nil {
				errc <- err
				return
			}
			defer conn.Close()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(r.names)) {
					return
				}
				m := new(dns.Msg)
				m.SetQuestion(r.names[i], dns.TypeA)
				if _, _, err := c.ExchangeWithConn(m, conn); err != nil {
					fails.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rate := round(float64(len(r.names))/elapsed.Seconds(), 0)
	r.res.BaselineRuns = append(r.res.BaselineRuns, rate)
	r.res.BaselineFails += int(fails.Load())
	progress(r.log, "baseline: %d queries in %s (%.0f/s, %d failed)", len(r.names), elapsed.Round(time.Millisecond), rate, fails.Load())
	return nil
}
