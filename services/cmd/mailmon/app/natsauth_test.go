package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// natsOnlyConfig is the local default without ClickHouse, its embedded
// NATS listening on a free loopback port.
func natsOnlyConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.NATS.Embedded.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.HTTP.Addr = "" // the default port may be held by a mailmon run elsewhere
	cfg.PolicyService.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startRuntime(t *testing.T, cfg Config, log io.Writer) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// The embedded server started by the runtime accepts no client without a
// user and password: not on its listener, not in-process.
func TestEmbeddedNATSRefusesAnonymousClients(t *testing.T) {
	cfg := natsOnlyConfig(t)
	rt := startRuntime(t, cfg, io.Discard)
	inProcess := make(chan error, 1)
	go func() {
		// Refused in-process, the client sees it only when the server's
		// write deadline ends the pipe (10 s): wait for it meanwhile.
		nc, err := nats.Connect("", nats.InProcessServer(rt.embedded), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
		}
		inProcess <- err
	}()
	nc, err := nats.Connect("nats://"+cfg.NATS.Embedded.Listen, nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Error("an anonymous client connected to the embedded server's listener")
	} else if !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("anonymous client: %v, want an authorization violation", err)
	}
	nc, err = nats.Connect("nats://"+cfg.NATS.Embedded.Listen, nats.UserInfo(pipelines.UserAdmin, "guessed"), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Error("the admin user connected with a guessed password")
	}
	if err := <-inProcess; err == nil {
		t.Error("an anonymous client connected in-process")
	}
}

// The passwords are generated once, kept under data_dir readable by the
// owner only, reused on the next start, and never logged.
func TestEmbeddedNATSPasswordsAreGeneratedPrivateAndReused(t *testing.T) {
	cfg := natsOnlyConfig(t)
	var log bytes.Buffer
	rt := startRuntime(t, cfg, &log)
	dir := cfg.EmbeddedCredentialsDir()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %#o, want 0700", dir, st.Mode().Perm())
	}
	first := map[string]string{}
	owner := map[string]string{}
	for _, user := range rt.access.Names() {
		path := filepath.Join(dir, user)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("user %s: %v", user, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", path, st.Mode().Perm())
		}
		pw, err := readEmbeddedPassword(dir, user)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log.String(), pw) {
			t.Errorf("the password of %s is in the log", user)
		}
		if other, dup := owner[pw]; dup {
			t.Errorf("users %s and %s share a password", other, user)
		}
		owner[pw] = user
		first[user] = pw
	}
	rt.Close()

	rt = startRuntime(t, cfg, io.Discard)
	for user, pw := range first {
		if again, err := readEmbeddedPassword(dir, user); err != nil || again != pw {
			t.Errorf("user %s: password changed across restarts (err %v)", user, err)
		}
	}
	// The operator commands find the running server's passwords the same
	// way, through its listener.
	nc, err := DialNATS(cfg, pipelines.UserEnforcementCLI)
	if err != nil {
		t.Fatalf("operator command cannot connect: %v", err)
	}
	nc.Close()

	// A password file others may read is refused rather than trusted.
	if err := os.Chmod(filepath.Join(dir, "notifier"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if rt, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), StartOptions{}); err == nil {
		rt.Close()
		t.Fatal("started with a world-readable password file")
	} else if !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("error %v, want one about the file being readable by others", err)
	}
}

