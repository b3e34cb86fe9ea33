//go:build linux

package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/deploy/systemd"
)

// TestNATSClusterConfigs checks deploy/cluster's node configs with the
// nats-server that go.mod requires (built here): each is valid with every
// password variable accounts.conf names set, and refused, naming the
// variable, when one is missing (a node never starts with a user lacking
// its password). The NATS unit keeps the store where the configs put it.
func TestNATSClusterConfigs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	const cluster = "../../../../deploy/cluster"
	accounts := readFile(t, filepath.Join(cluster, "accounts.conf"))
	var vars []string
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`password: \$([A-Z0-9_]+)`).FindAllStringSubmatch(accounts, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			vars = append(vars, m[1])
		}
	}
	if !seen["SYS_PASSWORD"] || len(vars) < 3 {
		t.Fatalf("accounts.conf names the password variables %v; want SYS_PASSWORD and one per user", vars)
	}
	for _, v := range vars {
		if v != "SYS_PASSWORD" && !regexp.MustCompile(`^MAILMON_NATS_[A-Z0-9_]+_PASSWORD$`).MatchString(v) {
			t.Errorf("accounts.conf reads $%s; the install documents SYS_PASSWORD and MAILMON_NATS_<USER>_PASSWORD only", v)
		}
	}
	writeTestConf := func(name string) string {
		t.Helper()
		data := readFile(t, filepath.Join(cluster, name))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	writeTestConf("accounts.conf")
	env := func(skip string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if name, _, _ := strings.Cut(kv, "="); !seen[name] {
				e = append(e, kv)
			}
		}
		for _, v := range vars {
			if v != skip {
				e = append(e, v+"=test-"+strings.ToLower(v))
			}
		}
		return e
	}
	for _, node := range []string{"nats-n1.conf", "nats-n2.conf", "nats-n3.conf"} {
		conf := writeTestConf(node)
		cmd := exec.Command(bin, "-c", conf, "-t")
		cmd.Env = env("")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "is valid") {
			t.Errorf("%s: nats-server -t: %v\n%s", node, err, out)
		}
		cmd = exec.Command(bin, "-c", conf, "-t")
		cmd.Env = env("MAILMON_NATS_CLICKHOUSE_SINK_PASSWORD")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MAILMON_NATS_CLICKHOUSE_SINK_PASSWORD") {
			t.Errorf("%s without MAILMON_NATS_CLICKHOUSE_SINK_PASSWORD: %v, want a refusal naming it\n%s", node, err, out)
		}
		if conf := readFile(t, filepath.Join(cluster, node)); !strings.Contains(conf, `store_dir: "/var/lib/nats/js"`) {
			t.Errorf("%s: store_dir is not /var/lib/nats/js, the NATS unit's state directory", node)
		}
	}
	u, err := systemd.Load("nats-server.service")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := u.Value("Service", "StateDirectory"); got != "nats" {
		t.Errorf("nats-server.service StateDirectory=%q, want nats (/var/lib/nats, the configs' store)", got)
	}
	if got, _ := u.Value("Service", "ExecStart"); got != "/usr/local/bin/nats-server -c /etc/nats/nats.conf" {
		t.Errorf("nats-server.service ExecStart=%q", got)
	}
}
