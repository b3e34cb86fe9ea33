package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseClusterFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseClusterFlags(nil, &stderr)
	if err != nil || o.rate != 300 || o.down != 15*time.Second || o.leaseTTL != 5*time.Second || o.short {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	// -short lowers what is not given, and keeps what is.
	o, err = parseClusterFlags([]string{"-short", "-rate", "50"}, &stderr)
	if err != nil || o.rate != 50 || o.down != 5*time.Second || o.pause != 5*time.Second || o.leaseTTL != 2*time.Second || o.limit != 8*time.Minute {
		t.Fatalf("-short %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-rate", "1"}, {"-down", "0s"}, {"-lease-ttl", "1500ms"}, {"-timeout", "0s"}, {"extra"}} {
		if _, err := parseClusterFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The committed deploy/cluster files are what the scenario runs: each
// node's config must keep the lines the harness rewrites for loopback.
func TestNATSNodeConfigsRewriteForLoopback(t *testing.T) {
	nodes := []*natsNode{{name: "n1", client: 1001, route: 2001, monitor: 3001}, {name: "n2", client: 1002, route: 2002, monitor: 3002}, {name: "n3", client: 1003, route: 2003, monitor: 3003}}
	for _, n := range nodes {
		file := filepath.Join("..", "deploy", "cluster", "nats-"+n.name+".conf")
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		conf, err := natsNodeConfig(src, file, n, nodes, "/run/x")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"listen: 127.0.0.1:" + strconv.Itoa(n.client), "http: 127.0.0.1:" + strconv.Itoa(n.monitor), "listen: 127.0.0.1:" + strconv.Itoa(n.route),
			"nats-route://127.0.0.1:2001", "nats-route://127.0.0.1:2002", "nats-route://127.0.0.1:2003", `store_dir: "/run/x/js"`, "include ./accounts.conf"} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s: rewritten config lacks %q:\n%s", file, want, conf)
			}
		}
		if strings.Contains(conf, "example.net") || strings.Contains(conf, "0.0.0.0") {
			t.Errorf("%s: a public address survived:\n%s", file, conf)
		}
	}
	accounts, err := os.ReadFile(filepath.Join("..", "deploy", "cluster", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	pw := natsPasswords(accounts)
	for _, user := range []string{"admin", "clickhouse-sink", "complaint-evaluator", "dns-sweeper", "policy-service"} {
		found := false
		for v := range pw {
			if u, ok := natsUserOfVar(v); ok && u == user {
				found = true
			}
		}
		if !found {
			t.Errorf("accounts.conf has no password variable for %s: %v", user, sortedKeys(pw))
		}
	}
	if _, ok := pw["SYS_PASSWORD"]; !ok {
		t.Errorf("accounts.conf reads no SYS_PASSWORD: %v", sortedKeys(pw))
	}
}

func TestClusterIDsAreUUIDsAndDistinct(t *testing.T) {
	p := &clusterPublisher{runMs: uint64(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC).UnixMilli())}
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 2, 1 << 20, 1<<32 + 5} {
		id := p.idFor(i)
		if len(id) != 36 || id[14] != '7' || !strings.ContainsAny(id[19:20], "89ab") {
			t.Errorf("id %d: %q is not a version 7 UUID", i, id)
		}
		if seen[id] {
			t.Errorf("id %d: %q repeats", i, id)
		}
		seen[id] = true
		if p.idFor(i) != id {
			t.Errorf("id %d is not deterministic", i)
		}
	}
}

// TestClusterScenarioShort is the CI run of the cluster scenario: real
// nats-server, ZooKeeper and clickhouse-server processes, every kill, and
// a failure when a target is missed (lost, doubled, a wrong policy answer,
// a takeover that never happened).
func TestClusterScenarioShort(t *testing.T) {
	if missing := clusterPeersMissing(); len(missing) > 0 {
		unavailable(t, "the cluster scenario needs %s", strings.Join(missing, ", "))
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"cluster", "-short"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	var res clusterResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not the result: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("progress:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, lines[len(lines)-1])
	}
	if res.Lost != 0 || res.Doubled != 0 || res.PolicyWrong != 0 || res.ReplicasDiffer != 0 || res.Published == 0 || res.Stored < res.Published {
		t.Errorf("targets missed: %s", lines[len(lines)-1])
	}
	if !res.ClickHouseCluster {
		t.Errorf("ran without clickhouse.cluster: %s", lines[len(lines)-1])
	}
	if len(res.Kills) != 5 {
		t.Fatalf("%d kills, want 5: %+v", len(res.Kills), res.Kills)
	}
	for _, k := range res.Kills {
		if k.TakeoverMs < 0 || k.RestartReadyMs <= 0 {
			t.Errorf("kill %s %s: %+v", k.What, k.Victim, k)
		}
	}
	// A dns-sweeper standby takes over within one lease TTL (2 s under
	// -short) plus its poll; allow scheduling on a busy machine.
	if k := res.Kills[3]; k.What != "dns-sweeper-leader" || k.TakeoverMs > 10_000 {
		t.Errorf("lease takeover: %+v", k)
	}
}