// Each user can do what its worker needs and nothing it may not: the
// policy service cannot write the enforcement bucket, the sink cannot
// publish complaints, the subscriber cannot publish or write KV or pull
// from mailmon's durables; the evaluator can write enforcement, the sink
// can consume.
func TestWorkerUsersCanDoOnlyWhatTheyNeed(t *testing.T) {
	cfg := natsOnlyConfig(t)
	rt := startRuntime(t, cfg, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	connect := func(user string) jetstream.JetStream {
		t.Helper()
		_, js, err := rt.Connect(user)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		return js
	}
	kvOf := func(js jetstream.JetStream) jetstream.KeyValue {
		t.Helper()
		kv, err := js.KeyValue(ctx, enforcement.Bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", enforcement.Bucket, err)
		}
		return kv
	}
	violations := func(user string) float64 {
		var m dto.Metric
		if err := rt.permissionViolations.WithLabelValues(user).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	// denied runs op, which must fail, and checks the server refused it.
	denied := func(user, what string, op func(ctx context.Context) error) {
		t.Helper()
		before := violations(user)
		opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := op(opCtx); err == nil {
			t.Errorf("%s could %s", user, what)
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for violations(user) == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if violations(user) == before {
			t.Errorf("%s: %s failed, but not as a permissions violation", user, what)
		}
	}
	adminKV := kvOf(rt.JetStream)

	// policy-service reads enforcement and may not write it.
	policyKV := kvOf(connect("policy-service"))
	if _, err := adminKV.Put(ctx, enforcement.Customer("known").Key(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := policyKV.Get(ctx, enforcement.Customer("known").Key()); err != nil {
		t.Errorf("policy-service cannot read enforcement: %v", err)
	}
	denied("policy-service", "put into KV enforcement", func(ctx context.Context) error {
		_, err := policyKV.Put(ctx, enforcement.Customer("victim").Key(), []byte(`{"action":"OK relay me"}`))
		return err
	})
	if _, err := adminKV.Get(ctx, enforcement.Customer("victim").Key()); err == nil {
		t.Error("the policy service's write reached the enforcement bucket")
	}

	// complaint-evaluator writes enforcement.
	evalKV := kvOf(connect("complaint-evaluator"))
	if _, err := evalKV.Put(ctx, enforcement.Customer("acme").Key(), []byte("{}")); err != nil {
		t.Errorf("complaint-evaluator cannot put into enforcement: %v", err)
	}

	// fbl-ingester publishes a complaint; the sink cannot, but consumes it.
	complaint := &schemas.ComplaintReceived{}
	if err := schemas.Stamp(complaint, schemas.Source{Worker: "fbl-ingester", Host: "h"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(connect("fbl-ingester"), bus.PublisherOptions{}).Publish(ctx, complaint); err != nil {
		t.Fatalf("fbl-ingester cannot publish a complaint: %v", err)
	}
	sinkJS := connect("clickhouse-sink")
	denied("clickhouse-sink", "publish "+schemas.SubjectComplaintReceived, func(ctx context.Context) error {
		_, err := sinkJS.Publish(ctx, schemas.SubjectComplaintReceived, []byte(`{"forged":true}`))
		return err
	})
	cons, err := sinkJS.Consumer(ctx, "COMPLAINT", "clickhouse-sink")
	if err != nil {
		t.Fatalf("clickhouse-sink cannot look up its consumer: %v", err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("clickhouse-sink cannot pull: %v", err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Headers().Get(nats.MsgIdHdr))
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("clickhouse-sink cannot ack: %v", err)
		}
	}
	if !slices.Equal(got, []string{complaint.ID}) {
		t.Errorf("clickhouse-sink pulled %v, want the one complaint %s", got, complaint.ID)
	}
	denied("clickhouse-sink", "pull from the notifier's durable", func(ctx context.Context) error {
		_, err := sinkJS.Consumer(ctx, "ALERT", "notifier")
		return err
	})

	// subscriber: its own durable on an event stream, nothing else.
	subJS := connect(pipelines.UserSubscriber)
	subCons, err := subJS.CreateOrUpdateConsumer(ctx, "COMPLAINT", jetstream.ConsumerConfig{
		Durable: "sub-test", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "mailmon.complaint.>",
	})
	if err != nil {
		t.Fatalf("subscriber cannot create its own durable: %v", err)
	}
	msg, err := subCons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("subscriber cannot pull from its durable: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Errorf("subscriber cannot ack: %v", err)
	}
	alert := &schemas.AlertRaised{Rule: "forged", Severity: "critical", Subject: enforcement.Customer("victim").Key(), Summary: "x", DedupeKey: "x"}
	if err := schemas.Stamp(alert, schemas.Source{Worker: "subscriber", Host: "h"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	denied(pipelines.UserSubscriber, "publish an alert", func(ctx context.Context) error {
		return bus.NewPublisher(subJS, bus.PublisherOptions{AckTimeout: time.Second}).Publish(ctx, alert)
	})
	denied(pipelines.UserSubscriber, "look up the enforcement bucket", func(ctx context.Context) error {
		_, err := subJS.KeyValue(ctx, enforcement.Bucket)
		return err
	})
	denied(pipelines.UserSubscriber, "put into KV enforcement", func(ctx context.Context) error {
		_, err := subJS.Publish(ctx, "$KV.enforcement."+enforcement.Customer("victim").Key(), []byte("{}"))
		return err
	})
	denied(pipelines.UserSubscriber, "pull from the sink's durable", func(ctx context.Context) error {
		_, err := subJS.Consumer(ctx, "COMPLAINT", "clickhouse-sink")
		return err
	})
	denied(pipelines.UserSubscriber, "delete the notifier's durable", func(ctx context.Context) error {
		return subJS.DeleteConsumer(ctx, "ALERT", "notifier")
	})
	denied(pipelines.UserSubscriber, "read the dead letters", func(ctx context.Context) error {
		_, err := subJS.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{})
		return err
	})
	if _, err := rt.JetStream.Consumer(ctx, "ALERT", "notifier"); err != nil {
		t.Errorf("the notifier's durable is gone: %v", err)
	}
	if _, err := adminKV.Get(ctx, enforcement.Customer("victim").Key()); err == nil {
		t.Error("a denied write reached the enforcement bucket")
	}

	// No user reads another's replies.
	nc, _, err := rt.Connect("notifier")
	if err != nil {
		t.Fatal(err)
	}
	before := violations("notifier")
	if _, err := nc.SubscribeSync(pipelines.InboxPrefix("complaint-evaluator") + ".>"); err == nil {
		_ = nc.Flush()
	}
	deadline := time.Now().Add(5 * time.Second)
	for violations("notifier") == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if violations("notifier") == before {
		t.Error("the notifier subscribed to the evaluator's inbox")
	}
}

// `mailmon run` with every worker, each on its own user: all become ready,
// every durable consumer drains an example of every event kind, and the
// server refuses nobody anything, so each worker's grant covers what it
// does.
func TestRunEveryWorkerWithItsOwnUser(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	var log bytes.Buffer // slog's handler serialises the writes
	defer func() {
		if t.Failed() {
			t.Logf("warnings and errors logged:\n%s", log.String())
		}
	}()
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn})), RunOptions{Workers: Workers(), ClickHouse: true, Ready: func(rt *Runtime) {
		defer cancel()
		ready = true
		waitFor(t, ctx, "every worker ready", func() string {
			if failed := rt.Health.Ready(ctx); len(failed) > 0 {
				return fmt.Sprint(failed)
			}
			return ""
		})
		for _, k := range schemas.Kinds() {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "schemas", "testdata", "events", k.Type+".json"))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := schemas.Decode(raw)
			if err != nil {
				t.Fatalf("%s: %v", k.Type, err)
			}
			if err := bus.NewPublisher(rt.JetStream, bus.PublisherOptions{}).Publish(ctx, ev); err != nil {
				t.Fatalf("publish %s: %v", k.Type, err)
			}
		}
		waitFor(t, ctx, "every durable consumer drained", func() string {
			for _, c := range top.Consumers {
				cons, err := rt.JetStream.Consumer(ctx, c.Stream, c.Durable)
				if err != nil {
					return err.Error()
				}
				info, err := cons.Info(ctx)
				if err != nil {
					return err.Error()
				}
				if info.NumPending > 0 || info.NumAckPending > 0 {
					return fmt.Sprintf("%s/%s: %d pending, %d unacked", c.Stream, c.Durable, info.NumPending, info.NumAckPending)
				}
			}
			return ""
		})
		for _, d := range Workers() {
			var m dto.Metric
			if err := rt.permissionViolations.WithLabelValues(d.Name).Write(&m); err != nil {
				t.Fatal(err)
			}
			if n := m.GetCounter().GetValue(); n > 0 {
				t.Errorf("%s: %v permission violations: its grant in pipelines/access.yaml lacks something it does", d.Name, n)
			}
		}
	}})
	if !ready {
		t.Fatalf("mailmon never became ready: %v", err)
	}
	if err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// waitFor polls check (empty means done) until ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, check func() string) {
	t.Helper()
	last := ""
	for {
		if last = check(); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still %s", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestNATSUsersConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "sink")
	if err := os.WriteFile(secretFile, []byte("sink-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	external := NATSConfig{URL: "nats://nats-1.example.net:4222", Replicas: 3, ConnectTimeout: DefaultConfig().NATS.ConnectTimeout}

	t.Run("validation", func(t *testing.T) {
		tests := []struct {
			name string
			edit func(*NATSConfig)
			want string
		}{
			{"unknown user", func(c *NATSConfig) { c.Users = map[string]NATSUser{"mailmon": {Password: "x"}} }, "users.mailmon: unknown user"},
			{"two secrets", func(c *NATSConfig) {
				c.Users = map[string]NATSUser{"notifier": {Password: "x", PasswordFile: "/f"}}
			}, "users.notifier: set exactly one"},
			{"no secret", func(c *NATSConfig) { c.Users = map[string]NATSUser{"notifier": {User: "n"}} }, "users.notifier: set exactly one"},
			{"embedded", func(c *NATSConfig) {
				c.URL = ""
				c.Users = map[string]NATSUser{"notifier": {Password: "x"}}
			}, "only for an external server"},
		}
		for _, tt := range tests {
			c := external
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
			}
		}
		c := external
		c.Users = map[string]NATSUser{"clickhouse-sink": {PasswordFile: secretFile}, "admin": {Password: "p"}}
		if err := c.Validate(); err != nil {
			t.Errorf("valid users refused: %v", err)
		}
	})

	t.Run("resolution", func(t *testing.T) {
		c := external
		if opt, ok, err := c.natsAuth("notifier"); err != nil || !ok || opt != nil {
			t.Errorf("no users, no shared credentials: %v %v %v, want an anonymous connection", opt != nil, ok, err)
		}
		c.Users = map[string]NATSUser{"clickhouse-sink": {PasswordFile: secretFile}}
		if _, ok, err := c.natsAuth("notifier"); ok || err != nil {
			t.Errorf("users set, notifier absent and no shared user: ok %v err %v, want no credentials", ok, err)
		}
		opts := nats.GetDefaultOptions()
		opt, ok, err := c.natsAuth("clickhouse-sink")
		if err != nil || !ok {
			t.Fatalf("clickhouse-sink: %v %v", ok, err)
		}
		if err := opt(&opts); err != nil || opts.User != "clickhouse-sink" || opts.Password != "sink-password" {
			t.Errorf("clickhouse-sink connects as %q/%q, want its name and the file's password without the newline", opts.User, opts.Password)
		}
		c.User, c.Password = "mailmon", "shared"
		opts = nats.GetDefaultOptions()
		if opt, ok, err := c.natsAuth("notifier"); err != nil || !ok || opt(&opts) != nil || opts.User != "mailmon" {
			t.Errorf("notifier does not fall back to the shared user: %q", opts.User)
		}
	})
}

// Against an external server with per-worker users (the cluster example's
// shape), a process given only the notifier's password file runs the
// notifier as that user, and skips the topology apply it has no admin for.
func TestExternalServerPerWorkerUsers(t *testing.T) {
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	access, err := pipelines.DefaultAccess()
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	for _, name := range access.Names() {
		passwords[name] = name + "-password-0123456789-0123456789"
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: embeddedUsers(access, top, passwords)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	admin, err := nats.Connect(ns.ClientURL(), nats.UserInfo(pipelines.UserAdmin, passwords[pipelines.UserAdmin]))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adminJS, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := top.Apply(ctx, adminJS, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	notifierFile := filepath.Join(dir, "notifier")
	if err := os.WriteFile(notifierFile, []byte(passwords["notifier"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.HTTP.Addr = ""
	cfg.NATS.URL = ns.ClientURL()
	cfg.NATS.Users = map[string]NATSUser{
		"notifier":          {PasswordFile: notifierFile},
		pipelines.UserAdmin: {PasswordFile: filepath.Join(dir, "admin-not-given-to-this-process")},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	defs, err := SelectWorkers("notifier")
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), RunOptions{Workers: defs, Ready: func(rt *Runtime) {
		defer cancel()
		ready = true
		if rt.JetStream != nil {
			t.Error("the runtime has an admin connection without the admin's password")
		}
		alert := &schemas.AlertRaised{Rule: "test", Severity: "info", Subject: "ip:192.0.2.1", Summary: "s", DedupeKey: "k"}
		if err := schemas.Stamp(alert, schemas.Source{Worker: "test", Host: "h"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := bus.NewPublisher(adminJS, bus.PublisherOptions{}).Publish(ctx, alert); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the notifier consumed the alert", func() string {
			info, err := adminJS.Consumer(ctx, "ALERT", "notifier")
			if err != nil {
				return err.Error()
			}
			if st := info.CachedInfo(); st.NumPending > 0 || st.NumAckPending > 0 || st.Delivered.Consumer == 0 {
				return fmt.Sprintf("%d pending, %d unacked, %d delivered", st.NumPending, st.NumAckPending, st.Delivered.Consumer)
			}
			return ""
		})
		var m dto.Metric
		if err := rt.permissionViolations.WithLabelValues("notifier").Write(&m); err != nil || m.GetCounter().GetValue() != 0 {
			t.Errorf("notifier: %v permission violations (%v)", m.GetCounter().GetValue(), err)
		}
	}})
	if !ready || err != nil {
		t.Fatalf("ready %v, Run: %v", ready, err)
	}
	// The server notices a closed connection shortly after the client.
	deadline := time.Now().Add(10 * time.Second)
	for ns.NumClients() > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := ns.NumClients(); n > 1 {
		t.Errorf("%d clients left connected after Run, want only the test's admin", n)
	}
}

// The cluster example gives every worker its own user, and nothing else.
func TestClusterExampleConfigHasAUserPerWorker(t *testing.T) {
	t.Setenv("MAILMON_CLICKHOUSE_PASSWORD", "test")
	t.Setenv("MAILMON_TRACKING_KEY", "test-key-0123456789-0123456789-0123456789")
	cfg, err := Load("../../../../deploy/cluster/mailmon.cluster.yaml")
	if err != nil {
		t.Fatalf("cluster example does not load: %v", err)
	}
	n := cfg.NATS
	if n.User != "" || n.Password != "" || n.Token != "" || n.CredsFile != "" {
		t.Error("the cluster example has a shared NATS user; every worker should have its own")
	}
	for _, d := range Workers() {
		if _, ok := n.Users[d.Name]; !ok {
			t.Errorf("worker %s has no nats.users entry", d.Name)
		}
	}
	for _, name := range []string{pipelines.UserAdmin, pipelines.UserEnforcementCLI} {
		if _, ok := n.Users[name]; !ok {
			t.Errorf("user %s has no nats.users entry", name)
		}
	}
}

// The README's example subscriber, as another service on the machine would
// run it: the subscriber user over the listener with its generated
// password, its own inbox prefix, and a durable of its own.
func TestSubscriberExampleFromTheREADME(t *testing.T) {
	cfg := natsOnlyConfig(t)
	rt := startRuntime(t, cfg, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, fbl, err := rt.Connect("fbl-ingester")
	if err != nil {
		t.Fatal(err)
	}
	complaint := &schemas.ComplaintReceived{}
	if err := schemas.Stamp(complaint, schemas.Source{Worker: "fbl-ingester", Host: "h"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(fbl, bus.PublisherOptions{}).Publish(ctx, complaint); err != nil {
		t.Fatal(err)
	}

	// From here on, the README's lines.
	pw, err := os.ReadFile(filepath.Join(cfg.DataDir, "nats", "credentials", "subscriber"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+cfg.NATS.Embedded.Listen,
		nats.UserInfo("subscriber", strings.TrimSpace(string(pw))),
		nats.CustomInboxPrefix("_INBOX.subscriber")) // the only inbox it may read
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "COMPLAINT", jetstream.ConsumerConfig{
		Durable:       "crm-complaints", // any name but mailmon's own durables
		FilterSubject: "mailmon.complaint.received",
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := schemas.Decode(m.Data())
		if err != nil {
			m.Term() // not an event we can read: never redeliver it
			return
		}
		got <- ev.(*schemas.ComplaintReceived).ID
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	select {
	case id := <-got:
		if id != complaint.ID {
			t.Errorf("subscriber got complaint %s, want %s", id, complaint.ID)
		}
	case <-ctx.Done():
		t.Fatal("the subscriber received nothing")
	}
}

// Every worker in this binary has a worker user in pipelines/access.yaml,
// and every worker user is a worker in this binary.
func TestEveryWorkerHasANATSUser(t *testing.T) {
	access, err := pipelines.DefaultAccess()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range Workers() {
		names = append(names, d.Name)
		if u, ok := access.User(d.Name); !ok || u.Role != pipelines.RoleWorker {
			t.Errorf("worker %s has no worker user in pipelines/access.yaml", d.Name)
		}
	}
	for _, u := range access.Users {
		if u.Role == pipelines.RoleWorker && !slices.Contains(names, u.Name) {
			t.Errorf("pipelines/access.yaml declares worker %s, which this binary does not have", u.Name)
		}
	}
}

// nats-server does not check a push consumer's deliver subject against its
// creator's publish permissions (nats-io/nats-server#8274), so whoever may
// create consumers can aim a stream's messages at any subject. Streams do
// not store such deliveries: the subscriber cannot write the enforcement
// bucket or an event stream that way. (Core subscribers do receive them;
// other users' inboxes are safe only as long as their random tokens are
// unknown, which no user can subscribe to learn.) A fixed server refuses
// the consumers instead.
func TestSubscriberCannotWriteThroughAPushConsumer(t *testing.T) {
	cfg := natsOnlyConfig(t)
	rt := startRuntime(t, cfg, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, fbl, err := rt.Connect("fbl-ingester")
	if err != nil {
		t.Fatal(err)
	}
	complaint := &schemas.ComplaintReceived{}
	if err := schemas.Stamp(complaint, schemas.Source{Worker: "fbl-ingester", Host: "h"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(fbl, bus.PublisherOptions{}).Publish(ctx, complaint); err != nil {
		t.Fatal(err)
	}
	_, sub, err := rt.Connect(pipelines.UserSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	key := enforcement.Customer("victim").Key()
	for i, target := range []string{"$KV." + enforcement.Bucket + "." + key, schemas.SubjectAlertRaised} {
		durable := fmt.Sprintf("aimed-%d", i)
		_, err := sub.CreateOrUpdateConsumer(ctx, "COMPLAINT", jetstream.ConsumerConfig{
			Durable: durable, DeliverSubject: target, AckPolicy: jetstream.AckNonePolicy,
		})
		if err != nil {
			t.Logf("push consumer to %s refused: %v", target, err) // what a fixed server would do
			continue
		}
		// jetstream.Consumer refuses push consumers; the stream lists them.
		info := func() *jetstream.ConsumerInfo {
			st, err := rt.JetStream.Stream(ctx, "COMPLAINT")
			if err != nil {
				t.Fatal(err)
			}
			list := st.ListConsumers(ctx)
			var found *jetstream.ConsumerInfo
			for ci := range list.Info() {
				if ci.Name == durable {
					found = ci
				}
			}
			if list.Err() != nil || found == nil {
				t.Fatalf("consumer %s: %v", durable, list.Err())
			}
			return found
		}
		if !info().PushBound {
			// A stream's own subscription is no interest to a consumer:
			// with nobody else listening, nothing is delivered at all.
			continue
		}
		waitFor(t, ctx, "the push consumer delivered the complaint", func() string {
			if info().Delivered.Stream < 1 {
				return "nothing delivered"
			}
			return ""
		})
	}
	kv, err := rt.JetStream.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, key); err == nil {
		t.Errorf("a push consumer wrote the enforcement bucket: %q", e.Value())
	}
	st, err := rt.JetStream.Stream(ctx, "ALERT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("a push consumer wrote %d messages into the ALERT stream", info.State.Msgs)
	}
}
