package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

// The cluster scenario: mailmon as a deployment of several machines would
// run it, on loopback. Three nats-server nodes (the configs of
// deploy/cluster with their ports and paths rewritten, the accounts of
// accounts.conf), two clickhouse-server replicas with ZooKeeper, and two
// copies of every worker that can run twice, each its own `mailmon
// <worker>` process with the cluster config and only its own NATS
// password. A steady mixed event load runs throughout; one at a time the
// harness SIGKILLs the NATS stream leader, a ClickHouse replica, a sink
// copy, the dns-sweeper leader and an evaluator copy, each restarted after
// a while. It then checks that every acked event is in ClickHouse once,
// and that the policy service never answered wrong.

// clusterStream is the stream whose leader is killed: the one the load
// writes most to.
const clusterStream = "DELIVERY"

// The policy checks: a customer pushed over the act threshold before the
// kills (its decision outlives the run) must be answered REJECT every
// time, one without complaints DUNNO every time.
const (
	clusterBad      = "cluster-bad"
	clusterGood     = "cluster-good"
	clusterDecision = 2 * time.Hour
)

type clusterOptions struct {
	short                   bool
	rate                    int
	warm, down, pause       time.Duration
	leaseTTL, settle, limit time.Duration
	keep                    bool
}

func parseClusterFlags(args []string, stderr io.Writer) (clusterOptions, error) {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o clusterOptions
	fs.BoolVar(&o.short, "short", false, "the CI run: lower rate, shorter pauses, the same kills (about 2 minutes)")
	fs.IntVar(&o.rate, "rate", 300, "events published per second, for the whole run (-short: 100)")
	fs.DurationVar(&o.warm, "warm", 20*time.Second, "load before the first kill (-short: 5s)")
	fs.DurationVar(&o.down, "down", 15*time.Second, "how long a killed process stays down (-short: 5s; a ClickHouse replica at least 5s, for its ZooKeeper session to expire)")
	fs.DurationVar(&o.pause, "pause", 20*time.Second, "recovery pause after each restart (-short: 5s)")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", 5*time.Second, "the dns-sweeper's leader_lease.ttl (-short: 2s)")
	fs.DurationVar(&o.settle, "settle", 2*time.Minute, "after the load stops, the longest wait for ClickHouse to hold every acked event (-short: 1m)")
	fs.DurationVar(&o.limit, "timeout", 20*time.Minute, "give up after this, the build included (-short: 8m)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, data)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	if o.short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"rate": "100", "warm": "5s", "down": "5s", "pause": "5s", "lease-ttl": "2s", "settle": "1m", "timeout": "8m"} {
			if !set[name] {
				fs.Set(name, v)
			}
		}
	}
	var problems []string
	if o.rate < 10 || o.rate > 20000 {
		problems = append(problems, "-rate must be 10 to 20000")
	}
	if o.warm < time.Second || o.down < time.Second || o.pause < time.Second {
		problems = append(problems, "-warm, -down and -pause must be at least 1s")
	}
	if o.leaseTTL < time.Second || o.leaseTTL%time.Second != 0 {
		problems = append(problems, "-lease-ttl must be whole seconds, at least 1s")
	}
	if o.settle <= 0 || o.limit <= 0 {
		problems = append(problems, "-settle and -timeout must be positive")
	}
	return o, joinProblems(problems)
}

// clusterKill is what one kill did to the system.
type clusterKill struct {
	What   string `json:"what"`
	Victim string `json:"victim"`
	// TakeoverMs: from the SIGKILL to the new stream leader, the other
	// dns-sweeper holding the lease, or (sink, ClickHouse replica) the
	// first row stored after the kill; -1 when it never happened.
	TakeoverMs int64  `json:"takeover_ms"`
	Takeover   string `json:"takeover"`
	// CaughtUpMs: from the SIGKILL until ClickHouse held as many of the
	// load's events as had been acked at the kill; -1 when not by the
	// next step.
	CaughtUpMs int64 `json:"caught_up_ms"`
	// RestartReadyMs: from the restart to the process being ready again
	// (/healthz, /ping or /readyz).
	RestartReadyMs int64 `json:"restart_ready_ms"`
}

