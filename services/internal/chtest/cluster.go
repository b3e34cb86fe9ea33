package chtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/peertest"
)

// ClusterName is the cluster (remote_servers entry) StartCluster declares:
// one shard of two replicas.
const ClusterName = "mailmon"

// ZooKeeperJar is where Debian's zookeeper package puts the server;
// slf4jJar gives it a logger (without it, it logs nothing).
const (
	ZooKeeperJar = "/usr/share/java/zookeeper.jar"
	slf4jJar     = "/usr/share/java/slf4j-simple.jar"
)

// Cluster is a ZooKeeper and two ClickHouse replicas of one shard on
// loopback, each a child process with its data in one temporary folder.
type Cluster struct {
	t   testing.TB
	dir string
	zk  *ZooKeeper

	mu       sync.Mutex
	replicas []*chstore.LocalServer
	ports    [][3]int // tcp, http, interserver per replica
}

// StartCluster starts ZooKeeper, waits until it serves, then starts two
// clickhouse-server replicas (macros shard 01, replica r1 and r2) whose
// remote_servers declare ClusterName, and waits for both. Everything is
// stopped in t.Cleanup. A machine without ZooKeeper or Java skips the
// test through peertest (a failure under CI); a missing clickhouse-server
// fails it, as Start does.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := os.Stat(ZooKeeperJar); err != nil {
		peertest.Unavailable(t, "ZooKeeper (%s) is missing; install it with `apt-get install zookeeper` or `go tool task deps`", ZooKeeperJar)
	}
	if _, err := exec.LookPath("java"); err != nil {
		peertest.Unavailable(t, "java is missing; `apt-get install zookeeper` brings it")
	}
	dir := t.TempDir()
	zk, err := StartZooKeeper(filepath.Join(dir, "zk"))
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() {
		if err := zk.Stop(); err != nil {
			t.Errorf("chtest: stop zookeeper: %v", err)
		}
	})
	c := &Cluster{t: t, dir: dir, zk: zk}
	for range 2 {
		var p [3]int
		for i := range p {
			if p[i], err = freePort(); err != nil {
				t.Fatalf("chtest: %v", err)
			}
		}
		c.ports = append(c.ports, p)
	}
	c.replicas = make([]*chstore.LocalServer, len(c.ports))
	errs := make([]error, len(c.ports))
	var wg sync.WaitGroup
	for i := range c.ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.writeConfig(i)
			if errs[i] == nil {
				c.replicas[i], errs[i] = c.startReplica(i)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.replicas {
			if r != nil {
				if err := r.Stop(); err != nil {
					t.Errorf("chtest: stop replica: %v", err)
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	return c
}

// Addrs are the replicas' native-protocol addresses, replica 1 first.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.ports))
	for i, p := range c.ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p[0]))
	}
	return addrs
}

// Config is a clickhouse section for the cluster: ClusterName, database,
// and every replica in addrs (replica 1 first).
func (c *Cluster) Config(database string) chstore.Config {
	cfg := chstore.DefaultConfig()
	cfg.Addr = ""
	cfg.Addrs = c.Addrs()
	cfg.Cluster = ClusterName
	cfg.Database = database
	cfg.DialTimeout = config.Duration(2 * time.Second)
	cfg.ReadTimeout = config.Duration(30 * time.Second)
	return cfg
}

// Open connects to replica i alone (0 or 1) with database as the default
// database, through chstore.Open; the connection closes in t.Cleanup.
func (c *Cluster) Open(i int, database string) driver.Conn {
	c.t.Helper()
	cfg := c.Config(database)
	cfg.Addrs = []string{c.Addrs()[i]}
	conn, err := chstore.Open(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("chtest: open replica %d: %v", i+1, err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// ZooKeeper is the cluster's ZooKeeper server.
func (c *Cluster) ZooKeeper() *ZooKeeper { return c.zk }

// Replica is replica i's server (0 or 1).
func (c *Cluster) Replica(i int) *chstore.LocalServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[i]
}

// Kill sends SIGKILL to replica i and waits until it has exited.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	r := c.Replica(i)
	if err := syscall.Kill(r.PID(), syscall.SIGKILL); err != nil {
		c.t.Fatalf("chtest: kill replica %d: %v", i+1, err)
	}
	<-r.Exited()
}

// Restart starts replica i again on the same ports and data; it must have
// exited (Kill).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	r, err := c.startReplica(i)
	if err != nil {
		c.t.Fatalf("chtest: restart replica %d: %v", i+1, err)
	}
	c.mu.Lock()
	c.replicas[i] = r
	c.mu.Unlock()
}

