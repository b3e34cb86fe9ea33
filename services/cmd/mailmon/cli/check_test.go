package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/bus"
)

// exampleEvent reads the contract's example of typ, so the events the
// checks read are complete ones, as the workers publish them.
func exampleEvent[E schemas.Event](t *testing.T, typ string) E {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "schemas", "testdata", "events", typ+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := schemas.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return ev.(E)
}

// publisher publishes events as one worker's NATS user, each stamped anew.
func publisher(t *testing.T, rt *app.Runtime, user string) func(schemas.Event) {
	t.Helper()
	_, js, err := rt.Connect(user)
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: user})
	return func(ev schemas.Event) {
		t.Helper()
		if err := schemas.Stamp(ev, schemas.Source{Worker: user, Host: "test"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRun runs one check and returns its exit status and first line.
func checkRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	code, out, errOut := runMain(t, args...)
	first, rest, _ := strings.Cut(out, "\n")
	if errOut != "" {
		t.Logf("stderr: %s", errOut)
	}
	return code, first, rest
}

type probeSet struct {
	route, provider               string
	accepted, refused             int
	received, spam, missing, late int
}

func publishProbes(t *testing.T, rt *app.Runtime, sets ...probeSet) {
	sender, retriever := publisher(t, rt, "probe-sender"), publisher(t, rt, "mailbox-retriever")
	route := func(r *schemas.ProbeRoute, s probeSet) {
		r.ProbeID, r.Route, r.Provider, r.RecipientDomain = schemas.NewID(), s.route, s.provider, s.provider+".example"
	}
	for _, s := range sets {
		for i := range s.accepted + s.refused {
			ev := exampleEvent[*schemas.ProbeSent](t, schemas.TypeProbeSent)
			route(&ev.ProbeRoute, s)
			if i >= s.accepted {
				ev.Outcome, ev.ReplyCode, ev.ReplyText = schemas.OutcomeRefused, 554, "5.7.1 relay refused"
			}
			sender(ev)
		}
		for i := range s.received {
			ev := exampleEvent[*schemas.ProbeReceived](t, schemas.TypeProbeReceived)
			route(&ev.ProbeRoute, s)
			ev.Placement = schemas.PlacementInbox
			if i < s.spam {
				ev.Placement = schemas.PlacementSpam
			}
			retriever(ev)
		}
		for range s.missing {
			ev := exampleEvent[*schemas.ProbeMissing](t, schemas.TypeProbeMissing)
			route(&ev.ProbeRoute, s)
			retriever(ev)
		}
		for range s.late {
			ev := exampleEvent[*schemas.ProbeLate](t, schemas.TypeProbeLate)
			route(&ev.ProbeRoute, s)
			retriever(ev)
		}
	}
}

// The probes check on real events in the PROBE stream of a running
// mailmon's embedded NATS, state by state as they accumulate.
func TestCheckProbes(t *testing.T) {
	rt, cfg := startMailmon(t)

	code, line, _ := checkRun(t, "check", "probes", "-config", cfg)
	if code != 2 || !strings.HasPrefix(line, "PROBES CRITICAL - no probe sent in the last 1h0m0s") {
		t.Fatalf("empty stream: exit %d, %q", code, line)
	}

	publishProbes(t, rt,
		probeSet{route: "relay-a", provider: "gmail", accepted: 4, received: 4, spam: 1},
		probeSet{route: "relay-a", provider: "yahoo", accepted: 4, received: 4})
	code, line, long := checkRun(t, "check", "probes", "-config", cfg)
	want := "PROBES OK - 2 route/provider pairs, 8 probes sent, 8 received (1 in spam), 0 missing, 0 failed at the relay in the last 1h0m0s | " +
		"sent=8;;;0; received=8;;;0; spam=1;;;0; missing=0;;;0; late=0;;;0; relay_failed=0;;;0; failing_pairs=0;;;0;2 worst_failed=0%;20;50;0;100"
	if code != 0 || line != want {
		t.Fatalf("all received: exit %d\n  %s\nwant\n  %s", code, line, want)
	}
	if !strings.Contains(long, "OK relay-a/gmail: sent 4, relay failed 0, received 4 (spam 1), missing 0, late 0, failed 0%") {
		t.Errorf("long output:\n%s", long)
	}

	// One yahoo probe of five goes missing (and turns up late): 20 %.
	publishProbes(t, rt, probeSet{route: "relay-a", provider: "yahoo", accepted: 1, missing: 1, late: 1})
	code, line, _ = checkRun(t, "check", "probes", "-config", cfg)
	if code != 1 || !strings.HasPrefix(line, "PROBES WARNING - 1 of 2 route/provider pairs failing in the last 1h0m0s: relay-a/yahoo 1 of 5 failed (1 missing) | ") ||
		!strings.Contains(line, " late=1;;;0; ") || !strings.HasSuffix(line, " worst_failed=20%;20;50;0;100") {
		t.Fatalf("one missing: exit %d, %q", code, line)
	}
	if code, line, _ = checkRun(t, "check", "probes", "-warning", "25", "-config", cfg); code != 0 {
		t.Errorf("-warning 25: exit %d, %q", code, line)
	}

	// Our own relay refuses every outlook probe: CRITICAL, named first.
	publishProbes(t, rt, probeSet{route: "relay-a", provider: "outlook", refused: 2})
	code, line, _ = checkRun(t, "check", "probes", "-config", cfg)
	if code != 2 || !strings.HasPrefix(line, "PROBES CRITICAL - 2 of 3 route/provider pairs failing in the last 1h0m0s: relay-a/outlook 2 of 2 failed (2 failed at our relay), relay-a/yahoo 1 of 5 failed (1 missing) | ") {
		t.Fatalf("relay refusing: exit %d, %q", code, line)
	}
	if code, line, _ = checkRun(t, "check", "probes", "-critical", "100.5", "-config", cfg); code != 3 || !strings.HasPrefix(line, "PROBES UNKNOWN - usage") {
		t.Errorf("bad threshold: exit %d, %q", code, line)
	}
}

// The alerts check on real alert events: the last status per alert counts,
// silences (added with `mailmon silence add`) leave alerts out.
func TestCheckAlerts(t *testing.T) {
	rt, cfg := startMailmon(t)
	if code, line, _ := checkRun(t, "check", "alerts", "-config", cfg); code != 0 ||
		line != "ALERTS OK - no alert firing (last 720h0m0s) | firing=0;;;0; critical=0;;1;0; warning=0;1;;0; info=0;;;0; silenced=0;;;0;" {
		t.Fatalf("no alerts: exit %d, %q", code, line)
	}
	evaluator := publisher(t, rt, "complaint-evaluator")
	alert := func(rule, subject, severity, status string) *schemas.AlertRaised {
		return &schemas.AlertRaised{Rule: rule, Subject: subject, Severity: severity, Status: status,
			Summary: rule + " about " + subject + " | not perfdata", DedupeKey: rule + "/" + subject, Provider: "gmail", SourceIP: "192.0.2.10"}
	}
	evaluator(alert("probe_missing", "ip:192.0.2.10", "warning", "firing"))
	evaluator(alert("complaint_rate", "customer:acme", "info", "firing"))
	code, line, long := checkRun(t, "check", "alerts", "-config", cfg)
	if code != 1 || !strings.HasPrefix(line, "ALERTS WARNING - 2 firing (0 critical, 1 warning, 1 info): probe_missing ip:192.0.2.10 (warning), complaint_rate customer:acme (info) | firing=2;") {
		t.Fatalf("a warning: exit %d, %q", code, line)
	}
	if !strings.Contains(long, "[warning] probe_missing ip:192.0.2.10 since ") || !strings.Contains(long, "about ip:192.0.2.10 / not perfdata") {
		t.Errorf("long output:\n%s", long)
	}

	evaluator(alert("dnsbl_listed", "ip:192.0.2.10", "critical", "firing"))
	if code, line, _ = checkRun(t, "check", "alerts", "-config", cfg); code != 2 || !strings.HasPrefix(line, "ALERTS CRITICAL - 3 firing (1 critical, 1 warning, 1 info): dnsbl_listed ip:192.0.2.10 (critical), ") {
		t.Fatalf("a critical: exit %d, %q", code, line)
	}
	if code, line, _ = checkRun(t, "check", "alerts", "-critical", "2", "-config", cfg); code != 1 {
		t.Errorf("-critical 2 with one critical: exit %d, %q", code, line)
	}
	// The listing resolves: its last status is what counts.
	evaluator(alert("dnsbl_listed", "ip:192.0.2.10", "critical", "resolved"))
	if code, line, _ = checkRun(t, "check", "alerts", "-config", cfg); code != 1 {
		t.Fatalf("after the resolve: exit %d, %q", code, line)
	}
	if code, line, _ = checkRun(t, "check", "alerts", "-rule", "dnsbl_", "-config", cfg); code != 0 {
		t.Errorf("-rule dnsbl_: exit %d, %q", code, line)
	}

	// Planned maintenance: the probe alert is silenced.
	if code, out, errOut := runMain(t, "silence", "add", "rule=probe_missing", "source_ip=192.0.2.*", "-for", "1h", "-comment", "relay move", "-by", "ops", "-config", cfg); code != 0 {
		t.Fatalf("silence add: exit %d %s%s", code, out, errOut)
	}
	if code, line, _ = checkRun(t, "check", "alerts", "-config", cfg); code != 0 || !strings.HasPrefix(line, "ALERTS OK - 1 firing (0 critical, 0 warning, 1 info): complaint_rate customer:acme (info); 1 silenced | ") {
		t.Errorf("silenced: exit %d, %q", code, line)
	}
	if code, line, _ = checkRun(t, "check", "alerts", "-silenced", "-config", cfg); code != 1 {
		t.Errorf("-silenced: exit %d, %q", code, line)
	}
}

// A NATS that cannot be reached, a config that does not load and bad flags
// are UNKNOWN, on the plugin line.
func TestChecksAreUnknownWhenTheyCannotTell(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down := writeConfig(t, fmt.Sprintf("data_dir: %s\nnats:\n  url: nats://%s\n  user: u\n  password: p\n  connect_timeout: 1s\n", t.TempDir(), closed))
	for _, args := range [][]string{
		{"check", "probes", "-config", down},
		{"check", "alerts", "-config", down},
		{"check", "probes", "-config", filepath.Join(t.TempDir(), "missing.yaml")},
		{"check", "alerts", "-window", "soon"},
		{"check", "alerts", "-window", "-1h", "-config", down},
		{"check", "probes", "extra", "-config", down},
		{"check", "disks"},
	} {
		code, line, _ := checkRun(t, args...)
		if code != 3 || !strings.Contains(line, " UNKNOWN - ") || strings.Contains(line, "password") {
			t.Errorf("%v: exit %d, %q", args, code, line)
		}
	}
}
