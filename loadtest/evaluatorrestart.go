package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
)

// The evaluator-restart scenario: streams holding -days of deliveries and
// complaints (event times spread over the days), then the
// complaint-evaluator (the mailmon binary) restarted from its checkpoint
// and from nothing, each timed from the process start to its first
// judgement: a complaint published at the start that crosses a customer's
// act threshold, until its decision is on the DECISION stream. Two volumes
// (-per-day/2, then -per-day) give a linear fit of both times, projected
// to 10M deliveries a day.
const (
	restartWorkers = "complaint-evaluator"
	// restartTarget is the target at 10M deliveries a day, from the
	// checkpoint.
	restartTarget    = 30 * time.Second
	projectedPerDay  = 10_000_000
	restartProviders = 3
	restartIPs       = 8
	// probeDeliveries are the deliveries of a probe customer, the last
	// hour; it has act-1 complaints until the crossing one.
	probeDeliveries = 1000
	// restartDedupe is the evaluator's dedupe_window in the scenario, and
	// restartSettle how long a warm run lasts by default: two windows and
	// a bit, so the delivery ids the rebuild remembered have rotated out
	// and the checkpoint holds what a long-running evaluator holds.
	restartDedupe = 15 * time.Second
	restartSettle = 2*restartDedupe + 10*time.Second
	// checkpointTries is how many starts from a checkpoint a level times.
	checkpointTries = 3
)

type restartOptions struct {
	days, perDay, customers int
	complaintRate           float64
	timeout, settle         time.Duration
	keep                    bool
}

func parseRestartFlags(args []string, stderr io.Writer) (restartOptions, error) {
	fs := flag.NewFlagSet("evaluator-restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o restartOptions
	fs.IntVar(&o.days, "days", 7, "days of history in the streams (the longest window is 7d)")
	fs.IntVar(&o.perDay, "per-day", 100_000, "deliveries a day at the second volume (the first is half)")
	fs.IntVar(&o.customers, "customers", 200, "customers sending the mail")
	fs.Float64Var(&o.complaintRate, "complaint-rate", 0.0005, "complaints per delivery (under the 0.1 % warn rate)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up after this")
	fs.DurationVar(&o.settle, "settle", restartSettle, "how long the warm run serves live traffic before its clean stop (shorter: its checkpoint still holds the rebuild's delivery ids)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, NATS data)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if o.days < 1 || o.days > 7 {
		problems = append(problems, "-days must be 1..7 (the DELIVERY stream keeps 8d)")
	}
	if o.perDay < 2000 {
		problems = append(problems, "-per-day must be at least 2000")
	}
	if o.customers < 1 {
		problems = append(problems, "-customers must be at least 1")
	}
	if o.complaintRate < 0 || o.complaintRate >= 0.001 {
		problems = append(problems, "-complaint-rate must be 0 or more and under 0.001 (the warn rate)")
	}
	if o.timeout <= 0 || o.settle < 0 {
		problems = append(problems, "-timeout must be positive and -settle not negative")
	}
	return o, joinProblems(problems)
}

// restartLevel is what one volume measured.
type restartLevel struct {
	PerDay      int     `json:"per_day"`
	Deliveries  int     `json:"deliveries"`
	Complaints  int     `json:"complaints"`
	FillS       float64 `json:"fill_s"`
	RebuildS    float64 `json:"rebuild_s"`
	CheckpointS float64 `json:"checkpoint_s"`
	Ratio       float64 `json:"ratio"`
	// The CPU seconds of the evaluator and the NATS server from the start
	// to the judgement: what the machine's other load does not change.
	RebuildCPU      float64 `json:"rebuild_cpu_s"`
	CheckpointCPU   float64 `json:"checkpoint_cpu_s"`
	CheckpointBytes int     `json:"checkpoint_bytes"`
	// Replayed is what the start from the checkpoint read again: one
	// checkpoint interval of traffic published while it was down.
	Replayed int `json:"replayed_deliveries"`
}

type restartResult struct {
	Scenario string         `json:"scenario"`
	Days     int            `json:"days"`
	Levels   []restartLevel `json:"levels"`
	// The projections to 10M deliveries a day. *_cpu_s: the line through
	// the two volumes' CPU seconds. *_s: the wall time measured at the
	// larger volume plus the CPU seconds that line adds up to 10M (extra
	// work adds at most its CPU time to the wall time of one reader); the
	// wall times' own line is *_wall_fit_s, which on a loaded machine fits
	// the noise as much as the work.
	RebuildAt      float64 `json:"projected_rebuild_s_10m_per_day"`
	CheckAt        float64 `json:"projected_checkpoint_s_10m_per_day"`
	ProjRatio      float64 `json:"projected_ratio_10m_per_day"`
	RebuildCPU     float64 `json:"projected_rebuild_cpu_s_10m_per_day"`
	CheckCPU       float64 `json:"projected_checkpoint_cpu_s_10m_per_day"`
	RebuildWallFit float64 `json:"projected_rebuild_wall_fit_s_10m_per_day"`
	CheckWallFit   float64 `json:"projected_checkpoint_wall_fit_s_10m_per_day"`
	TargetS        float64 `json:"target_checkpoint_s"`
	ElapsedS       float64 `json:"elapsed_s"`
	Error          string  `json:"error,omitempty"`
	KeptDir        string  `json:"kept_dir,omitempty"`
	ProjectedOK    bool    `json:"projected_ok"`
}

func runEvaluatorRestart(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseRestartFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "evaluator-restart", err)
	}
	started := time.Now()
	res := restartResult{Scenario: "evaluator-restart", Days: opts.days, TargetS: restartTarget.Seconds()}
	r := &restartRun{opts: opts, res: &res, log: stderr}
	if err := r.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	if len(res.Levels) == 2 {
		a, b := res.Levels[0], res.Levels[1]
		rebuildCPU := project(a.PerDay, a.RebuildCPU, b.PerDay, b.RebuildCPU, projectedPerDay)
		checkCPU := project(a.PerDay, a.CheckpointCPU, b.PerDay, b.CheckpointCPU, projectedPerDay)
		res.RebuildCPU, res.CheckCPU = round(rebuildCPU, 1), round(checkCPU, 2)
		res.RebuildAt = round(b.RebuildS+rebuildCPU-b.RebuildCPU, 1)
		res.CheckAt = round(b.CheckpointS+checkCPU-b.CheckpointCPU, 2)
		res.RebuildWallFit = round(project(a.PerDay, a.RebuildS, b.PerDay, b.RebuildS, projectedPerDay), 1)
		res.CheckWallFit = round(project(a.PerDay, a.CheckpointS, b.PerDay, b.CheckpointS, projectedPerDay), 2)
		if res.CheckAt > 0 {
			res.ProjRatio = round(res.RebuildAt/res.CheckAt, 1)
		}
		res.ProjectedOK = res.CheckAt < restartTarget.Seconds()
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 1)
	return printResult(stdout, stderr, "evaluator-restart", res, res.Error == "" && res.ProjectedOK)
}

