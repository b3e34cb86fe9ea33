package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/peers"
)

const (
	// probesWorkers are the workers under test, as `mailmon run -workers`
	// names them.
	probesWorkers = "probe-sender,mailbox-retriever"
	// probeStream holds probe.sent, received, missing and late
	// (pipelines/topology.yaml).
	probeStream = "PROBE"
	// probeProvider is the provider name of every target.
	probeProvider = "dovecot"
	// probeFrom is the sender of the probes and of the baseline messages.
	probeFrom = "probe@example.test"
	// probesDrain is how long the scenario keeps reading events after the
	// last outcome, to catch doubled events.
	probesDrain = time.Second
	// seedDomain is the domain of every Dovecot account, which Postfix
	// delivers to Dovecot over LMTP; seedSecret is every account's
	// password.
	seedDomain = "inbox.test"
	seedSecret = "secret"
)

// needMailPeers reports why Postfix and Dovecot (services/peers) cannot
// run here, or nil.
func needMailPeers() error {
	return errors.Join(peers.CheckPostfix(), peers.CheckDovecot())
}

type probesOptions struct {
	n           int
	accounts    int
	junkEvery   int
	concurrency int
	timeout     time.Duration
	deadline    time.Duration
	keep        bool
}

func parseProbesFlags(args []string, stderr io.Writer) (probesOptions, error) {
	fs := flag.NewFlagSet("probes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o probesOptions
	fs.IntVar(&o.n, "n", 300, "number of probes: one round of n targets, so exactly n probes are sent")
	fs.IntVar(&o.accounts, "accounts", 4, "IMAP seed accounts the targets are spread over (each watched with IDLE on INBOX and Junk)")
	fs.IntVar(&o.junkEvery, "junk-every", 4, "every k-th target carries X-Spam-Flag: YES, which Dovecot's sieve files into Junk (0: none)")
	fs.IntVar(&o.concurrency, "concurrency", 4, "probe-sender submissions in flight at once, and the baseline's SMTP connections")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the probes are not all accounted for by then")
	fs.DurationVar(&o.deadline, "deadline", time.Minute, "the retriever's deadline: a probe not seen by then is reported missing")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, Postfix queue, maildirs) for inspection")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if o.n < 1 {
		problems = append(problems, fmt.Sprintf("-n must be at least 1, got %d", o.n))
	}
	if o.accounts < 1 || o.accounts > 100 {
		problems = append(problems, fmt.Sprintf("-accounts must be 1 to 100, got %d", o.accounts))
	}
	if o.junkEvery < 0 {
		problems = append(problems, fmt.Sprintf("-junk-every must not be negative, got %d", o.junkEvery))
	}
	if o.concurrency < 1 {
		problems = append(problems, fmt.Sprintf("-concurrency must be at least 1, got %d", o.concurrency))
	}
	if o.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("-timeout must be positive, got %s", o.timeout))
	}
	if o.deadline <= 0 {
		problems = append(problems, fmt.Sprintf("-deadline must be positive, got %s", o.deadline))
	}
	return o, joinProblems(problems)
}

