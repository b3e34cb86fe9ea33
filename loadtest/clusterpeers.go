package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The cluster scenario's processes: three nats-server nodes, ZooKeeper,
// two clickhouse-server replicas and the mailmon workers, each a plain
// process on loopback with its config and data under the run's temp dir,
// killed and stopped by its own pid only.

// proc is one process the cluster scenario started, restartable with the
// same command line.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string // added to the harness's environment
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	killed  bool // the harness killed or stopped it: its exit is expected
	starts  int
	// stopWait is how long stop waits after SIGTERM before SIGKILL; 30 s
	// when zero (a worker drains), shorter for the peers, whose data is
	// thrown away with the run.
	stopWait time.Duration
}

// start starts the process; its output is appended to its log file.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.starts++
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// running reports whether the process was started and has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process's own pid and waits up to wait for it to
// exit; it reports whether it did.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) (bool, error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return true, nil
	}
	select {
	case <-exited:
		return true, nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("signal %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return true, nil
	case <-time.After(wait):
		return false, nil
	}
}

// kill is SIGKILL, waiting until the process is reaped.
func (p *proc) kill() error {
	done, err := p.signal(syscall.SIGKILL, 10*time.Second)
	if err == nil && !done {
		err = fmt.Errorf("%s (pid %d) still there 10s after SIGKILL", p.name, p.pid())
	}
	return err
}

// stop is SIGTERM, then SIGKILL after stopWait.
func (p *proc) stop() error {
	wait := p.stopWait
	if wait == 0 {
		wait = 30 * time.Second
	}
	done, err := p.signal(syscall.SIGTERM, wait)
	if err != nil || done {
		return err
	}
	if err := p.kill(); err != nil {
		return err
	}
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.name, wait)
}

// unexpectedExit is an error when the process exited without the harness
// killing or stopping it.
func (p *proc) unexpectedExit() error {
	p.mu.Lock()
	exited, killed := p.exited, p.killed
	p.mu.Unlock()
	if exited == nil || killed {
		return nil
	}
	select {
	case <-exited:
		p.mu.Lock()
		err := p.waitErr
		p.mu.Unlock()
		return fmt.Errorf("%s exited by itself (%v); its log ends:\n%s", p.name, err, tailFile(p.logPath, 2048))
	default:
		return nil
	}
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return string(bytes.TrimSpace(data))
}

// freePortList returns n distinct free loopback ports.
func freePortList(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choose a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// waitUntil polls ok every step until it returns nil, ctx ends or the
// timeout passes; the error quotes ok's last error.
func waitUntil(ctx context.Context, timeout, step time.Duration, what string, ok func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ok()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %s: %w", what, timeout, err)
		case <-time.After(step):
		}
	}
}

var httpQuick = &http.Client{Timeout: 3 * time.Second}

// httpOK is nil when GET url answers 200.
func httpOK(url string) error {
	resp, err := httpQuick.Get(url)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 18)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// --- NATS ---------------------------------------------------------------

// natsNode is one node of the 3-node cluster.
type natsNode struct {
	name                   string // n1..n3, its server_name
	client, route, monitor int
	*proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.client) }

// healthy is nil once the node is current with the meta leader.
func (n *natsNode) healthy() error {
	return httpOK("http://127.0.0.1:" + strconv.Itoa(n.monitor) + "/healthz")
}

// buildNATSServer builds nats-server at the version go.mod requires, so
// the cluster runs the very server the embedded one and the tests use.
func buildNATSServer(ctx context.Context, moduleRoot, dir string) (string, error) {
	return goBuild(ctx, moduleRoot, "github.com/nats-io/nats-server/v2", filepath.Join(dir, "nats-server"))
}

var accountsVar = regexp.MustCompile(`\$((?:MAILMON_NATS_[A-Z0-9_]+_PASSWORD)|SYS_PASSWORD)\b`)

// natsPasswords generates a password for every variable accounts.conf
// reads, keyed by variable name.
func natsPasswords(accounts []byte) map[string]string {
	out := map[string]string{}
	for _, m := range accountsVar.FindAllSubmatch(accounts, -1) {
		out[string(m[1])] = randomSecret()
	}
	return out
}

// natsUserOfVar is the NATS user whose password variable v is:
// MAILMON_NATS_CLICKHOUSE_SINK_PASSWORD is clickhouse-sink.
func natsUserOfVar(v string) (string, bool) {
	s, ok := strings.CutPrefix(v, "MAILMON_NATS_")
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, "_PASSWORD")
	return strings.ReplaceAll(strings.ToLower(s), "_", "-"), ok
}

// replaceOnce replaces old by new in s and fails unless old occurs
// exactly once: a committed config that changed shape must be noticed,
// not half-rewritten.
func replaceOnce(s, old, new, file string) (string, error) {
	if n := strings.Count(s, old); n != 1 {
		return "", fmt.Errorf("%s: %q occurs %d times, want once (the harness rewrites it for loopback)", file, old, n)
	}
	return strings.Replace(s, old, new, 1), nil
}

