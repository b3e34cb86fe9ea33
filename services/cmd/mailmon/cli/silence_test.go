package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/silence"
)

// startMailmon starts the runtime of a mailmon with an embedded NATS server
// on loopback (credentials generated under a temporary data_dir) and
// returns it with the path of a config that reaches it.
func startMailmon(t *testing.T) (*app.Runtime, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cfgPath := writeConfig(t, fmt.Sprintf("data_dir: %s\nnats:\n  embedded:\n    listen: %s\n", t.TempDir(), listen))
	cfg, err := app.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := app.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt, cfgPath
}

func TestSilenceAddListExpire(t *testing.T) {
	rt, cfgPath := startMailmon(t)
	code, out, errOut := runMain(t, "silence", "add", "-for", "2h", "-comment", "gmail seed maintenance", "-by", "ops",
		"rule=probe_missing", "provider=gmail", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(out, "silence "), ":")
	if !strings.Contains(out, "rule=probe_missing provider=gmail") || !strings.Contains(out, "(2h0m0s)") {
		t.Errorf("add printed %q", out)
	}

	// The notifier's own user reads the silence through its watch and it
	// mutes the matching alert only.
	_, js, err := rt.Connect("notifier")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := silence.Open(ctx, js)
	if err != nil {
		t.Fatalf("the notifier cannot read the silences: %v", err)
	}
	defer store.Close()
	a := &schemas.AlertRaised{Rule: "probe_missing", Severity: "warning", Status: "firing", Subject: "ip:192.0.2.10", Provider: "gmail"}
	if s, ok := store.Silenced(a, time.Now()); !ok || s.ID != id {
		t.Fatalf("alert not silenced by %s: %+v %v", id, s, ok)
	}
	a.Provider = "yahoo"
	if _, ok := store.Silenced(a, time.Now()); ok {
		t.Error("a yahoo alert is silenced by a gmail silence")
	}

	code, out, errOut = runMain(t, "silence", "list", "-config", cfgPath)
	if code != 0 || !strings.HasPrefix(out, "ID") || !strings.Contains(out, id) || !strings.Contains(out, "active") || !strings.Contains(out, "gmail seed maintenance") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = runMain(t, "silence", "expire", id, "-config", cfgPath); code != 0 || !strings.Contains(out, "expired") {
		t.Fatalf("expire: exit %d %s", code, out)
	}
	if code, out, _ = runMain(t, "silence", "list", "-config", cfgPath); code != 0 || strings.TrimSpace(out) != "no silences" {
		t.Errorf("list after expire: exit %d\n%s", code, out)
	}
	code, out, _ = runMain(t, "silence", "list", "-all", "-json", "-config", cfgPath)
	var row struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &row) != nil || row.ID != id || row.State != "expired" {
		t.Errorf("list -all -json: exit %d\n%s", code, out)
	}
	if code, _, errOut = runMain(t, "silence", "expire", id, "-config", cfgPath); code != exitFailure || !strings.Contains(errOut, "already ended") {
		t.Errorf("expire twice: exit %d %s", code, errOut)
	}
	testwaitNotSilenced(t, store, id)
}

func testwaitNotSilenced(t *testing.T, store *silence.Store, id string) {
	t.Helper()
	a := &schemas.AlertRaised{Rule: "probe_missing", Severity: "warning", Status: "firing", Subject: "ip:192.0.2.10", Provider: "gmail"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := store.Silenced(a, time.Now()); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("silence %s still mutes after its expiry", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Only silence-cli writes silences: the notifier and the other operator
// user are refused by NATS itself.
func TestOnlySilenceCLIWritesSilences(t *testing.T) {
	rt, _ := startMailmon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := silence.Silence{ID: "forged", Matchers: []silence.Matcher{{Name: "rule", Value: "*"}}, StartsAt: time.Now(),
		EndsAt: time.Now().Add(time.Hour), Comment: "mute everything", CreatedBy: "intruder"}
	for _, user := range []string{"notifier", "enforcement-cli", "check-cli", "subscriber"} {
		_, js, err := rt.Connect(user)
		if err != nil {
			t.Fatal(err)
		}
		// A refused request is never answered: each waits out its own
		// short deadline.
		uctx, ucancel := context.WithTimeout(ctx, 3*time.Second)
		kv, err := js.KeyValue(uctx, silence.Bucket)
		if err != nil {
			if user == "notifier" || user == "check-cli" {
				t.Errorf("%s cannot even read the bucket: %v", user, err)
			}
			ucancel()
			continue
		}
		if _, err := kv.Put(uctx, s.ID, s.Marshal()); err == nil {
			t.Errorf("%s wrote a silence", user)
		}
		ucancel()
	}
	_, js, err := rt.Connect("silence-cli")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, silence.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "allowed", []byte("x")); err != nil {
		t.Errorf("silence-cli cannot write: %v", err)
	}
}

func TestSilenceUsage(t *testing.T) {
	path := writeConfig(t, "{}")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"silence"}, "usage"},
		{[]string{"silence", "mute"}, "unknown subcommand"},
		// No matcher: it would mute every alert.
		{[]string{"silence", "add", "-for", "2h", "-comment", "x", "-config", path}, "at least one matcher"},
		{[]string{"silence", "add", "rule=probe_missing", "-comment", "x", "-config", path}, "-for DURATION is required"},
		{[]string{"silence", "add", "rule=probe_missing", "-for", "2h", "-config", path}, "-comment TEXT is required"},
		{[]string{"silence", "add", "zone=x", "-for", "2h", "-comment", "x", "-config", path}, "unknown label"},
		{[]string{"silence", "add", "provider=gm*il", "-for", "2h", "-comment", "x", "-config", path}, "prefix"},
		{[]string{"silence", "add", "provider=gmail", "-for", "2h", "-comment", "x", "-start", "tonight", "-config", path}, "RFC 3339"},
		{[]string{"silence", "expire", "-config", path}, "one silence ID"},
		{[]string{"silence", "list", "extra", "-config", path}, "no arguments"},
	}
	for _, tt := range tests {
		code, _, errOut := runMain(t, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %d with %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
	// Too long: refused by the store's own check before anything is written.
	_, cfgPath := startMailmon(t)
	if code, _, errOut := runMain(t, "silence", "add", "provider=gmail", "-for", "1000h", "-comment", "x", "-by", "ops", "-config", cfgPath); code != exitFailure || !strings.Contains(errOut, "at most 720h") {
		t.Errorf("-for 1000h: exit %d %s", code, errOut)
	}
}