// clusterResult is the JSON line the scenario ends with.
type clusterResult struct {
	Scenario          string `json:"scenario"`
	Short             bool   `json:"short"`
	RatePerS          int    `json:"rate_per_s"`
	NATSAuth          string `json:"nats_auth"`
	ClickHouseCluster bool   `json:"clickhouse_cluster"`
	// Published is the events JetStream acked; Unacked those it never did
	// after every retry (they are not counted as lost).
	Published   int `json:"published"`
	Unacked     int `json:"unacked"`
	Republished int `json:"republished"`
	// Rows are the load's distinct event ids per kind in ClickHouse (the
	// Distributed tables when clustered); Stored their sum.
	Rows   map[string]int `json:"rows"`
	Stored int            `json:"stored"`
	Lost   int            `json:"lost"`
	// Doubled is count() FINAL minus distinct ids; RawDuplicateRows the
	// same before FINAL (retried inserts not deduplicated by ClickHouse).
	Doubled          int `json:"doubled"`
	RawDuplicateRows int `json:"raw_duplicate_rows"`
	// ReplicasDiffer counts the kinds whose replicated (local) tables hold
	// different rows of the load on the two replicas once settled.
	ReplicasDiffer int   `json:"replicas_differ"`
	PolicyAsked    int   `json:"policy_asked"`
	PolicyWrong    int   `json:"policy_wrong"`
	PolicyErrors   int   `json:"policy_errors"`
	PolicyGapMaxMs int64 `json:"policy_gap_max_ms"`
	// ProbeGapMaxMs is null: probes need Postfix and Dovecot (the probes
	// scenario) and do not run here.
	ProbeGapMaxMs *int64        `json:"probe_gap_max_ms"`
	Kills         []clusterKill `json:"kills"`
	Errors        []string      `json:"errors"`
	ElapsedS      float64       `json:"elapsed_s"`
	Error         string        `json:"error,omitempty"`
	KeptDir       string        `json:"kept_dir,omitempty"`
}

func (r *clusterResult) ok() bool {
	if r.Error != "" || len(r.Errors) > 0 || r.Lost != 0 || r.Doubled != 0 || r.ReplicasDiffer != 0 || r.PolicyWrong != 0 || r.Published == 0 || r.PolicyAsked == 0 {
		return false
	}
	for _, k := range r.Kills {
		if k.TakeoverMs < 0 {
			return false
		}
	}
	return len(r.Kills) == 5
}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseClusterFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "cluster", err)
	}
	started := time.Now()
	res := clusterResult{Scenario: "cluster", Short: opts.short, RatePerS: opts.rate, Rows: map[string]int{}, Kills: []clusterKill{}, Errors: []string{}}
	// Processes are stopped in parallel, each logging its own trouble.
	c := &clusterRun{opts: opts, res: &res, log: &lockedWriter{w: stderr}}
	if err := c.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 1)
	c.summary()
	return printResult(stdout, stderr, "cluster", res, res.ok())
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// clusterWorker is one `mailmon <worker>` process.
type clusterWorker struct {
	worker   string // the subcommand and NATS user
	httpPort int
	*proc
}

func (w *clusterWorker) ready() error {
	return httpOK("http://127.0.0.1:" + strconv.Itoa(w.httpPort) + "/readyz")
}

type clusterRun struct {
	opts clusterOptions
	res  *clusterResult
	log  io.Writer

	dir, bin string
	nats     []*natsNode
	zk       *proc
	zkPort   int
	ch       []*chReplica
	sinks    []*clusterWorker
	evals    []*clusterWorker
	sweepers []*clusterWorker
	policy   *clusterWorker
	dnsAddr  string
	// policyListen is the policy service's port for Postfix.
	policyListen int

	nc  *nats.Conn
	js  jetstream.JetStream
	pub *clusterPublisher
	pw  *policyWatch

	errMu sync.Mutex
}