// natsNodeConfig rewrites deploy/cluster/nats-nI.conf for loopback: its
// ports, store dir and routes; accounts.conf is included as committed.
func natsNodeConfig(src []byte, file string, self *natsNode, nodes []*natsNode, dir string) (string, error) {
	s := string(src)
	var err error
	edits := [][2]string{
		{"server_name: " + self.name + "\n", "server_name: " + self.name + "\n"},
		{"listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", self.client)},
		{"http: 127.0.0.1:8222", fmt.Sprintf("http: 127.0.0.1:%d", self.monitor)},
		{`store_dir: "/var/lib/nats/js"`, fmt.Sprintf("store_dir: %q", filepath.Join(dir, "js"))},
		{"listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", self.route)},
	}
	for i, n := range nodes {
		edits = append(edits, [2]string{fmt.Sprintf("nats-route://nats-%d.example.net:6222", i+1), fmt.Sprintf("nats-route://127.0.0.1:%d", n.route)})
	}
	for _, e := range edits {
		if s, err = replaceOnce(s, e[0], e[1], file); err != nil {
			return "", err
		}
	}
	return s + fmt.Sprintf("log_file: %q\n", filepath.Join(dir, "nats.log")), nil
}

// --- ZooKeeper and ClickHouse -------------------------------------------

const (
	zookeeperJar   = "/usr/share/java/zookeeper.jar"
	slf4jSimpleJar = "/usr/share/java/slf4j-simple.jar"
	// chCluster is the remote_servers cluster of the two replicas.
	chCluster = "mailmon"
)

// clusterPeersMissing names what the cluster scenario needs and this
// machine lacks (Debian: apt-get install zookeeper clickhouse-server).
func clusterPeersMissing() []string {
	var missing []string
	for _, c := range []string{"java", "clickhouse-server"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if _, err := os.Stat(zookeeperJar); err != nil {
		missing = append(missing, zookeeperJar+" (Debian package zookeeper)")
	}
	return missing
}

func zookeeperProc(dir string, port int) (*proc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
maxClientCnxns=0
`, filepath.Join(dir, "data"), port)
	path := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cp := zookeeperJar
	if _, err := os.Stat(slf4jSimpleJar); err == nil {
		cp += ":" + slf4jSimpleJar
	}
	return &proc{name: "zookeeper", bin: "java", stopWait: 5 * time.Second, logPath: filepath.Join(dir, "zk.log"), args: []string{
		"-Xms16m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp,
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "org.apache.zookeeper.server.quorum.QuorumPeerMain", path}}, nil
}

// zookeeperServing is nil once ZooKeeper serves (4lw srvr reports a Mode;
// ruok answers before it serves).
func zookeeperServing(port int) error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "srvr"); err != nil {
		return err
	}
	out, _ := io.ReadAll(c)
	if !bytes.Contains(out, []byte("Mode: ")) {
		return fmt.Errorf("zookeeper not serving yet: %q", bytes.TrimSpace(out))
	}
	return nil
}

// chReplica is one clickhouse-server of the replicated pair.
type chReplica struct {
	name                   string // r1, r2: its replica macro
	tcp, http, interserver int
	*proc
}

func (r *chReplica) addr() string { return "127.0.0.1:" + strconv.Itoa(r.tcp) }

func (r *chReplica) ping() error { return httpOK("http://127.0.0.1:" + strconv.Itoa(r.http) + "/ping") }

// chReplicaConfig is a replica's config.xml: the single-server settings
// mailmon's local ClickHouse uses, plus remote_servers (one shard, both
// replicas, internal replication), ZooKeeper with a 4 s session and the
// shard and replica macros.
func chReplicaConfig(dir string, self *chReplica, all []*chReplica, zkPort int) string {
	var replicas strings.Builder
	for _, r := range all {
		fmt.Fprintf(&replicas, "<replica><host>127.0.0.1</host><port>%d</port></replica>", r.tcp)
	}
	return fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/server.err.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <interserver_http_port>%[4]d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <users_config>config.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <profiles><default><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default/></quotas>
    <remote_servers><%[5]s><shard><internal_replication>true</internal_replication>%[6]s</shard></%[5]s></remote_servers>
    <zookeeper>
        <node index="1"><host>127.0.0.1</host><port>%[7]d</port></node>
        <session_timeout_ms>4000</session_timeout_ms>
        <operation_timeout_ms>2000</operation_timeout_ms>
    </zookeeper>
    <macros><shard>01</shard><replica>%[8]s</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
`, dir, self.tcp, self.http, self.interserver, chCluster, replicas.String(), zkPort, self.name)
}

// chQuery runs a query over a replica's HTTP port (curl-style, as the
// peers notes recommend for 18.16) and returns the body.
func chQuery(ctx context.Context, r *chReplica, query string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(r.http)+"/", strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse %s: %s", r.name, bytes.TrimSpace(body[:min(len(body), 300)]))
	}
	return string(body), nil
}

// chQueryAny runs query on the first replica that answers.
func chQueryAny(ctx context.Context, rs []*chReplica, query string) (string, error) {
	var errs []error
	for _, r := range rs {
		if !r.running() {
			continue
		}
		out, err := chQuery(ctx, r, query)
		if err == nil {
			return out, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return "", errors.New("no clickhouse replica running")
	}
	return "", errors.Join(errs...)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
