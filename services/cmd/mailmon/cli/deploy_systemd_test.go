//go:build linux

package cli

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/deploy/systemd"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/peertest"
)

// maxExposure is the highest `systemd-analyze security` exposure level (0
// best, 10 worst) a unit may have; the units score 1.1 to 1.4.
const maxExposure = 1.5

// TestSystemdUnits checks deploy/systemd with systemd's own tools and the
// real binary: `systemd-analyze verify` prints nothing for any unit (with
// ExecStart pointed at a freshly built mailmon, since verify needs the
// program to exist), `systemd-analyze security` rates each unit at most
// maxExposure, every worker has a unit, each unit's command line is one
// the binary accepts, and the cluster config loads from the units'
// credentials alone.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		peertest.Unavailable(t, "systemd-analyze (Debian package systemd): %v", err)
	}
	bin := buildMailmon(t)
	dir := installUnits(t, bin)
	units := unitFiles(t, dir)

	t.Run("verify", func(t *testing.T) {
		out, err := runAnalyze(analyze, dir, append([]string{"verify", "--man=no"}, units...)...)
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	// The check above can fail: a misspelled key in a drop-in and a unit
	// whose program is missing are both reported.
	t.Run("verify reports mistakes", func(t *testing.T) {
		bad := filepath.Join(dir, "mailmon-.service.d", "zz-typo.conf")
		if err := os.WriteFile(bad, []byte("[Service]\nRestrt=always\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(bad)
		missing := filepath.Join(dir, "mailmon-missing.service")
		unit := strings.ReplaceAll(readFile(t, filepath.Join(dir, "mailmon-notifier.service")), bin, filepath.Join(dir, "absent"))
		if err := os.WriteFile(missing, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(missing)
		out, _ := runAnalyze(analyze, dir, "verify", "--man=no", missing)
		for _, want := range []string{"Unknown key 'Restrt'", "is not executable"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("verify of a broken unit does not say %q:\n%s", want, out)
			}
		}
	})

	t.Run("security", func(t *testing.T) {
		overall := regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+)`)
		for _, u := range units {
			if strings.HasSuffix(u, ".target") {
				continue
			}
			out, err := runAnalyze(analyze, dir, "security", "--offline=yes", "--no-pager", u)
			m := overall.FindSubmatch(out)
			if err != nil || m == nil {
				t.Errorf("systemd-analyze security %s: %v\n%s", u, err, out)
				continue
			}
			level, _ := strconv.ParseFloat(string(m[2]), 64)
			t.Logf("%s: exposure %.1f", m[1], level)
			if level > maxExposure {
				t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", m[1], level, maxExposure, out)
			}
		}
	})

	t.Run("every worker has a unit", func(t *testing.T) {
		for _, d := range app.Workers() {
			name := "mailmon-" + d.Name + ".service"
			if d.Name == "complaint-evaluator" {
				name = "mailmon-complaint-evaluator@.service"
			}
			if !slices.Contains(systemd.UnitNames(), name) {
				t.Errorf("worker %s has no unit %s", d.Name, name)
			}
		}
	})

	t.Run("command lines", func(t *testing.T) {
		for _, name := range systemd.UnitNames() {
			if !strings.HasPrefix(name, "mailmon-") {
				continue
			}
			u, err := systemd.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			exec0, _ := u.Value("Service", "ExecStart")
			args := strings.Fields(strings.ReplaceAll(exec0, "%i", "0"))
			// -h after the unit's own flags: the binary exits 0 only if the
			// command and every flag before it exist.
			cmd := exec.Command(bin, append(args[1:], "-h")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %s -h: %v\n%s", name, exec0, err, out)
			}
		}
	})

	t.Run("cluster config from credentials", func(t *testing.T) {
		checkClusterConfigFromCredentials(t, bin)
	})
}

// checkClusterConfigFromCredentials loads deploy/cluster/mailmon.cluster.yaml
// (plus an evaluator partition) as a unit would: its secrets only in
// $CREDENTIALS_DIRECTORY, named as the credentials drop-in names them.
func checkClusterConfigFromCredentials(t *testing.T, bin string) {
	cluster := readFile(t, "../../../../deploy/cluster/mailmon.cluster.yaml")
	dropIn, err := systemd.Load("mailmon-.service.d/credentials.conf")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range dropIn.Values("Service", "LoadCredential") {
		name, _, _ := strings.Cut(c, ":")
		names = append(names, name)
	}
	// Every secret the config needs (a reference without a fallback) is
	// one the drop-in loads.
	for _, m := range regexp.MustCompile(`(?m)^[^#\n]*\$\{env:([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(cluster, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("the cluster config needs ${env:%s}, which credentials.conf does not load", m[1])
		}
	}

	creds := t.TempDir()
	secrets := map[string]string{
		"MAILMON_TRACKING_KEY":        "credential-tracking-key-0123456789abcdef0123",
		"MAILMON_CLICKHOUSE_PASSWORD": "credential-clickhouse-password",
	}
	for _, name := range names {
		v, ok := secrets[name]
		if !ok {
			t.Fatalf("credentials.conf loads %s: give it a test value here", name)
		}
		if err := os.WriteFile(filepath.Join(creds, name), []byte(v+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "mailmon.yaml")
	evaluator := "complaint_evaluator:\n  partitions: 2\n  partition: ${env:MAILMON_EVALUATOR_PARTITION}\n"
	if err := os.WriteFile(cfg, []byte(cluster+evaluator), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check-config", "-config", cfg)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, secret := secrets[name]; !secret && name != "CREDENTIALS_DIRECTORY" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CREDENTIALS_DIRECTORY="+creds, "MAILMON_EVALUATOR_PARTITION=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check-config of the cluster config from credentials: %v\n%s", err, out)
	}
	for _, v := range secrets {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("check-config prints a secret from the credentials:\n%s", out)
		}
	}
	for _, want := range []string{
		"password_file: " + creds + "/clickhouse-sink",
		"partition: 1",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
}

// installUnits copies deploy/systemd into a temporary folder as it would
// be installed, with the programs' paths pointed at bin (verify checks
// that each ExecStart program exists and is executable, nothing more; the
// NATS unit's nats-server is not built here, so it points at bin too), and
// adds instance 0 of the evaluator template.
func installUnits(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(systemd.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(filepath.Join(dir, path), 0o755)
		}
		data, err := fs.ReadFile(systemd.FS(), path)
		if err != nil {
			return err
		}
		data = bytes.ReplaceAll(data, []byte("/usr/bin/mailmon "), []byte(bin+" "))
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/nats-server "), []byte(bin+" "))
		if err := os.WriteFile(filepath.Join(dir, path), data, 0o644); err != nil {
			return err
		}
		if strings.HasSuffix(path, "@.service") {
			return os.WriteFile(filepath.Join(dir, strings.Replace(path, "@.", "@0.", 1)), data, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// unitFiles lists the unit files in dir as absolute paths.
func unitFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, e := range entries {
		if !e.IsDir() {
			units = append(units, filepath.Join(dir, e.Name()))
		}
	}
	return units
}

// runAnalyze runs systemd-analyze in dir, without colour or pager, and
// returns what it printed on both outputs.
func runAnalyze(analyze, dir string, args ...string) ([]byte, error) {
	cmd := exec.Command(analyze, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_COLOR=0")
	return cmd.CombinedOutput()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
