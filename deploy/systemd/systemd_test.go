package systemd

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// hardening is what every mailmon worker unit must say, key by key: the
// value of its last (effective) line.
var hardening = map[string]string{
	"DynamicUser":              "yes",
	"ProtectSystem":            "strict",
	"ProtectHome":              "yes",
	"PrivateTmp":               "yes",
	"PrivateDevices":           "yes",
	"NoNewPrivileges":          "yes",
	"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces":       "yes",
	"RestrictSUIDSGID":         "yes",
	"LockPersonality":          "yes",
	"MemoryDenyWriteExecute":   "yes",
	"ProtectKernelTunables":    "yes",
	"ProtectKernelModules":     "yes",
	"ProtectControlGroups":     "yes",
	"SystemCallArchitectures":  "native",
	"UMask":                    "0077",
	"Restart":                  "on-failure",
	"RestartPreventExitStatus": "2",
	"Type":                     "exec",
}

// workerUnits is the table of the worker units and what sets each apart.
var workerUnits = []struct {
	file, worker string
	capability   string // the one capability it keeps, if any
	state        string // its StateDirectory=, if any
	group        string // its SupplementaryGroups=, if any
	privateUsers bool
}{
	{"mailmon-clickhouse-sink.service", "clickhouse-sink", "", "", "", true},
	{"mailmon-complaint-evaluator@.service", "complaint-evaluator", "", "", "", true},
	{"mailmon-console.service", "console", "", "", "", true},
	{"mailmon-dns-sweeper.service", "dns-sweeper", "", "", "", true},
	{"mailmon-fbl-ingester.service", "fbl-ingester", "CAP_NET_BIND_SERVICE", "", "", false},
	{"mailmon-mailbox-retriever.service", "mailbox-retriever", "", "", "", true},
	{"mailmon-mta-log-tailer.service", "mta-log-tailer", "", "", "adm", false},
	{"mailmon-notifier.service", "notifier", "", "", "", true},
	{"mailmon-policy-service.service", "policy-service", "", "mailmon", "", true},
	{"mailmon-probe-sender.service", "probe-sender", "", "", "", true},
	{"mailmon-suppressor.service", "suppressor", "", "", "", true},
}

func TestEveryFileParses(t *testing.T) {
	names := append(UnitNames(), "mailmon-.service.d/credentials.conf")
	for _, name := range names {
		if _, err := Load(name); err != nil {
			t.Error(err)
		}
	}
	want := []string{"mailmon.target", "nats-server.service"}
	for _, w := range workerUnits {
		want = append(want, w.file)
	}
	slices.Sort(want)
	if got := UnitNames(); !slices.Equal(got, want) {
		t.Errorf("unit files %v, want %v (a new unit comes with its row in the tables here)", got, want)
	}
}