// project is the line through (x1, y1) and (x2, y2) at x (never below
// the larger measured y's intercept at zero: a time does not shrink).
func project(x1 int, y1 float64, x2 int, y2 float64, x int) float64 {
	if x1 == x2 {
		return y2
	}
	slope := (y2 - y1) / float64(x2-x1)
	slope = max(slope, 0)
	return y2 + slope*float64(x-x2)
}

type restartRun struct {
	opts restartOptions
	res  *restartResult
	log  io.Writer

	dir, bin string
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	pub      *asyncPublisher
	rng      *rand.Rand
	runs     int
	natsPid  int
}

func (r *restartRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, r.opts.timeout)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mailmon-loadtest-evaluator-restart-", r.opts.keep, &r.res.KeptDir, r.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	r.dir = dir
	r.rng = rand.New(rand.NewPCG(1, 2))
	progress(r.log, "building mailmon and nats-server")
	if r.bin, err = buildMailmon(ctx, root, dir); err != nil {
		return err
	}
	natsBin, err := buildNATSServer(ctx, root, dir)
	if err != nil {
		return err
	}
	stopNATS, err := r.startNATS(ctx, natsBin)
	if err != nil {
		return err
	}
	defer stopNATS()
	top, err := pipelines.Default()
	if err != nil {
		return err
	}
	if err := top.Apply(ctx, r.js, pipelines.ApplyOptions{}); err != nil {
		return fmt.Errorf("apply the topology: %w", err)
	}
	if r.pub, err = newAsyncPublisher(r.nc, 8192); err != nil {
		return err
	}
	for i, perDay := range []int{r.opts.perDay / 2, r.opts.perDay} {
		level := restartLevel{PerDay: perDay}
		if err := r.level(ctx, i, &level); err != nil {
			return err
		}
		r.res.Levels = append(r.res.Levels, level)
	}
	return nil
}