// probesResult is the JSON line the scenario ends with.
type probesResult struct {
	Scenario string `json:"scenario"`
	// Probes is how many probes the run asked for (-n); N repeats it
	// under the key every scenario's line has.
	Probes int `json:"probes"`
	N      int `json:"n"`
	// Sent counts probe.sent events; Accepted those with outcome accepted.
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	// Received counts accepted probes with a probe.received (or, after
	// their deadline, probe.late) event.
	Received int `json:"received"`
	// Lost counts accepted probes never received (Missing of them were
	// reported probe.missing).
	Lost    int `json:"lost"`
	Missing int `json:"missing"`
	Late    int `json:"late"`
	// Misplaced counts received probes in another account, placement or
	// folder than their target's.
	Misplaced int `json:"misplaced"`
	// Duplicates counts repeated received/missing/late events for a probe.
	Duplicates int `json:"duplicates"`
	// InJunk counts probes received in Junk (placement spam).
	InJunk int `json:"in_junk"`
	// DetectP50Ms and DetectP99Ms are the retriever's detection_ms
	// (seen minus INTERNALDATE, which has whole seconds).
	DetectP50Ms int64 `json:"detect_p50_ms"`
	DetectP99Ms int64 `json:"detect_p99_ms"`
	DetectMaxMs int64 `json:"detect_max_ms"`
	// DetectExact* are the same delay measured to the microsecond: the
	// retriever's seen time (the event's time) minus the moment the file
	// landed in the maildir (inotify), over DetectExactN probes.
	DetectExactP50Ms int64 `json:"detect_exact_p50_ms"`
	DetectExactP99Ms int64 `json:"detect_exact_p99_ms"`
	DetectExactN     int   `json:"detect_exact_n"`
	// DeliverP50Ms is sent_at to the file landing in the maildir.
	DeliverP50Ms int64 `json:"deliver_p50_ms"`
	// EndToEnd* are probe.received time minus sent_at: our clock at both
	// ends, so exact to the millisecond.
	EndToEndP50Ms int64 `json:"e2e_p50_ms"`
	EndToEndP99Ms int64 `json:"e2e_p99_ms"`
	// OursPerS is received / (first submission started to last probe.received).
	OursPerS float64 `json:"ours_per_s"`
	OursS    float64 `json:"ours_s"`
	// SubmitPerS is accepted / (first submission started to last accepted).
	SubmitPerS float64 `json:"submit_per_s"`
	// SubmitP50Ms is the median SMTP transaction of a probe (total_ms:
	// connect to the final reply).
	SubmitP50Ms int64 `json:"submit_p50_ms"`
	// BaselinePerS is n / (first SMTP connection to all n messages in
	// the baseline accounts' maildirs).
	BaselinePerS float64 `json:"baseline_per_s"`
	BaselineS    float64 `json:"baseline_s"`
	Ratio        float64 `json:"ratio"`
	Accounts     int     `json:"accounts"`
	Concurrency  int     `json:"concurrency"`
	ElapsedS     float64 `json:"elapsed_s"`
	TimedOut     bool    `json:"timed_out"`
	Error        string  `json:"error,omitempty"`
	KeptDir      string  `json:"kept_dir,omitempty"`
}

func (r probesResult) ok() bool {
	return r.Error == "" && !r.TimedOut && r.Sent == r.Probes && r.Accepted == r.Probes &&
		r.Lost == 0 && r.Misplaced == 0 && r.Duplicates == 0
}

// probeExpect is where a target's probe must turn up.
type probeExpect struct {
	account   string
	address   string
	placement string
	folder    string
	variant   string
	junk      bool
}

type probesRun struct {
	opts    probesOptions
	res     probesResult
	log     io.Writer
	targets []probeExpect // by target index; the target name is probeTarget(i)
	byName  map[string]int
	// sizes of the probes as submitted, for the baseline's messages.
	sizes []int
}

func runProbes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseProbesFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "probes", err)
	}
	started := time.Now()
	r := &probesRun{opts: opts, log: stderr, res: probesResult{
		Scenario: "probes", Probes: opts.n, N: opts.n, Accounts: opts.accounts, Concurrency: opts.concurrency,
	}}
	if err := r.run(ctx); err != nil {
		r.res.Error = err.Error()
		progress(stderr, "error: %v", err)
	}
	r.res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "probes", r.res, r.res.ok())
}

func probeTarget(i int) string  { return fmt.Sprintf("t%05d", i) }
func seedUser(i int) string     { return fmt.Sprintf("seed%d", i+1) }
func baselineUser(i int) string { return fmt.Sprintf("base%d", i+1) }
func probeVariant(i int) string { return []string{"plain", "html", "list_unsubscribe"}[i%3] }
func (r *probesRun) junk(i int) bool {
	return r.opts.junkEvery > 0 && i%r.opts.junkEvery == r.opts.junkEvery-1
}

func (r *probesRun) plan() {
	r.byName = make(map[string]int, r.opts.n)
	for i := range r.opts.n {
		a := i % r.opts.accounts
		e := probeExpect{account: seedUser(a), address: seedUser(a) + "@" + seedDomain, placement: schemas.PlacementInbox, folder: "INBOX", variant: probeVariant(i)}
		if r.junk(i) {
			e.placement, e.folder, e.junk = schemas.PlacementSpam, "Junk", true
		}
		r.targets = append(r.targets, e)
		r.byName[probeTarget(i)] = i
	}
}

