package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/policyservice"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A `mailmon policy-service` process must start while an external NATS is
// down: Postfix would otherwise tempfail every message (its default
// action) until NATS is back. It enforces its last snapshot, reports not
// ready, and turns ready once NATS answers.
func TestPolicyServiceProcessStartsWithNATSDown(t *testing.T) {
	natsPort := freePort(t)
	natsDir := t.TempDir()
	startNATS := func() *server.Server {
		ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: natsDir, Port: natsPort})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = ""
	cfg.NATS.URL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	cfg.NATS.User = "mailmon"
	cfg.NATS.Password = config.Secret("a-shared-password-for-this-test-only")
	cfg.NATS.ConnectTimeout = config.Duration(time.Second)
	policyAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.PolicyService.Listen = policyAddr
	cfg.PolicyService.AnswerTimeout = config.Duration(200 * time.Millisecond)
	cfg.PolicyService.Customers.SenderDomains = map[string]string{"a.example": "cust-a"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	defs, err := SelectWorkers(policyservice.WorkerName)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	snapshot := filepath.Join(cfg.DataDir, "policy-service", "enforcement.json")

	// First run, NATS up: a cut-off of cust-a reaches the snapshot.
	ns := startNATS()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = Run(ctx, cfg, logger, RunOptions{Workers: defs, Ready: func(rt *Runtime) {
		defer cancel()
		kv, err := rt.JetStream.KeyValue(ctx, enforcement.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		s := enforcement.Customer("cust-a")
		r := enforcement.Record{
			DecisionID: schemas.NewID(), Action: schemas.ActionCutoff, DecisionTarget: s.Target(),
			DecisionTerm: schemas.DecisionTerm{Rule: "complaint_rate", Offence: 1, Until: time.Now().Add(time.Hour)},
			DecidedAt:    time.Now(), PolicyAction: "REJECT", PolicyText: "5.7.1 Sending suspended for " + s.String(),
		}
		if _, err := kv.Put(ctx, s.Key(), r.Marshal()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the snapshot holds cust-a", func() string {
			data, err := os.ReadFile(snapshot)
			if err != nil || !strings.Contains(string(data), "cust-a") {
				return fmt.Sprintf("snapshot: %v", err)
			}
			return ""
		})
	}})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	// Second run, NATS down.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := false
	err = Run(ctx, cfg, logger, RunOptions{Workers: defs, Ready: func(rt *Runtime) {
		defer cancel()
		started = true
		if got := askPolicy(t, policyAddr, "someone@a.example"); !strings.HasPrefix(got, "REJECT") {
			t.Errorf("cust-a with NATS down: %q, want the snapshot's REJECT", got)
		}
		if problems := rt.Health.Ready(ctx); len(problems) == 0 {
			t.Error("ready while NATS is down")
		}
		ns := startNATS()
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		waitFor(t, ctx, "ready once NATS is up", func() string {
			if problems := rt.Health.Ready(ctx); len(problems) > 0 {
				return fmt.Sprint(problems)
			}
			return ""
		})
		// Live again: a lift in the bucket applies.
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(ctx, enforcement.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(ctx, enforcement.Customer("cust-a").Key()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the lift applies", func() string {
			if got := askPolicy(t, policyAddr, "someone@a.example"); got != "DUNNO" {
				return got
			}
			return ""
		})
	}})
	if !started {
		t.Fatalf("the policy service did not start with NATS down: %v", err)
	}
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// askPolicy sends one Postfix policy request and returns the action.
func askPolicy(t *testing.T, addr, sender string) string {
	t.Helper()
	// The runtime is ready before each worker has opened its listener.
	var c net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.10\nsender=%s\nrecipient=r@gmail.com\n\n", sender)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "action=")
}
