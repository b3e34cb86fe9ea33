package probesender

import (
	"context"
	"testing"
	"time"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// Run sends a round every interval, publishes a valid probe.sent for every
// probe, and returns nil when stopped.
func TestRunSendsRoundsAndPublishes(t *testing.T) {
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	mx := startMX(t, nil, nil)
	src := Source{Name: "r", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone}
	cfg := testConfig([]Source{src}, []Target{seed, {Name: "outlook-1", Provider: "outlook", Address: "seed@outlook.test"}})
	cfg.Interval = config.Duration(300 * time.Millisecond)
	cfg.Jitter = config.Duration(100 * time.Millisecond)
	s, err := New(cfg, testSettings(js))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(mx.got()) < 6 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if n := len(mx.got()); n < 6 {
		t.Fatalf("%d probes in 10 s, want at least 3 rounds of 2", n)
	}
	st, err := js.Stream(ctx, "PROBE")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A probe cut off by the stop between the relay storing it and its
	// reply has no event; every other one has exactly one.
	if n := int(info.State.Msgs); n > len(mx.got()) || n < len(mx.got())-1 {
		t.Errorf("%d probe.sent events for %d probes", n, len(mx.got()))
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := schemas.Decode(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Validate(ev); err != nil {
		t.Fatal(err)
	}
	if sent := ev.(*schemas.ProbeSent); sent.Outcome != schemas.OutcomeAccepted || sent.Source.Worker != WorkerName {
		t.Errorf("%+v", sent)
	}
}
