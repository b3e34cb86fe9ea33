package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	deployclickhouse "github.com/mailmon/mailmon/deploy/clickhouse"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/peertest"
)

// debianClickHouseConfig is the config.xml (with users.xml beside it) that
// Debian's clickhouse-server package installs; deploy/clickhouse's files
// are merged into it, as on a real replica.
const debianClickHouseConfig = "/etc/clickhouse-server/config.xml"

// TestClickHouseClusterConfig starts ZooKeeper and two ClickHouse 18.16
// replicas on loopback from deploy/clickhouse's very files (on Debian's own
// config.xml and users.xml), with only host names, ports, the password
// hash and the networks rewritten, plus a test-only file for data paths
// and ports. Then, as the mailmon user over the native protocol: the
// cluster and macros are what the files say, mailmon's migrations apply
// ON CLUSTER (as `mailmon schemas migrate` does), ON CLUSTER DDL creates a
// ReplicatedReplacingMergeTree table and its Distributed table on both
// replicas, a row inserted on one replica appears on the other, the same
// insert retried on the other replica is deduplicated, a Distributed
// insert reaches both, a third replica added as deploy/README.md says
// catches up and replicates, and the users file lets mailmon in from its
// network but not the passwordless default user.
func TestClickHouseClusterConfig(t *testing.T) {
	const zkJar = "/usr/share/java/zookeeper.jar"
	for _, need := range []string{zkJar, debianClickHouseConfig} {
		if _, err := os.Stat(need); err != nil {
			peertest.Unavailable(t, "%s: %v (Debian packages zookeeper and clickhouse-server)", need, err)
		}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		peertest.Unavailable(t, "java: %v (comes with Debian's zookeeper)", err)
	}
	server, err := exec.LookPath("clickhouse-server")
	if err != nil {
		if server, err = exec.LookPath("/usr/sbin/clickhouse-server"); err != nil {
			peertest.Unavailable(t, "clickhouse-server: %v", err)
		}
	}
	start := time.Now()
	dir := t.TempDir()
	const password = "deploy-cluster-test-password"
	sum := sha256.Sum256([]byte(password))
	hash := hex.EncodeToString(sum[:])

	zkPort := chDeployFreePort(t)
	zooCfg := chDeployRewrite(t, "zookeeper/zoo.cfg", []chDeployReplacement{
		{"dataDir=/var/lib/zookeeper", "dataDir=" + filepath.Join(dir, "zk", "data")},
		{"clientPort=2181", fmt.Sprintf("clientPort=%d\nclientPortAddress=127.0.0.1", zkPort)},
		// Test-only: no fsync, which halves the ON CLUSTER migrations on a
		// busy machine.
		{"autopurge.purgeInterval=24\n", "autopurge.purgeInterval=24\nforceSync=no\n"},
		// One standalone node here: the ensemble's peers go.
		{"server.1=zookeeper-1.example.net:2888:3888\n", ""},
		{"server.2=zookeeper-2.example.net:2888:3888\n", ""},
		{"server.3=zookeeper-3.example.net:2888:3888\n", ""},
	})
	chDeployWrite(t, filepath.Join(dir, "zk", "zoo.cfg"), zooCfg)
	if err := os.MkdirAll(filepath.Join(dir, "zk", "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	classpath := zkJar
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		classpath += ":/usr/share/java/slf4j-simple.jar"
	}
	chDeployStart(t, filepath.Join(dir, "zk"), java, "-Xms16m", "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", classpath, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(dir, "zk", "zoo.cfg"))
	// ClickHouse 18.16 started before ZooKeeper serves crashes on its first
	// ON CLUSTER statement: wait for `srvr` (not `ruok`, which answers early).
	chDeployWait(t, 30*time.Second, "ZooKeeper serving", func() bool { return chDeployZKServing(zkPort) })

	type replica struct{ tcp, http, interserver int }
	replicas := []replica{
		{chDeployFreePort(t), chDeployFreePort(t), chDeployFreePort(t)},
		{chDeployFreePort(t), chDeployFreePort(t), chDeployFreePort(t)},
	}
	// configure writes replica i's folder: Debian's config.xml and
	// users.xml, then deploy/clickhouse's files with the cluster listing
	// listed (a replica added later is listed after the two of the file).
	configure := func(i int, listed []replica) string {
		r := replicas[i]
		name := fmt.Sprintf("clickhouse-%d", i+1)
		rdir := filepath.Join(dir, name)
		for _, f := range []string{"config.xml", "users.xml"} {
			data, err := os.ReadFile(filepath.Join(filepath.Dir(debianClickHouseConfig), f))
			if err != nil {
				t.Fatal(err)
			}
			chDeployWrite(t, filepath.Join(rdir, f), string(data))
		}
		line := func(o replica) string {
			return fmt.Sprintf("<replica><host>127.0.0.1</host><port>%d</port></replica>", o.tcp)
		}
		second := line(listed[1])
		for _, o := range listed[2:] {
			second += "\n                " + line(o)
		}
		chDeployWrite(t, filepath.Join(rdir, "config.d", "mailmon-cluster.xml"), chDeployRewrite(t, "config.d/mailmon-cluster.xml", []chDeployReplacement{
			{"<replica><host>clickhouse-1.example.net</host><port>9000</port></replica>", line(listed[0])},
			{"<replica><host>clickhouse-2.example.net</host><port>9000</port></replica>", second},
			{"<listen_host>0.0.0.0</listen_host>", "<listen_host>127.0.0.1</listen_host>"},
			{`<node index="1"><host>zookeeper-1.example.net</host><port>2181</port></node>`,
				fmt.Sprintf(`<node index="1"><host>127.0.0.1</host><port>%d</port></node>`, zkPort)},
			{`<node index="2"><host>zookeeper-2.example.net</host><port>2181</port></node>`, ""},
			{`<node index="3"><host>zookeeper-3.example.net</host><port>2181</port></node>`, ""},
		}))
		// A third replica's file is the second's with its own name, as
		// deploy/README.md says to write it.
		replicaFile := chDeployRewrite(t, "clickhouse-2/config.d/mailmon-replica.xml", nil)
		if i < 2 {
			replicaFile = chDeployRewrite(t, name+"/config.d/mailmon-replica.xml", nil)
		}
		replicaFile = strings.ReplaceAll(replicaFile, fmt.Sprintf("clickhouse-%d", min(i+1, 2)), name)
		replicaFile = strings.Replace(replicaFile, "<interserver_http_host>"+name+".example.net</interserver_http_host>", "<interserver_http_host>127.0.0.1</interserver_http_host>", 1)
		if !strings.Contains(replicaFile, "<replica>"+name+"</replica>") || !strings.Contains(replicaFile, "<interserver_http_host>127.0.0.1<") {
			t.Fatalf("%s's mailmon-replica.xml lacks its macro or interserver host:\n%s", name, replicaFile)
		}
		chDeployWrite(t, filepath.Join(rdir, "config.d", "mailmon-replica.xml"), replicaFile)
		chDeployWrite(t, filepath.Join(rdir, "users.d", "mailmon-users.xml"), chDeployRewrite(t, "users.d/mailmon-users.xml", []chDeployReplacement{
			{"REPLACE-WITH-THE-SHA256-OF-THE-PASSWORD", hash},
			// The mailmon hosts are all of loopback here; the replicas
			// are 127.0.0.1 only, so 127.0.0.2 is "another host".
			{"<ip>192.0.2.0/24</ip>", "<ip>127.0.0.0/8</ip>"},
			{"<host>clickhouse-1.example.net</host>", "<ip>127.0.0.1</ip>"},
			{"<host>clickhouse-2.example.net</host>", "<ip>127.0.0.1</ip>"},
		}))
		// Test-only: this replica's ports and folders instead of Debian's.
		chDeployWrite(t, filepath.Join(rdir, "config.d", "zz-test-paths.xml"), fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <tcp_port>%d</tcp_port><http_port>%d</http_port><interserver_http_port>%d</interserver_http_port>
    <path>%[4]s/data/</path><tmp_path>%[4]s/tmp/</tmp_path>
    <user_files_path>%[4]s/user_files/</user_files_path><format_schema_path>%[4]s/format_schemas/</format_schema_path>
    <logger><log>%[4]s/log/server.log</log><errorlog>%[4]s/log/server.err.log</errorlog></logger>
    <mark_cache_size>67108864</mark_cache_size><uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
`, r.tcp, r.http, r.interserver, rdir))
		for _, sub := range []string{"data", "tmp", "log"} {
			if err := os.MkdirAll(filepath.Join(rdir, sub), 0o750); err != nil {
				t.Fatal(err)
			}
		}
		return rdir
	}
	for i := range replicas {
		rdir := configure(i, replicas)
		chDeployStart(t, rdir, server, "--config-file="+filepath.Join(rdir, "config.xml"))
	}
	for i, r := range replicas {
		chDeployWait(t, 30*time.Second, fmt.Sprintf("replica %d /ping", i+1), func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", r.http))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	t.Logf("ZooKeeper and both replicas serving %.1f s after the start", time.Since(start).Seconds())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]driver.Conn, len(replicas))
	for i, r := range replicas {
		conn, err := clickhouse.Open(&clickhouse.Options{
			Protocol:    clickhouse.Native,
			Addr:        []string{fmt.Sprintf("127.0.0.1:%d", r.tcp)},
			Auth:        clickhouse.Auth{Username: "mailmon", Password: password},
			Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
			DialTimeout: 5 * time.Second,
			ReadTimeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("replica %d as mailmon: %v", i+1, err)
		}
		conns[i] = conn
	}

	for i, conn := range conns {
		var macro string
		if err := conn.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&macro); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("clickhouse-%d", i+1); macro != want {
			t.Errorf("replica %d: macro replica = %q, want %q", i+1, macro, want)
		}
		var shards, hosts uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(shard_num), count() FROM system.clusters WHERE cluster = 'mailmon'").Scan(&shards, &hosts); err != nil {
			t.Fatal(err)
		}
		if shards != 1 || hosts != 2 {
			t.Errorf("replica %d: cluster mailmon has %d shards and %d replicas, want 1 and 2", i+1, shards, hosts)
		}
	}

	// `mailmon schemas migrate` as the mailmon user, through both replicas'
	// addresses: mailmon's migrations in their cluster form (replicated
	// tables and Distributed ones, ON CLUSTER).
	chCfg := chstore.DefaultConfig()
	chCfg.Addr = ""
	chCfg.Addrs = []string{fmt.Sprintf("127.0.0.1:%d", replicas[0].tcp), fmt.Sprintf("127.0.0.1:%d", replicas[1].tcp)}
	chCfg.Cluster = "mailmon"
	chCfg.Database = "mailmon"
	chCfg.Username = "mailmon"
	chCfg.Password = config.Secret(password)
	chCfg.ReadTimeout = config.Duration(2 * time.Minute)
	migrated := time.Now()
	mig, err := chstore.Open(ctx, chCfg)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := chstore.MigrateFor(ctx, mig, chCfg, schemas.Migrations)
	mig.Close()
	if err != nil {
		t.Fatalf("schemas migrate on the cluster: %v", err)
	}
	t.Logf("%d migrations applied ON CLUSTER in %.1f s", len(applied), time.Since(migrated).Seconds())

	ddl := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"distributed_ddl_task_timeout": 60}))
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS mailmon ON CLUSTER mailmon",
		"CREATE TABLE mailmon.deploy_check ON CLUSTER mailmon (id String, ts DateTime, v UInt32) " +
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/mailmon/deploy_check', '{replica}') " +
			"PARTITION BY toYYYYMMDD(ts) ORDER BY id",
		"CREATE TABLE mailmon.deploy_check_all ON CLUSTER mailmon AS mailmon.deploy_check " +
			"ENGINE = Distributed(mailmon, mailmon, deploy_check, rand())",
	} {
		if err := conns[0].Exec(ddl, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, conn := range conns {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = 'mailmon' AND name IN ('deploy_check', 'deploy_check_all')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("replica %d has %d of the 2 tables created ON CLUSTER", i+1, n)
		}
	}

	ts := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	insert := func(conn driver.Conn, table, id string) {
		t.Helper()
		b, err := conn.PrepareBatch(ctx, "INSERT INTO mailmon."+table+" (id, ts, v)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(id, ts, uint32(7)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatalf("insert %s into %s: %v", id, table, err)
		}
	}
	count := func(conn driver.Conn, where string) uint64 {
		t.Helper()
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM mailmon.deploy_check WHERE "+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	inserted := time.Now()
	insert(conns[0], "deploy_check", "a")
	chDeployWait(t, 30*time.Second, "the row inserted on replica 1 on replica 2", func() bool { return count(conns[1], "id = 'a'") == 1 })
	t.Logf("a row inserted on replica 1 was on replica 2 after %v", time.Since(inserted).Round(time.Millisecond))

	// A sink's retry of the same batch on the other replica: the block's
	// hash is in ZooKeeper, so the rows are not stored again.
	insert(conns[1], "deploy_check", "a")
	for i, conn := range conns {
		if n := count(conn, "id = 'a'"); n != 1 {
			t.Errorf("replica %d holds %d rows for the retried insert, want 1 (replicated dedup)", i+1, n)
		}
	}

	distCtx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	b, err := conns[1].PrepareBatch(distCtx, "INSERT INTO mailmon.deploy_check_all (id, ts, v)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("b", ts, uint32(8)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert through the Distributed table: %v", err)
	}
	for i, conn := range conns {
		chDeployWait(t, 30*time.Second, fmt.Sprintf("the Distributed insert on replica %d", i+1), func() bool { return count(conn, "id = 'b'") == 1 })
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM mailmon.deploy_check_all FINAL").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("replica %d: the Distributed table shows %d rows, want 2", i+1, n)
		}
	}

	// Adding a replica as deploy/README.md says: list it in the cluster
	// on the running replicas (reread without a restart), start it with
	// its own macros, create the database and copy each table's statement
	// from a running replica, replicated tables first; it then fetches
	// every part, and its own inserts reach the others.
	added := time.Now()
	replicas = append(replicas, replica{chDeployFreePort(t), chDeployFreePort(t), chDeployFreePort(t)})
	for i := range 2 {
		configure(i, replicas)
	}
	for i, conn := range conns {
		chDeployWait(t, 30*time.Second, fmt.Sprintf("replica %d listing the third replica", i+1), func() bool {
			var hosts uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = 'mailmon'").Scan(&hosts); err != nil {
				t.Fatal(err)
			}
			return hosts == 3
		})
	}
	third := configure(2, replicas)
	chDeployStart(t, third, server, "--config-file="+filepath.Join(third, "config.xml"))
	chDeployWait(t, 30*time.Second, "replica 3 /ping", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", replicas[2].http))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	conn3, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{fmt.Sprintf("127.0.0.1:%d", replicas[2].tcp)},
		Auth:        clickhouse.Auth{Username: "mailmon", Password: password},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout: 5 * time.Second,
		ReadTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	if err := conn3.Exec(ctx, "CREATE DATABASE mailmon"); err != nil {
		t.Fatal(err)
	}
	rows, err := conns[0].Query(ctx, "SELECT name FROM system.tables WHERE database = 'mailmon' ORDER BY engine NOT LIKE 'Replicated%', name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, name := range tables {
		var statement string
		if err := conns[0].QueryRow(ctx, "SHOW CREATE TABLE mailmon."+name).Scan(&statement); err != nil {
			t.Fatal(err)
		}
		if err := conn3.Exec(ctx, statement); err != nil {
			t.Fatalf("on the third replica: %s: %v", statement, err)
		}
	}
	chDeployWait(t, time.Minute, "the third replica fetching the rows", func() bool { return count(conn3, "1") == 2 })
	insert(conn3, "deploy_check", "c")
	for i, conn := range conns {
		chDeployWait(t, 30*time.Second, fmt.Sprintf("the third replica's row on replica %d", i+1), func() bool { return count(conn, "id = 'c'") == 1 })
	}
	t.Logf("a third replica added and caught up in %.1f s", time.Since(added).Seconds())

	// The users file: mailmon from its network with its password only,
	// default only from the replicas themselves (127.0.0.1 here).
	for _, c := range []struct {
		user, password, from string
		ok                   bool
	}{
		{"mailmon", password, "127.0.0.2", true},
		{"mailmon", "wrong-password", "127.0.0.2", false},
		{"default", "", "127.0.0.1", true},
		{"default", "", "127.0.0.2", false},
	} {
		status, body := chDeployHTTPQuery(t, replicas[0].http, c.from, c.user, c.password, "SELECT 1")
		if (status == http.StatusOK) != c.ok {
			t.Errorf("%s from %s: HTTP %d %q, want allowed=%v", c.user, c.from, status, body, c.ok)
		}
	}
	t.Logf("whole check %.1f s", time.Since(start).Seconds())
}

type chDeployReplacement struct{ old, new string }

// rewrite returns the deploy/clickhouse file with each chDeployReplacement made;
// a chDeployReplacement that finds nothing fails the test, so the files cannot
// drift away from what this test checks.
func chDeployRewrite(t *testing.T, name string, rs []chDeployReplacement) string {
	t.Helper()
	data, err := fs.ReadFile(deployclickhouse.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, r := range rs {
		if !strings.Contains(s, r.old) {
			t.Fatalf("deploy/clickhouse/%s no longer contains %q", name, r.old)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	return s
}

func chDeployWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs a server with its output in dir/out.log and stops it
// at cleanup: SIGTERM, then SIGKILL after 15 s.
func chDeployStart(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stop %s: %v", bin, err)
		}
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

func chDeployWait(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func chDeployFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// zkServing asks ZooKeeper's `srvr`, which names the server's mode only
// once it serves.
func chDeployZKServing(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 500*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(io.LimitReader(conn, 4096))
	return regexp.MustCompile(`Mode: `).Match(out)
}

// httpQuery runs query on the HTTP port as user, from the local address
// from, and returns the status and body.
func chDeployHTTPQuery(t *testing.T, port int, from, user, password, query string) (int, string) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	defer client.CloseIdleConnections()
	u := fmt.Sprintf("http://127.0.0.1:%d/?user=%s&password=%s&query=%s", port,
		url.QueryEscape(user), url.QueryEscape(password), url.QueryEscape(query))
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("HTTP query from %s: %v", from, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body))
}