// startNATS runs nats-server (the module's version) with JetStream on
// loopback, no auth, and connects to it.
func (r *restartRun) startNATS(ctx context.Context, bin string) (stop func(), err error) {
	p, err := freePorts()
	if err != nil {
		return nil, err
	}
	r.natsURL = "nats://127.0.0.1:" + strconv.Itoa(p.NATS)
	logFile, err := os.Create(filepath.Join(r.dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(p.NATS), "-js", "-sd", filepath.Join(r.dir, "js"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	r.natsPid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(exited) }()
	stop = func() {
		if r.nc != nil {
			r.nc.Close()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.nc, err = nats.Connect(r.natsURL, nats.Name("mailmon-loadtest"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("nats-server not up: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// level fills the streams up to perDay deliveries a day (adding half of
// it at each level), then times a warm run, a start from its checkpoint
// and a full rebuild.
func (r *restartRun) level(ctx context.Context, n int, lv *restartLevel) error {
	add := r.opts.perDay / 2
	now := time.Now()
	span := time.Duration(r.opts.days) * 24 * time.Hour
	fill := time.Now()
	total := add * r.opts.days
	complaints := int(float64(total) * r.opts.complaintRate)
	progress(r.log, "level %d: publishing %d deliveries and %d complaints over %d days (%d a day in all)", n+1, total, complaints, r.opts.days, lv.PerDay)
	for i := range total {
		// Uniform over the span, not in the last hour (the probes' window)
		// nor the future.
		at := now.Add(-time.Hour - time.Duration(r.rng.Int64N(int64(span-2*time.Hour))))
		if err := r.publish(ctx, r.delivery(fmt.Sprintf("cust-%04d", i%r.opts.customers), i, at)); err != nil {
			return err
		}
	}
	for range complaints {
		at := now.Add(-time.Hour - time.Duration(r.rng.Int64N(int64(span-2*time.Hour))))
		if err := r.publish(ctx, r.complaint(fmt.Sprintf("cust-%04d", r.rng.IntN(r.opts.customers)), at)); err != nil {
			return err
		}
	}
	// A probe customer per timed start: the last hour's deliveries and one
	// complaint short of the act rate.
	act := (3*probeDeliveries + 999) / 1000
	for p := range 2 + checkpointTries {
		c := probeCustomer(n, p)
		for i := range probeDeliveries {
			if err := r.publish(ctx, r.delivery(c, i, now.Add(-30*time.Minute))); err != nil {
				return err
			}
		}
		for range act - 1 {
			if err := r.publish(ctx, r.complaint(c, now.Add(-20*time.Minute))); err != nil {
				return err
			}
		}
	}
	if _, err := r.pub.finish(ctx); err != nil {
		return err
	}
	lv.FillS = round(time.Since(fill).Seconds(), 1)
	if st, err := r.js.Stream(ctx, "DELIVERY"); err == nil {
		lv.Deliveries = int(st.CachedInfo().State.Msgs)
	}
	if st, err := r.js.Stream(ctx, "COMPLAINT"); err == nil {
		lv.Complaints = int(st.CachedInfo().State.Msgs)
	}
	progress(r.log, "level %d: streams hold %d deliveries and %d complaints (filled in %.1fs)", n+1, lv.Deliveries, lv.Complaints, lv.FillS)

	// 1. A warm run: rebuilds (or catches up from the last level's
	// checkpoint), judges, runs with live traffic until its state is that
	// of a long-running evaluator, and stops cleanly (final checkpoint).
	warm, err := r.timedStart(ctx, probeCustomer(n, 0), true)
	if err != nil {
		return err
	}
	progress(r.log, "level %d: warm run judged after %.2fs; live traffic for %s", n+1, warm.judged.Seconds(), r.opts.settle)
	if err := r.live(ctx, r.opts.settle, warm.c); err != nil {
		warm.c.stop()
		return err
	}
	if err := warm.c.stop(); err != nil {
		return err
	}
	size, err := r.checkpointSize(ctx)
	if err != nil {
		return err
	}
	lv.CheckpointBytes = size

	// 2. While it is down: one checkpoint interval (1 min) of traffic at
	// this volume, what a crash just before the next checkpoint leaves to
	// read again.
	lv.Replayed = max(lv.PerDay/1440, 1)
	if err := r.interval(ctx, lv.Replayed); err != nil {
		return err
	}

	// 3. From the checkpoint, three times (the best counts: the machine's
	// other load only adds), each after another interval of traffic.
	for try := range checkpointTries {
		if try > 0 {
			if err := r.interval(ctx, lv.Replayed); err != nil {
				return err
			}
		}
		fromCkpt, err := r.timedStart(ctx, probeCustomer(n, 1+try), true)
		if err != nil {
			return err
		}
		if err := fromCkpt.c.stop(); err != nil {
			return err
		}
		if !fromCkpt.used {
			return errors.New("the start with checkpoints did not use one (see its log with -keep)")
		}
		if try == 0 || fromCkpt.judged.Seconds() < lv.CheckpointS {
			lv.CheckpointS = round(fromCkpt.judged.Seconds(), 3)
		}
		if try == 0 || fromCkpt.cpu < lv.CheckpointCPU {
			lv.CheckpointCPU = round(fromCkpt.cpu, 2)
		}
		progress(r.log, "level %d: from the checkpoint (%d bytes): judged after %.2fs (%.2f CPU s), %d deliveries read", n+1, size,
			fromCkpt.judged.Seconds(), fromCkpt.cpu, fromCkpt.read)
	}

	// 4. A full rebuild, checkpoints off.
	rebuild, err := r.timedStart(ctx, probeCustomer(n, 1+checkpointTries), false)
	if err != nil {
		return err
	}
	if err := rebuild.c.stop(); err != nil {
		return err
	}
	lv.RebuildS = round(rebuild.judged.Seconds(), 3)
	lv.RebuildCPU = round(rebuild.cpu, 2)
	if lv.CheckpointS > 0 {
		lv.Ratio = round(lv.RebuildS/lv.CheckpointS, 1)
	}
	progress(r.log, "level %d: full rebuild: judged after %.2fs (%.2f CPU s), %d deliveries read (ratio %.1f)", n+1,
		rebuild.judged.Seconds(), rebuild.cpu, rebuild.read, lv.Ratio)
	return nil
}

// interval publishes n deliveries timed now: the traffic of one
// checkpoint interval.
func (r *restartRun) interval(ctx context.Context, n int) error {
	for i := range n {
		if err := r.publish(ctx, r.delivery(fmt.Sprintf("cust-%04d", i%r.opts.customers), i, time.Now())); err != nil {
			return err
		}
	}
	_, err := r.pub.finish(ctx)
	return err
}

func probeCustomer(level, p int) string { return fmt.Sprintf("probe-%d-%d", level, p) }

type startResult struct {
	c      *child
	judged time.Duration
	cpu    float64 // evaluator + NATS server CPU seconds until judged
	used   bool
	read   int
}

// timedStart starts the evaluator, publishes the complaint that pushes
// customer over the act rate, and times from the process start to the
// decision on the DECISION stream.
func (r *restartRun) timedStart(ctx context.Context, customer string, checkpoints bool) (startResult, error) {
	r.runs++
	dir := filepath.Join(r.dir, fmt.Sprintf("run-%d", r.runs))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return startResult{}, err
	}
	p, err := freePorts()
	if err != nil {
		return startResult{}, err
	}
	cfgPath := filepath.Join(dir, "mailmon.yaml")
	doc := fmt.Sprintf(`# Written by the mailmon load-test harness (evaluator-restart scenario).
data_dir: %q
log:
  level: info
  format: text
nats:
  url: %q
http:
  addr: "127.0.0.1:%d"
complaint_evaluator:
  dedupe_window: %s
  checkpoint:
    enabled: %t
`, dir, r.natsURL, p.HTTP, restartDedupe, checkpoints)
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		return startResult{}, err
	}
	decided := make(chan time.Time, 1)
	sub, err := r.nc.Subscribe("mailmon.decision.>", func(m *nats.Msg) {
		ev, err := schemas.Decode(m.Data)
		if c, ok := ev.(*schemas.DecisionCutoff); err == nil && ok && c.Customer == customer {
			select {
			case decided <- time.Now():
			default:
			}
		}
	})
	if err != nil {
		return startResult{}, err
	}
	defer sub.Unsubscribe()
	if err := r.nc.Flush(); err != nil {
		return startResult{}, err
	}
	natsBefore, _, _ := processCPU(r.natsPid)
	began := time.Now()
	c, err := startChild(r.bin, cfgPath, restartWorkers)
	if err != nil {
		return startResult{}, err
	}
	if err := r.publish(ctx, r.complaint(customer, time.Now())); err != nil {
		c.stop()
		return startResult{}, err
	}
	if _, err := r.pub.finish(ctx); err != nil {
		c.stop()
		return startResult{}, err
	}
	select {
	case at := <-decided:
		res := startResult{c: c, judged: at.Sub(began)}
		mailmonCPU, _, ok1 := processCPU(c.cmd.Process.Pid)
		natsNow, _, ok2 := processCPU(r.natsPid)
		if ok1 && ok2 {
			res.cpu = mailmonCPU + natsNow - natsBefore
		}
		if err := c.waitReady(ctx, p.HTTP); err != nil {
			c.stop()
			return startResult{}, err
		}
		m, err := scrapeMetrics(ctx, p.HTTP)
		if err != nil {
			c.stop()
			return startResult{}, err
		}
		res.used = m["mailmon_complaint_evaluator_checkpoint_used"] == 1
		res.read = int(m[`mailmon_complaint_evaluator_events_total{type="`+schemas.TypeDeliveryAttempted+`"}`])
		return res, nil
	case <-c.exited:
		return startResult{}, fmt.Errorf("mailmon exited (%v); its log ends:\n%s", c.waitErr, c.logTail())
	case <-ctx.Done():
		c.stop()
		return startResult{}, fmt.Errorf("no decision about %s: %w; the log ends:\n%s", customer, ctx.Err(), c.logTail())
	}
}

// live publishes deliveries, a few a second, for d.
func (r *restartRun) live(ctx context.Context, d time.Duration, c *child) error {
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		if err := r.publish(ctx, r.delivery(fmt.Sprintf("cust-%04d", i%r.opts.customers), i, time.Now())); err != nil {
			return err
		}
		if _, err := r.pub.finish(ctx); err != nil {
			return err
		}
		if err := c.failed(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// checkpointSize reads the size of partition 0's checkpoint from its
// manifest in the bucket.
func (r *restartRun) checkpointSize(ctx context.Context) (int, error) {
	kv, err := r.js.KeyValue(ctx, "evaluator_checkpoints")
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, "p0-of-1")
	if err != nil {
		return 0, fmt.Errorf("no checkpoint after a clean stop: %w", err)
	}
	var m struct {
		Size int `json:"size"`
	}
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return 0, err
	}
	return m.Size, nil
}

func (r *restartRun) publish(ctx context.Context, ev schemas.Event) error {
	k, err := schemas.KindOf(ev)
	if err != nil {
		return err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return r.pub.publish(ctx, k.Subject, data, ev.EventHeader().ID)
}

func (r *restartRun) delivery(customer string, j int, at time.Time) schemas.Event {
	p := []string{"gmail", "yahoo", "outlook"}[j%restartProviders]
	ev := &schemas.DeliveryAttempted{
		OutgoingMessage: schemas.OutgoingMessage{Customer: customer, SourceIP: fmt.Sprintf("192.0.2.%d", j%restartIPs+1), Provider: p, RecipientDomain: p + ".test"},
		TrackingStatus:  schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mx", Recipient: fmt.Sprintf("r%d@%s.test", j, p),
		Status: schemas.StatusSent, DelayMs: -1, DelayBeforeQmgrMs: -1, DelayInQmgrMs: -1, DelayConnSetupMs: -1, DelayTransmissionMs: -1,
	}
	schemas.Stamp(ev, schemas.Source{Worker: "loadtest", Host: "loadtest"}, at)
	return ev
}

func (r *restartRun) complaint(customer string, at time.Time) schemas.Event {
	ev := &schemas.ComplaintReceived{Customer: customer, SourceIP: "192.0.2.1", Provider: "yahoo", TraceMethod: schemas.TraceTrackingHeader,
		Counted: true, Trusted: true, Trust: schemas.TrustTrustedInput, Format: "arf", ReceivedVia: schemas.ReceivedViaFile, FeedbackType: "abuse"}
	schemas.Stamp(ev, schemas.Source{Worker: "loadtest", Host: "loadtest"}, at)
	return ev
}

// scrapeMetrics reads the child's /metrics: unlabelled samples by name,
// labelled ones by name{labels}.
func scrapeMetrics(ctx context.Context, httpPort int) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort), nil)
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
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
