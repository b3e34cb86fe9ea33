package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// Against the embedded server of a running mailmon, `mailmon enforcement`
// connects as enforcement-cli with the password mailmon generated under
// data_dir, and lifts what the evaluator decided; without that password it
// cannot connect at all.
func TestEnforcementLiftAsItsOwnUserOnTheEmbeddedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	dataDir := t.TempDir()
	cfgPath := writeConfig(t, fmt.Sprintf("data_dir: %s\nnats:\n  embedded:\n    listen: %s\n", dataDir, listen))
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
	defer rt.Close()

	_, js, err := rt.Connect("complaint-evaluator")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := enforcement.Customer("acme")
	rec := enforcement.Record{
		DecisionID: enforcement.StableID(now, "test"), Action: schemas.ActionCutoff, DecisionTarget: s.Target(),
		DecisionTerm: schemas.DecisionTerm{Rule: "complaint_rate", Offence: 1, Until: now.Add(time.Hour), DurationMs: time.Hour.Milliseconds()},
		DecidedAt:    now, PolicyAction: "DEFER_IF_PERMIT", PolicyText: "4.7.1 Sending suspended for customer:acme",
		Source: schemas.Source{Worker: "complaint-evaluator", Host: "h"},
	}
	if _, err := kv.Put(ctx, s.Key(), rec.Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, bus.PublisherOptions{Worker: "complaint-evaluator"}).Publish(ctx, rec.Event()); err != nil {
		t.Fatal(err)
	}

	if code, out, errOut := runMain(t, "enforcement", "list", "-config", cfgPath); code != 0 || !strings.Contains(out, "customer:acme") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runMain(t, "enforcement", "explain", "customer:acme", "-config", cfgPath); code != 0 || !strings.Contains(out, "history:") || !strings.Contains(out, "cutoff  complaint_rate") {
		t.Fatalf("explain: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runMain(t, "enforcement", "lift", "customer:acme", "-by", "ops", "-config", cfgPath); code != 0 || !strings.Contains(out, "lifted cutoff customer:acme") {
		t.Fatalf("lift: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := kv.Get(ctx, s.Key()); err == nil {
		t.Error("the record is still in force after the lift")
	}

	// The same server, reached with another data_dir: no password, no entry.
	other := writeConfig(t, fmt.Sprintf("data_dir: %s\nnats:\n  embedded:\n    listen: %s\n", t.TempDir(), listen))
	code, _, errOut := runMain(t, "enforcement", "list", "-config", other)
	if code == 0 || !strings.Contains(errOut, "credentials") {
		t.Errorf("list without the generated password: exit %d, %s", code, errOut)
	}
}