func (c *clusterRun) addError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.errMu.Lock()
	c.res.Errors = append(c.res.Errors, msg)
	c.errMu.Unlock()
	progress(c.log, "error: %s", msg)
}

func (c *clusterRun) allProcs() []*proc {
	var out []*proc
	for _, w := range c.workers() {
		out = append(out, w.proc)
	}
	for _, r := range c.ch {
		out = append(out, r.proc)
	}
	if c.zk != nil {
		out = append(out, c.zk)
	}
	for _, n := range c.nats {
		out = append(out, n.proc)
	}
	return out
}

func (c *clusterRun) workers() []*clusterWorker {
	var out []*clusterWorker
	out = append(out, c.sinks...)
	out = append(out, c.evals...)
	out = append(out, c.sweepers...)
	if c.policy != nil {
		out = append(out, c.policy)
	}
	return out
}

// checkExits records every process that exited without being killed.
func (c *clusterRun) checkExits() {
	for _, p := range c.allProcs() {
		if err := p.unexpectedExit(); err != nil {
			c.addError("%v", err)
			p.mu.Lock()
			p.killed = true // report it once
			p.mu.Unlock()
		}
	}
}

// stopAll stops every process by its pid: workers first, then the peers.
func (c *clusterRun) stopAll() {
	var wg sync.WaitGroup
	for _, w := range c.workers() {
		wg.Go(func() {
			if err := w.stop(); err != nil {
				progress(c.log, "stop %s: %v", w.name, err)
			}
		})
	}
	wg.Wait()
	var peers []*proc
	for _, r := range c.ch {
		peers = append(peers, r.proc)
	}
	for _, n := range c.nats {
		peers = append(peers, n.proc)
	}
	for _, p := range peers {
		wg.Go(func() {
			if err := p.stop(); err != nil {
				progress(c.log, "stop %s: %v", p.name, err)
			}
		})
	}
	wg.Wait()
	if c.zk != nil {
		if err := c.zk.stop(); err != nil {
			progress(c.log, "stop zookeeper: %v", err)
		}
	}
}