func TestWorkerUnitsAreHardened(t *testing.T) {
	ports := map[string]string{}
	for _, w := range workerUnits {
		t.Run(w.worker, func(t *testing.T) {
			u, err := Load(w.file)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range hardening {
				if got, ok := u.Value("Service", key); !ok || got != want {
					t.Errorf("%s=%q (set %v), want %q", key, got, ok, want)
				}
			}
			// The system call allow-list, then the deny-list taken from it.
			if got := u.Values("Service", "SystemCallFilter"); !slices.Equal(got, []string{"@system-service", "~@privileged @resources"}) {
				t.Errorf("SystemCallFilter lines %q", got)
			}
			if got, _ := u.Value("Service", "CapabilityBoundingSet"); got != w.capability {
				t.Errorf("CapabilityBoundingSet=%q, want %q", got, w.capability)
			}
			if got, _ := u.Value("Service", "AmbientCapabilities"); got != w.capability {
				t.Errorf("AmbientCapabilities=%q, want %q", got, w.capability)
			}
			if got, _ := u.Value("Service", "StateDirectory"); got != w.state {
				t.Errorf("StateDirectory=%q, want %q", got, w.state)
			}
			if got, _ := u.Value("Service", "SupplementaryGroups"); got != w.group {
				t.Errorf("SupplementaryGroups=%q, want %q", got, w.group)
			}
			if got, _ := u.Value("Service", "PrivateUsers"); (got == "yes") != w.privateUsers {
				t.Errorf("PrivateUsers=%q, want it %v", got, w.privateUsers)
			}
			if got, ok := u.Value("Service", "MemoryMax"); !ok || !strings.HasSuffix(got, "M") && !strings.HasSuffix(got, "G") {
				t.Errorf("MemoryMax=%q, want a bound in M or G", got)
			}
			if got, _ := u.Value("Service", "RestartSec"); got == "" || got == "0" {
				t.Errorf("RestartSec=%q, want a pause between restarts", got)
			}
			// The longest drain is 15 s (bus consumers, the fbl-ingester's
			// SMTP sessions); systemd must not SIGKILL before it ends.
			stop, _ := u.Value("Service", "TimeoutStopSec")
			if d, err := time.ParseDuration(stop); err != nil || d < 30*time.Second {
				t.Errorf("TimeoutStopSec=%q, want at least 30s (drain 15s plus flush)", stop)
			}
			// Secrets: its own NATS password as a credential named after
			// its NATS user, never in the environment.
			want := w.worker + ":/etc/mailmon/credentials/" + w.worker
			if got := u.Values("Service", "LoadCredential"); !slices.Equal(got, []string{want}) {
				t.Errorf("LoadCredential %q, want only %q", got, want)
			}
			for _, env := range u.Values("Service", "Environment") {
				name, _, _ := strings.Cut(env, "=")
				if name != "GOMEMLIMIT" && name != "MAILMON_EVALUATOR_PARTITION" {
					t.Errorf("Environment=%s: secrets and settings go in the config or credentials", env)
				}
			}
			if _, ok := u.Value("Service", "EnvironmentFile"); ok {
				t.Error("EnvironmentFile= set: secrets go in credentials")
			}
			exec, _ := u.Value("Service", "ExecStart")
			args := strings.Fields(exec)
			if len(args) != 6 || args[0] != "/usr/bin/mailmon" || args[1] != w.worker ||
				args[2] != "-config" || args[3] != "/etc/mailmon/mailmon.yaml" || args[4] != "-http.addr" {
				t.Fatalf("ExecStart=%s, want /usr/bin/mailmon %s -config /etc/mailmon/mailmon.yaml -http.addr ADDR", exec, w.worker)
			}
			if other, dup := ports[args[5]]; dup {
				t.Errorf("-http.addr %s is %s's too: two workers on one host would clash", args[5], other)
			}
			ports[args[5]] = w.worker
			if !strings.HasPrefix(args[5], "127.0.0.1:") {
				t.Errorf("-http.addr %s: metrics and the console stay on loopback unless a drop-in says otherwise", args[5])
			}
			if got, _ := u.Value("Unit", "PartOf"); got != "mailmon.target" {
				t.Errorf("PartOf=%q, want mailmon.target", got)
			}
			if got, _ := u.Value("Install", "WantedBy"); got != "mailmon.target" {
				t.Errorf("WantedBy=%q, want mailmon.target", got)
			}
		})
	}
}

func TestTheEvaluatorTemplateTakesItsPartition(t *testing.T) {
	u, err := Load("mailmon-complaint-evaluator@.service")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(u.Values("Service", "Environment"), "MAILMON_EVALUATOR_PARTITION=%i") {
		t.Error("the instance name does not reach the config as MAILMON_EVALUATOR_PARTITION")
	}
	if got, _ := u.Value("Install", "DefaultInstance"); got != "0" {
		t.Errorf("DefaultInstance=%q, want 0 (one partition)", got)
	}
}

func TestSharedCredentialsAreCredentials(t *testing.T) {
	u, err := Load("mailmon-.service.d/credentials.conf")
	if err != nil {
		t.Fatal(err)
	}
	creds := u.Values("Service", "LoadCredential")
	if len(creds) == 0 || len(u.Entries) != len(creds) {
		t.Fatalf("the drop-in holds %d entries, %d of them LoadCredential=: only credentials belong there", len(u.Entries), len(creds))
	}
	for _, c := range creds {
		name, path, _ := strings.Cut(c, ":")
		if path != "/etc/mailmon/credentials/"+name {
			t.Errorf("LoadCredential=%s: want NAME:/etc/mailmon/credentials/NAME, the name the config's ${env:NAME} reads", c)
		}
	}
}
