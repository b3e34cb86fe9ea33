package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

func TestEnforcementListExplainLift(t *testing.T) {
	ns, _, js := natstest.Start(t)
	ctx := context.Background()
	top, _ := pipelines.Default()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
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
		DecisionTerm: schemas.DecisionTerm{Rule: "complaint_rate", Offence: 2, Until: now.Add(time.Hour), DurationMs: time.Hour.Milliseconds()},
		DecidedAt:    now, PolicyAction: "DEFER_IF_PERMIT", PolicyText: "4.7.1 Sending suspended for customer:acme",
		Summary: "customer:acme cut off for 1h", Source: schemas.Source{Worker: "complaint-evaluator", Host: "h"},
		Evidence: schemas.DecisionEvidence{WindowMs: 3600000, Complaints: 4, Delivered: 1000, Rate: 0.004, Threshold: 0.003, SampleComplaintIDs: []string{"c-1", "c-2"}},
	}
	if _, err := kv.Put(ctx, s.Key(), rec.Marshal()); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})
	if err := pub.Publish(ctx, rec.Event()); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "nats:\n  url: "+ns.ClientURL()+"\n")

	code, out, errOut := runMain(t, "enforcement", "list", "-config", cfg)
	if code != 0 || !strings.Contains(out, "customer:acme") || !strings.Contains(out, "cutoff") || !strings.Contains(out, "complaint_rate") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMain(t, "enforcement", "explain", "customer:acme", "-config", cfg)
	for _, want := range []string{"in force: cutoff", "4 complaints / 1000 delivered", "c-1, c-2", "history:", "cutoff  complaint_rate offence 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q (exit %d):\n%s%s", want, code, out, errOut)
		}
	}
	code, out, errOut = runMain(t, "enforcement", "lift", "customer:acme", "-by", "ops", "-note", "false positive", "-config", cfg)
	if code != 0 || !strings.Contains(out, "lifted cutoff customer:acme") {
		t.Fatalf("lift: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runMain(t, "enforcement", "list", "-config", cfg); code != 0 || !strings.Contains(out, "no decisions in force") {
		t.Errorf("list after lift: %s", out)
	}
	code, out, _ = runMain(t, "enforcement", "explain", "customer:acme", "-config", cfg)
	if !strings.Contains(out, "in force: nothing") || !strings.Contains(out, "lift    cutoff") || !strings.Contains(out, "by ops: false positive") {
		t.Errorf("explain after lift:\n%s", out)
	}
	if code, _, errOut := runMain(t, "enforcement", "lift", "customer:acme", "-by", "ops", "-config", cfg); code == 0 || !strings.Contains(errOut, "no decision in force") {
		t.Errorf("second lift: exit %d %s", code, errOut)
	}
	if code, _, _ := runMain(t, "enforcement", "explain", "nonsense", "-config", cfg); code != exitUsage {
		t.Errorf("bad subject: exit %d", code)
	}
}