func (c *clusterRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, c.opts.limit)
	defer cancel()
	if missing := clusterPeersMissing(); len(missing) > 0 {
		return fmt.Errorf("missing on this machine: %s", strings.Join(missing, ", "))
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mailmon-loadtest-cluster-", c.opts.keep, &c.res.KeptDir, c.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	c.dir = dir
	progress(c.log, "building mailmon and nats-server")
	if c.bin, err = buildMailmon(ctx, root, dir); err != nil {
		return err
	}
	natsBin, err := buildNATSServer(ctx, root, dir)
	if err != nil {
		return err
	}
	defer c.stopAll()
	passwords, err := c.startNATS(ctx, root, natsBin)
	if err != nil {
		return err
	}
	if err := c.startClickHouse(ctx); err != nil {
		return err
	}
	base, err := c.baseConfig(root)
	if err != nil {
		return err
	}
	if err := c.setup(ctx, base, passwords); err != nil {
		return err
	}
	stopDNS, err := c.startDNS()
	if err != nil {
		return err
	}
	defer stopDNS()
	if err := c.startWorkers(ctx, base, passwords); err != nil {
		return err
	}
	if c.nc, err = nats.Connect(c.natsURLs(), nats.Name("mailmon-loadtest"), nats.UserInfo("admin", passwords["MAILMON_NATS_ADMIN_PASSWORD"]),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.CustomInboxPrefix("_INBOX_admin")); err != nil {
		return fmt.Errorf("connect to nats as admin: %w", err)
	}
	defer c.nc.Close()
	if c.js, err = jetstream.New(c.nc); err != nil {
		return err
	}
	if err := c.enforceBad(ctx); err != nil {
		return err
	}

	// The load and the policy checks run from here to the end.
	if c.pub, err = newClusterPublisher(c.nc, root, c.opts.rate, c.opts.limit); err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Go(func() { c.pub.run(loadCtx) })
	c.pw = &policyWatch{addr: c.policyAddr()}
	bg.Go(func() { c.pw.run(loadCtx) })
	progress(c.log, "load at %d events/s and policy checks running; %s before the first kill", c.opts.rate, c.opts.warm)
	if err := sleepCtx(ctx, c.opts.warm); err != nil {
		return err
	}

	steps := []func(context.Context) (clusterKill, error){c.killNATSLeader, c.killClickHouse, c.killSink, c.killSweeperLeader, c.killEvaluator}
	for _, step := range steps {
		k, err := step(ctx)
		c.checkExits()
		if err != nil {
			return err
		}
		c.res.Kills = append(c.res.Kills, k)
		progress(c.log, "%s %s: takeover %dms (%s), caught up %dms, back ready %dms after restart",
			k.What, k.Victim, k.TakeoverMs, k.Takeover, k.CaughtUpMs, k.RestartReadyMs)
	}

	stopLoad()
	bg.Wait()
	c.pw.finish(c.res)
	progress(c.log, "load stopped; republishing what JetStream did not ack")
	if err := c.pub.finish(ctx, c.res); err != nil {
		c.addError("publish: %v", err)
	}
	c.checkExits()
	progress(c.log, "published %d (acked), %d never acked; waiting up to %s for ClickHouse", c.res.Published, c.res.Unacked, c.opts.settle)
	if err := c.settle(ctx); err != nil {
		c.addError("%v", err)
	}
	return c.verify(ctx)
}