func (c *Cluster) startReplica(i int) (*chstore.LocalServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return chstore.StartLocal(ctx, chstore.LocalServerConfig{
		Dir:      c.replicaDir(i),
		TCPPort:  c.ports[i][0],
		HTTPPort: c.ports[i][1],
		Binary:   os.Getenv(BinaryEnv),
	})
}

func (c *Cluster) replicaDir(i int) string { return filepath.Join(c.dir, fmt.Sprintf("ch%d", i+1)) }

// writeConfig puts the cluster settings in config.d/cluster.xml, which
// the server merges into the config.xml StartLocal writes.
func (c *Cluster) writeConfig(i int) error {
	var replicas strings.Builder
	for _, p := range c.ports {
		fmt.Fprintf(&replicas, "                <replica><host>127.0.0.1</host><port>%d</port></replica>\n", p[0])
	}
	xml := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <interserver_http_port>%d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <remote_servers>
        <%s>
            <shard>
                <internal_replication>true</internal_replication>
%s            </shard>
        </%s>
    </remote_servers>
    <zookeeper>
        <node index="1"><host>127.0.0.1</host><port>%d</port></node>
        <session_timeout_ms>4000</session_timeout_ms>
        <operation_timeout_ms>2000</operation_timeout_ms>
    </zookeeper>
    <macros><shard>01</shard><replica>r%d</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
`, c.ports[i][2], ClusterName, replicas.String(), ClusterName, c.zk.Port(), i+1)
	d := filepath.Join(c.replicaDir(i), "config.d")
	if err := os.MkdirAll(d, 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, "cluster.xml"), []byte(xml), 0o640)
}

// ZooKeeper is a single ZooKeeper server child process on loopback.
type ZooKeeper struct {
	cmd    *exec.Cmd
	port   int
	exited chan struct{}
	once   sync.Once
	err    error
}

// StartZooKeeper runs Debian's ZooKeeper with its data in dir on a free
// loopback port (heap capped at 64 MB, a 500 ms tick so ClickHouse may use
// a 4 s session, no fsync of its log: test data need not survive a power
// cut, and every ON CLUSTER statement and replicated insert writes to
// ZooKeeper several times) and waits until it serves: the `srvr` command answers
// with a Mode line (`ruok` answers before the server serves).
func StartZooKeeper(dir string) (*ZooKeeper, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr
maxClientCnxns=0
forceSync=no
`, filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "zk.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	classpath := ZooKeeperJar
	if _, err := os.Stat(slf4jJar); err == nil {
		classpath += ":" + slf4jJar
	}
	cmd := exec.Command("java", "-Xms16m", "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", classpath, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	zk := &ZooKeeper{cmd: cmd, port: port, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(zk.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !zk.serving() {
		select {
		case <-zk.exited:
			return nil, fmt.Errorf("zookeeper exited during start; see %s", filepath.Join(dir, "zk.log"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = zk.Stop()
			return nil, fmt.Errorf("zookeeper not serving on port %d after 30 s", port)
		}
	}
	return zk, nil
}

// PID is the server's process id.
func (z *ZooKeeper) PID() int { return z.cmd.Process.Pid }

// Port is the client port on 127.0.0.1.
func (z *ZooKeeper) Port() int { return z.port }

func (z *ZooKeeper) serving() bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(z.port)), 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(io.LimitReader(conn, 4096))
	return strings.Contains(string(out), "Mode: ")
}

// Stop sends SIGTERM and waits for the process (SIGKILL after 10 s).
func (z *ZooKeeper) Stop() error {
	z.once.Do(func() {
		select {
		case <-z.exited:
			return
		default:
		}
		if err := z.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			z.err = err
			return
		}
		select {
		case <-z.exited:
		case <-time.After(10 * time.Second):
			_ = z.cmd.Process.Kill()
			<-z.exited
			z.err = errors.New("zookeeper ignored SIGTERM for 10 s and was killed")
		}
	})
	return z.err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