func (r *probesRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, r.opts.timeout)
	defer cancel()
	defer func() {
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			r.res.TimedOut = true
			err = fmt.Errorf("timed out after %s: %w", r.opts.timeout, err)
		}
	}()
	if err := needMailPeers(); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mm-lt-probes-", r.opts.keep, &r.res.KeptDir, r.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	// Dovecot's delivery processes run as nobody and must reach the maildirs.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}

	progress(r.log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}
	r.plan()
	users := make([]string, 0, 2*r.opts.accounts)
	for a := range r.opts.accounts {
		users = append(users, seedUser(a), baselineUser(a))
	}
	// Stop, not Close: the directories are the run's, kept with -keep.
	dv, err := peers.StartDovecot(ctx, peers.DovecotConfig{Dir: filepath.Join(dir, "dv"), Domain: seedDomain, Users: users, Password: seedSecret})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := dv.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	var newDirs []string
	for a := range r.opts.accounts {
		for _, u := range []string{seedUser(a), baselineUser(a)} {
			dirs, err := dv.MakeMaildirs(u)
			if err != nil {
				return fmt.Errorf("maildirs of %s: %w", u, err)
			}
			if u == seedUser(a) {
				newDirs = append(newDirs, dirs...)
			}
		}
	}
	watch, err := watchArrivals(newDirs)
	if err != nil {
		progress(r.log, "no exact detection delay: %v", err)
	} else {
		defer watch.stop()
	}
	pf, err := peers.StartPostfix(ctx, peers.PostfixConfig{Dir: filepath.Join(dir, "pf"), Dovecot: dv})
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := pf.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	progress(r.log, "postfix smtp 127.0.0.1:%d -> dovecot lmtp 127.0.0.1:%d, imap 127.0.0.1:%d, %d seed accounts", pf.SMTP, dv.LMTP, dv.IMAP, r.opts.accounts)

	p, err := freePorts()
	if err != nil {
		return err
	}
	childDir := filepath.Join(dir, "run")
	if err := os.Mkdir(childDir, 0o700); err != nil {
		return err
	}
	configPath, err := r.writeConfig(childDir, p, pf.SMTP, dv.IMAP)
	if err != nil {
		return err
	}
	progress(r.log, "starting mailmon run -workers %s: one round of %d probes, %d in flight", probesWorkers, r.opts.n, r.opts.concurrency)
	ch, err := startChild(bin, configPath, probesWorkers)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := ch.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err := ch.waitReady(ctx, p.HTTP); err != nil {
		return err
	}
	nc, err := connectChildNATS(configPath, p.NATS)
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	o, err := r.collect(ctx, js, ch)
	var arrivals map[string]time.Time
	if watch != nil {
		var unread int
		arrivals, unread = watch.stop()
		if unread > 0 {
			progress(r.log, "%d maildir files gone before their Message-ID was read", unread)
		}
	}
	r.score(o, arrivals)
	if err != nil {
		return err
	}
	progress(r.log, "ours: %d of %d probes received in %.2f s (%.1f/s); submitted at %.1f/s; detection p50 %d ms p99 %d ms (exact: p50 %d ms p99 %d ms over %d); delivery p50 %d ms; e2e p50 %d ms",
		r.res.Received, r.res.Accepted, r.res.OursS, r.res.OursPerS, r.res.SubmitPerS, r.res.DetectP50Ms, r.res.DetectP99Ms,
		r.res.DetectExactP50Ms, r.res.DetectExactP99Ms, r.res.DetectExactN, r.res.DeliverP50Ms, r.res.EndToEndP50Ms)

	// The baseline runs with mailmon stopped, on the same Postfix and
	// Dovecot, into accounts the retriever never watched.
	progress(r.log, "stopping mailmon")
	if err := ch.stop(); err != nil {
		return err
	}
	progress(r.log, "baseline: %d messages over %d SMTP connections to the same Postfix, counted in the maildirs", r.opts.n, r.opts.concurrency)
	if err := r.baseline(ctx, pf, dv); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if r.res.BaselinePerS > 0 {
		r.res.Ratio = round(r.res.OursPerS/r.res.BaselinePerS, 3)
	}
	progress(r.log, "baseline: %d messages in %.2f s (%.1f/s); ratio %.3f", r.opts.n, r.res.BaselineS, r.res.BaselinePerS, r.res.Ratio)
	return nil
}