func (c *clusterRun) natsURLs() string {
	urls := make([]string, len(c.nats))
	for i, n := range c.nats {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// startNATS writes the three node configs from deploy/cluster, starts the
// nodes with a generated password per accounts.conf variable in their
// environment, and waits until all are healthy.
func (c *clusterRun) startNATS(ctx context.Context, root, bin string) (map[string]string, error) {
	accounts, err := os.ReadFile(filepath.Join(root, "deploy", "cluster", "accounts.conf"))
	if err != nil {
		return nil, err
	}
	passwords := natsPasswords(accounts)
	if len(passwords) < 2 {
		return nil, errors.New("deploy/cluster/accounts.conf: no password variables found")
	}
	ports, err := freePortList(9)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, k := range sortedKeys(passwords) {
		env = append(env, k+"="+passwords[k])
	}
	for i := range 3 {
		c.nats = append(c.nats, &natsNode{name: fmt.Sprintf("n%d", i+1), client: ports[3*i], route: ports[3*i+1], monitor: ports[3*i+2]})
	}
	for _, n := range c.nats {
		ndir := filepath.Join(c.dir, "nats", n.name)
		if err := os.MkdirAll(ndir, 0o750); err != nil {
			return nil, err
		}
		file := filepath.Join("deploy", "cluster", "nats-"+n.name+".conf")
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return nil, err
		}
		conf, err := natsNodeConfig(src, file, n, c.nats, ndir)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(ndir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(ndir, "accounts.conf"), accounts, 0o600); err != nil {
			return nil, err
		}
		n.proc = &proc{name: "nats " + n.name, bin: bin, stopWait: 10 * time.Second, args: []string{"-c", path}, env: env, logPath: filepath.Join(ndir, "stdout.log")}
	}
	for _, n := range c.nats {
		if err := n.start(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nats {
		if err := waitUntil(ctx, 60*time.Second, 50*time.Millisecond, "nats "+n.name+" /healthz", n.healthy); err != nil {
			return nil, fmt.Errorf("%w; its log ends:\n%s", err, tailFile(filepath.Join(c.dir, "nats", n.name, "nats.log"), 2048))
		}
	}
	c.res.NATSAuth = "deploy/cluster/accounts.conf: one user per worker, each process given only its own password"
	progress(c.log, "nats cluster of 3 up (%s)", c.natsURLs())
	return passwords, nil
}

// startClickHouse starts ZooKeeper, waits until it serves, then both
// replicas (a replica started before ZooKeeper serves crashes on its first
// ON CLUSTER statement).
func (c *clusterRun) startClickHouse(ctx context.Context) error {
	ports, err := freePortList(7)
	if err != nil {
		return err
	}
	c.zkPort = ports[0]
	if c.zk, err = zookeeperProc(filepath.Join(c.dir, "zk"), c.zkPort); err != nil {
		return err
	}
	if err := c.zk.start(); err != nil {
		return err
	}
	if err := waitUntil(ctx, 60*time.Second, 50*time.Millisecond, "zookeeper", func() error { return zookeeperServing(c.zkPort) }); err != nil {
		return fmt.Errorf("%w; its log ends:\n%s", err, tailFile(c.zk.logPath, 2048))
	}
	for i := range 2 {
		c.ch = append(c.ch, &chReplica{name: fmt.Sprintf("r%d", i+1), tcp: ports[1+3*i], http: ports[2+3*i], interserver: ports[3+3*i]})
	}
	for _, r := range c.ch {
		rdir := filepath.Join(c.dir, "clickhouse", r.name)
		for _, sub := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
			if err := os.MkdirAll(filepath.Join(rdir, sub), 0o750); err != nil {
				return err
			}
		}
		path := filepath.Join(rdir, "config.xml")
		if err := os.WriteFile(path, []byte(chReplicaConfig(rdir, r, c.ch, c.zkPort)), 0o600); err != nil {
			return err
		}
		r.proc = &proc{name: "clickhouse " + r.name, bin: "clickhouse-server", stopWait: 10 * time.Second, args: []string{"--config-file=" + path}, logPath: filepath.Join(rdir, "log", "stdout.log")}
		if err := r.start(); err != nil {
			return err
		}
	}
	for _, r := range c.ch {
		if err := waitUntil(ctx, 60*time.Second, 50*time.Millisecond, "clickhouse "+r.name+" /ping", r.ping); err != nil {
			return err
		}
	}
	progress(c.log, "zookeeper and 2 clickhouse replicas up")
	return nil
}

// baseConfig is deploy/cluster/mailmon.cluster.yaml with the run's NATS
// URLs, ClickHouse replicas and log settings; every process's config
// starts from it.
func (c *clusterRun) baseConfig(root string) (map[string]any, error) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "cluster", "mailmon.cluster.yaml"))
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("deploy/cluster/mailmon.cluster.yaml: %w", err)
	}
	natsSec, ok := doc["nats"].(map[string]any)
	if !ok {
		return nil, errors.New("deploy/cluster/mailmon.cluster.yaml: no nats section")
	}
	if r, _ := natsSec["replicas"].(int); r != 3 {
		return nil, fmt.Errorf("deploy/cluster/mailmon.cluster.yaml: nats.replicas is %v, the scenario expects 3", natsSec["replicas"])
	}
	natsSec["url"] = c.natsURLs()
	doc["log"] = map[string]any{"level": "warn", "format": "text"}
	addrs := make([]string, len(c.ch))
	for i, r := range c.ch {
		addrs[i] = r.addr()
	}
	doc["clickhouse"] = map[string]any{"addrs": addrs, "cluster": chCluster, "database": database}
	return doc, nil
}