// writeConfig writes the child's config: embedded NATS, a fresh tracking
// key, the probe-sender with one SMTP source (the Postfix) and n targets
// sent in one round (the interval is longer than any run, so the first
// round, which starts with the worker, is the only one), and the retriever
// watching the seed accounts over IMAP IDLE.
func (r *probesRun) writeConfig(dir string, p ports, smtpPort, imapPort int) (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(childConfigHead("# Written by the mailmon load-test harness (probes scenario) for one run.", dir, p.HTTP, p.NATS))
	fmt.Fprintf(&b, `tracking:
  key:
    id: loadtest
    secret: %q
probe_sender:
  interval: 24h
  jitter: 0s
  from: %s
  from_name: mailmon loadtest
  concurrency: %d
  timeout: %s
  default_rate_per_minute: 0
  sources:
    - name: postfix
      type: smtp
      addr: "127.0.0.1:%d"
      tls: none
      helo_name: probe.example.test
      source_ip: 127.0.0.1
  targets:
`, hex.EncodeToString(secret), probeFrom, r.opts.concurrency, r.opts.timeout, smtpPort)
	for i, t := range r.targets {
		fmt.Fprintf(&b, "    - {name: %s, provider: %s, address: %s, variants: [%s]", probeTarget(i), probeProvider, t.address, t.variant)
		if t.junk {
			b.WriteString(`, headers: {X-Spam-Flag: "YES"}`)
		}
		b.WriteString("}\n")
	}
	fmt.Fprintf(&b, `mailbox_retriever:
  deadline: %s
  check_interval: 500ms
  poll_interval: 5s
  reconnect_min: 200ms
  reconnect_max: 5s
  timeout: 30s
  delete: true
  accounts:
`, r.opts.deadline)
	for a := range r.opts.accounts {
		fmt.Fprintf(&b, "    - {name: %s, protocol: imap, addr: \"127.0.0.1:%d\", tls: none, username: %s@%s, password: %s}\n",
			seedUser(a), imapPort, seedUser(a), seedDomain, seedSecret)
	}
	path := filepath.Join(dir, "mailmon.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// probeOutcomes is what the PROBE stream said about the probes.
type probeOutcomes struct {
	sent     map[string]*schemas.ProbeSent
	received map[string]*schemas.ProbeReceived
	late     map[string]*schemas.ProbeLate
	missing  map[string]*schemas.ProbeMissing
	doubled  int
	foreign  int
}

// settled reports whether every probe was sent and every accepted one has
// an outcome.
func (o *probeOutcomes) settled(n int) bool {
	if len(o.sent) < n {
		return false
	}
	for id, s := range o.sent {
		if s.Outcome != schemas.OutcomeAccepted {
			continue
		}
		_, rec := o.received[id]
		_, late := o.late[id]
		_, miss := o.missing[id]
		if !rec && !late && !miss {
			return false
		}
	}
	return true
}

// collect reads the PROBE stream from its start until every probe is sent
// and every accepted one received or reported missing, then scores them.
func (r *probesRun) collect(ctx context.Context, js jetstream.JetStream, ch *child) (*probeOutcomes, error) {
	o := &probeOutcomes{
		sent: map[string]*schemas.ProbeSent{}, received: map[string]*schemas.ProbeReceived{},
		late: map[string]*schemas.ProbeLate{}, missing: map[string]*schemas.ProbeMissing{},
	}
	cons, err := js.OrderedConsumer(ctx, probeStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mailmon.probe.>"}})
	if err != nil {
		return o, fmt.Errorf("read the %s stream: %w", probeStream, err)
	}
	read := func(wait time.Duration) error {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(wait))
		if err != nil {
			return nil // nothing this time; the caller checks ctx
		}
		for m := range batch.Messages() {
			ev, err := schemas.Decode(m.Data())
			if err != nil {
				return fmt.Errorf("event on %s does not decode: %w", m.Subject(), err)
			}
			switch e := ev.(type) {
			case *schemas.ProbeSent:
				if _, ok := r.byName[e.Target]; !ok {
					o.foreign++
				} else if _, dup := o.sent[e.ProbeID]; dup {
					o.doubled++
				} else {
					o.sent[e.ProbeID] = e
					r.sizes = append(r.sizes, int(e.SizeBytes))
				}
			case *schemas.ProbeReceived:
				if _, dup := o.received[e.ProbeID]; dup {
					o.doubled++
				} else {
					o.received[e.ProbeID] = e
				}
			case *schemas.ProbeLate:
				if _, dup := o.late[e.ProbeID]; dup {
					o.doubled++
				} else {
					o.late[e.ProbeID] = e
				}
			case *schemas.ProbeMissing:
				if _, dup := o.missing[e.ProbeID]; dup {
					o.doubled++
				} else {
					o.missing[e.ProbeID] = e
				}
			}
		}
		return nil
	}
	lastReport := time.Now()
	for !o.settled(r.opts.n) {
		if err := ch.failed(); err != nil {
			return o, err
		}
		if err := read(500 * time.Millisecond); err != nil {
			return o, err
		}
		if err := ctx.Err(); err != nil {
			return o, err
		}
		if time.Since(lastReport) >= 2*time.Second {
			lastReport = time.Now()
			progress(r.log, "%d sent, %d received, %d missing", len(o.sent), len(o.received)+len(o.late), len(o.missing))
		}
	}
	// Anything doubled comes right after the original.
	drainUntil := time.Now().Add(probesDrain)
	for time.Now().Before(drainUntil) && ctx.Err() == nil {
		if err := read(200 * time.Millisecond); err != nil {
			return o, err
		}
	}
	return o, nil
}

// score fills the result from the outcomes seen so far.
// arrivals maps Message-IDs to when the file landed in a maildir.
func (r *probesRun) score(o *probeOutcomes, arrivals map[string]time.Time) {
	res := &r.res
	res.Sent = len(o.sent)
	res.Duplicates = o.doubled
	res.Missing = len(o.missing)
	var detect, e2e, submit, exact, deliver []int64
	phases := map[string][]int64{}
	var start, lastSent, lastRecv time.Time
	for id, s := range o.sent {
		begin := s.Time.Add(-time.Duration(max(s.TotalMs, 0)) * time.Millisecond)
		if start.IsZero() || begin.Before(start) {
			start = begin
		}
		if s.Outcome != schemas.OutcomeAccepted {
			continue
		}
		res.Accepted++
		submit = append(submit, int64(s.TotalMs))
		for name, v := range map[string]int32{"connect": s.ConnectMs, "banner": s.BannerMs, "ehlo": s.EhloMs, "mail": s.MailMs, "rcpt": s.RcptMs, "data": s.DataMs} {
			phases[name] = append(phases[name], int64(v))
		}
		if s.Time.After(lastSent) {
			lastSent = s.Time
		}
		want := r.targets[r.byName[s.Target]]
		if rec, ok := o.received[id]; ok {
			res.Received++
			if rec.Account != want.account || rec.Placement != want.placement || rec.Folder != want.folder {
				res.Misplaced++
				progress(r.log, "misplaced: probe %s to %s found in %s/%s (%s), want %s/%s (%s)",
					id, s.Target, rec.Account, rec.Folder, rec.Placement, want.account, want.folder, want.placement)
			}
			if rec.Placement == schemas.PlacementSpam {
				res.InJunk++
			}
			detect = append(detect, rec.DetectionMs)
			if at, ok := arrivals[rec.MessageID]; ok {
				exact = append(exact, rec.Time.Sub(at).Milliseconds())
				deliver = append(deliver, at.Sub(rec.SentAt).Milliseconds())
			}
			e2e = append(e2e, rec.Time.Sub(rec.SentAt).Milliseconds())
			if rec.Time.After(lastRecv) {
				lastRecv = rec.Time
			}
			continue
		}
		if lt, ok := o.late[id]; ok {
			res.Received++
			res.Late++
			if lt.Account != want.account || lt.Placement != want.placement || lt.Folder != want.folder {
				res.Misplaced++
			}
			if lt.Time.After(lastRecv) {
				lastRecv = lt.Time
			}
			continue
		}
		res.Lost++
	}
	slices.Sort(detect)
	slices.Sort(e2e)
	res.DetectP50Ms, res.DetectP99Ms = percentile(detect, 50), percentile(detect, 99)
	if len(detect) > 0 {
		res.DetectMaxMs = detect[len(detect)-1]
	}
	res.EndToEndP50Ms, res.EndToEndP99Ms = percentile(e2e, 50), percentile(e2e, 99)
	slices.Sort(exact)
	slices.Sort(deliver)
	res.DetectExactP50Ms, res.DetectExactP99Ms, res.DetectExactN = percentile(exact, 50), percentile(exact, 99), len(exact)
	res.DeliverP50Ms = percentile(deliver, 50)
	slices.Sort(submit)
	res.SubmitP50Ms = percentile(submit, 50)
	if len(submit) > 0 {
		var b strings.Builder
		for _, name := range []string{"connect", "banner", "ehlo", "mail", "rcpt", "data"} {
			v := phases[name]
			slices.Sort(v)
			fmt.Fprintf(&b, " %s %d", name, percentile(v, 50))
		}
		progress(r.log, "probe SMTP transaction, median ms: total %d:%s", res.SubmitP50Ms, b.String())
	}
	if res.Received > 0 && lastRecv.After(start) {
		d := lastRecv.Sub(start).Seconds()
		res.OursS = round(d, 3)
		res.OursPerS = round(float64(res.Received)/d, 1)
	}
	if res.Accepted > 0 && lastSent.After(start) {
		res.SubmitPerS = round(float64(res.Accepted)/lastSent.Sub(start).Seconds(), 1)
	}
	if o.foreign > 0 {
		progress(r.log, "%d probe.sent events for targets this run did not configure", o.foreign)
	}
}

// percentile is the nearest-rank p-th percentile of sorted values.
func percentile(sorted []int64, p int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// baseline submits n plain messages to the same Postfix over
// opts.concurrency reused SMTP connections, addressed like the probes
// (same spread over accounts, same share with X-Spam-Flag: YES, the
// probes' median size) but to the baseline accounts, and times from the
// first connection until Dovecot's maildirs hold all of them.
func (r *probesRun) baseline(ctx context.Context, pf *peers.Postfix, dv *peers.Dovecot) error {
	size := 1024
	if len(r.sizes) > 0 {
		s := slices.Clone(r.sizes)
		slices.Sort(s)
		size = s[len(s)/2]
	}
	wantJunk := 0
	for i := range r.opts.n {
		if r.junk(i) {
			wantJunk++
		}
	}
	counted := func() (all, junk int) {
		for a := range r.opts.accounts {
			j := dv.MaildirCount(baselineUser(a), "Junk")
			all += dv.MaildirCount(baselineUser(a), "") + j
			junk += j
		}
		return all, junk
	}
	if all, _ := counted(); all != 0 {
		return fmt.Errorf("baseline accounts hold %d messages before the run", all)
	}

	var next atomic.Int64
	errs := make(chan error, r.opts.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for range r.opts.concurrency {
		wg.Go(func() {
			if err := r.submitBaseline(ctx, pf.SMTP, &next, size); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	submitted := time.Since(start)
	for {
		all, junk := counted()
		if all >= r.opts.n {
			took := time.Since(start)
			r.res.BaselineS = round(took.Seconds(), 3)
			r.res.BaselinePerS = round(float64(r.opts.n)/took.Seconds(), 1)
			progress(r.log, "baseline: submitted in %.2f s, all delivered after %.2f s", submitted.Seconds(), took.Seconds())
			if all != r.opts.n || junk != wantJunk {
				return fmt.Errorf("maildirs hold %d messages (%d in Junk), want %d (%d in Junk)", all, junk, r.opts.n, wantJunk)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d messages delivered: %w", all, r.opts.n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// submitBaseline sends messages over one SMTP connection until next
// passes n.
func (r *probesRun) submitBaseline(ctx context.Context, port int, next *atomic.Int64, size int) error {
	c, err := smtp.Dial("127.0.0.1:" + strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Hello("baseline.example.test"); err != nil {
		return err
	}
	for {
		i := int(next.Add(1) - 1)
		if i >= r.opts.n {
			return c.Quit()
		}
		to := baselineUser(i%r.opts.accounts) + "@" + seedDomain
		if err := c.Mail(probeFrom, nil); err != nil {
			return fmt.Errorf("message %d: MAIL: %w", i, err)
		}
		if err := c.Rcpt(to, nil); err != nil {
			return fmt.Errorf("message %d: RCPT: %w", i, err)
		}
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("message %d: DATA: %w", i, err)
		}
		if _, err := w.Write(baselineMessage(i, to, r.junk(i), size)); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("message %d: end of DATA: %w", i, err)
		}
	}
}

// baselineMessage is a plain message of about size bytes.
func baselineMessage(i int, to string, junk bool, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: baseline %d\r\nMessage-ID: <baseline-%d@example.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n",
		probeFrom, to, i, i, time.Now().Format(time.RFC1123Z))
	if junk {
		b.WriteString("X-Spam-Flag: YES\r\n")
	}
	b.WriteString("\r\n")
	line := strings.Repeat("baseline ", 8) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}