// processConfig writes one process's config: base plus its data dir, HTTP
// address and sections.
func (c *clusterRun) processConfig(base map[string]any, name string, httpPort int, sections map[string]any) (string, error) {
	doc := make(map[string]any, len(base)+len(sections)+2)
	for k, v := range base {
		doc[k] = v
	}
	pdir := filepath.Join(c.dir, "procs", name)
	if err := os.MkdirAll(pdir, 0o750); err != nil {
		return "", err
	}
	doc["data_dir"] = pdir
	doc["http"] = map[string]any{"addr": fmt.Sprintf("127.0.0.1:%d", httpPort)}
	for k, v := range sections {
		doc[k] = v
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(pdir, "mailmon.yaml")
	return path, os.WriteFile(path, append([]byte("# Written by the mailmon load-test harness (cluster scenario).\n"), data...), 0o600)
}

// credentials writes user's NATS password alone into its own directory,
// the process's CREDENTIALS_DIRECTORY (as a systemd unit would get it),
// and returns the process environment.
func (c *clusterRun) credentials(user string, passwords map[string]string) ([]string, error) {
	v := "MAILMON_NATS_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
	pw, ok := passwords[v]
	if !ok {
		return nil, fmt.Errorf("deploy/cluster/accounts.conf has no user %s ($%s)", user, v)
	}
	cdir := filepath.Join(c.dir, "credentials", user)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cdir, user), []byte(pw+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []string{"CREDENTIALS_DIRECTORY=" + cdir, "MAILMON_TRACKING_KEY=" + randomSecret() + randomSecret()}, nil
}

// mailmonCmd runs a one-off mailmon command and returns its output.
func (c *clusterRun) mailmonCmd(ctx context.Context, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mailmon %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// setup applies the topology (R3) and the migrations (ON CLUSTER) as an
// operator would, with the admin's password only. A mailmon without
// clickhouse.cluster falls back to one ClickHouse server (the first
// replica; the second stays idle), which the result says.
func (c *clusterRun) setup(ctx context.Context, base map[string]any, passwords map[string]string) error {
	ports, err := freePortList(1)
	if err != nil {
		return err
	}
	path, err := c.processConfig(base, "admin", ports[0], nil)
	if err != nil {
		return err
	}
	env, err := c.credentials("admin", passwords)
	if err != nil {
		return err
	}
	if out, err := c.mailmonCmd(ctx, env, "check-config", "-config", path); err != nil {
		if !strings.Contains(out, "addrs") && !strings.Contains(out, "cluster") {
			return err
		}
		progress(c.log, "this mailmon has no clickhouse.cluster: one ClickHouse server (%s) instead of replicas", c.ch[0].name)
		base["clickhouse"] = map[string]any{"addr": c.ch[0].addr(), "database": database}
		if path, err = c.processConfig(base, "admin", ports[0], nil); err != nil {
			return err
		}
	} else {
		c.res.ClickHouseCluster = true
	}
	t := time.Now()
	out, err := c.mailmonCmd(ctx, env, "pipelines", "apply", "-config", path)
	if err != nil {
		return err
	}
	progress(c.log, "%s in %.1fs", strings.TrimSpace(out), time.Since(t).Seconds())
	t = time.Now()
	out, err = c.mailmonCmd(ctx, env, "schemas", "migrate", "-config", path)
	if err != nil {
		return err
	}
	progress(c.log, "%s in %.1fs", strings.SplitN(strings.TrimSpace(out), "\n", 2)[0], time.Since(t).Seconds())
	return nil
}

// startDNS serves the dns-sweeper's blocklist zone from the harness:
// 127.0.0.2 for the zone's test point, NXDOMAIN (not listed) for the rest.
func (c *clusterRun) startDNS() (func(), error) {
	ports, err := freePortList(1)
	if err != nil {
		return nil, err
	}
	c.dnsAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA && strings.HasPrefix(q.Question[0].Name, "2.0.0.127.") {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{127, 0, 0, 2}})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{Addr: c.dnsAddr, Net: "udp", Handler: mux}
	started := make(chan error, 1)
	srv.NotifyStartedFunc = func() { started <- nil }
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			started <- err
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	return func() { srv.Shutdown() }, nil
}

func (c *clusterRun) policyAddr() string {
	return fmt.Sprintf("127.0.0.1:%d", c.policyListen)
}

// startWorkers starts two sinks, two evaluator partitions, two
// dns-sweepers and the policy service, each its own process.
func (c *clusterRun) startWorkers(ctx context.Context, base map[string]any, passwords map[string]string) error {
	ports, err := freePortList(9)
	if err != nil {
		return err
	}
	policyListen := ports[8]
	c.policyListen = policyListen
	evaluator := func(partition int) map[string]any {
		return map[string]any{"complaint_evaluator": map[string]any{
			"windows":           []string{"1h", "24h"},
			"customer":          map[string]any{"warn_rate": 0.001, "act_rate": 0.003, "min_delivered": 500, "act": true, "action": "cutoff"},
			"customer_provider": map[string]any{"warn_rate": 0, "act_rate": 0, "action": "reroute"},
			"source_ip":         map[string]any{"warn_rate": 0, "act_rate": 0, "action": "reroute"},
			"decisions":         map[string]any{"first": clusterDecision.String(), "cutoff_action": "REJECT", "cutoff_status": "5.7.1"},
			"tick":              "100ms",
			"partitions":        2,
			"partition":         partition,
		}}
	}
	sweeper := map[string]any{"dns_sweeper": map[string]any{
		"resolver": c.dnsAddr,
		"zones":    []string{"bl.cluster.test"},
		"custom_zones": []map[string]any{{"name": "bl.cluster.test", "kind": "ip", "weight": 1,
			"codes": map[string]any{"127.0.0.2": map[string]any{"class": "listed", "meaning": "listed"}}}},
		"ips":          []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"},
		"seen_ips":     map[string]any{"enabled": false},
		"interval":     "2s",
		"timeout":      "1s",
		"retries":      1,
		"audit":        map[string]any{"enabled": false},
		"leader_lease": map[string]any{"ttl": c.opts.leaseTTL.String()},
	}}
	specs := []struct {
		name, worker string
		sections     map[string]any
		into         *[]*clusterWorker
	}{
		{"sink-a", "clickhouse-sink", nil, &c.sinks},
		{"sink-b", "clickhouse-sink", nil, &c.sinks},
		{"evaluator-0", "complaint-evaluator", evaluator(0), &c.evals},
		{"evaluator-1", "complaint-evaluator", evaluator(1), &c.evals},
		{"sweeper-a", "dns-sweeper", sweeper, &c.sweepers},
		{"sweeper-b", "dns-sweeper", sweeper, &c.sweepers},
		{"policy", "policy-service", map[string]any{"policy_service": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", policyListen)}}, nil},
	}
	for i, s := range specs {
		path, err := c.processConfig(base, s.name, ports[i], s.sections)
		if err != nil {
			return err
		}
		env, err := c.credentials(s.worker, passwords)
		if err != nil {
			return err
		}
		w := &clusterWorker{worker: s.worker, httpPort: ports[i], proc: &proc{name: s.name, bin: c.bin,
			args: []string{s.worker, "-config", path}, env: env, logPath: filepath.Join(filepath.Dir(path), "mailmon.log")}}
		if s.into != nil {
			*s.into = append(*s.into, w)
		} else {
			c.policy = w
		}
		if err := w.start(); err != nil {
			return err
		}
	}
	for _, w := range c.workers() {
		if err := waitUntil(ctx, 90*time.Second, 100*time.Millisecond, w.name+" /readyz", func() error {
			if err := w.unexpectedExit(); err != nil {
				return err
			}
			return w.ready()
		}); err != nil {
			return fmt.Errorf("%w; its log ends:\n%s", err, tailFile(w.logPath, 2048))
		}
	}
	progress(c.log, "workers up: %d sinks, %d evaluator partitions, %d dns-sweepers, 1 policy service", len(c.sinks), len(c.evals), len(c.sweepers))
	return nil
}
