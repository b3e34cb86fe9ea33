package policyservice

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/obs"
)

// snapshotKeys reads the snapshot file's keys (nil when there is none).
func snapshotKeys(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var f snapshotFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var keys []string
	for _, r := range f.Records {
		keys = append(keys, r.Key)
	}
	return keys
}

// freePort returns a loopback port nothing listens on (for a moment).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The service starts while NATS is unreachable: it enforces the
// snapshot's records until their own until, says not ready, and once NATS
// is there it switches to the live bucket, applies live changes and
// rewrites the snapshot.
func TestStartsFromSnapshotWithoutNATS(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "policy-service", "enforcement.json")
	clk := newClock()
	withSnapshot := func(c *Config) { c.SnapshotFile = snap }

	// A first run with NATS writes the snapshot.
	first := start(t, withSnapshot, clk.now)
	<-first.srv.State().Synced()
	first.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, clk.now().Add(time.Hour)))
	first.put(t, record(enforcement.Customer("cust-b"), schemas.ActionCutoff, clk.now().Add(10*time.Minute)))
	eventually(t, "snapshot written", func() bool { return len(snapshotKeys(t, snap)) == 2 })
	st, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", st.Mode().Perm())
	}

	// A second service starts with NATS down (nothing on the port yet).
	port := freePort(t)
	nc, err := nats.Connect(
		"nats://127.0.0.1:"+strconv.Itoa(port), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	health := obs.NewHealth()
	set := testSettings(js)
	set.Health = health
	cfg := first.srv.cfg
	cfg.AnswerTimeout = config.Duration(20 * time.Millisecond)
	set.Now = clk.now
	srv, err := New(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-srv.Ready()
	c := dial(t, srv.Addr())
	a, b := map[string]string{"sender": "x@a.example"}, map[string]string{"sender": "x@b.example"}
	asked := time.Now()
	if got := c.ask(t, a); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("cust-a from the snapshot without NATS: %q", got)
	}
	t.Logf("first answer without NATS, from the snapshot, in %s", time.Since(asked))
	if got := c.ask(t, b); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("cust-b from the snapshot without NATS: %q", got)
	}
	if err := health.Ready(ctx)[WorkerName]; err == nil {
		t.Error("ready while answering from the snapshot")
	}
	// Past stale_after and past cust-b's until: cust-a is still enforced
	// (on_stale enforce_unexpired), cust-b no longer.
	clk.advance(20 * time.Minute)
	if got := c.ask(t, a); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("cust-a, stale: %q", got)
	}
	if got := c.ask(t, b); got != "DUNNO" {
		t.Errorf("cust-b after its until: %q", got)
	}

	// NATS comes up on that port, with a bucket that holds only cust-c.
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	admin, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adminJS, _ := jetstream.New(admin)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, adminJS, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := adminJS.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	live := &env{js: adminJS, kv: kv}
	live.put(t, record(enforcement.Customer("cust-c"), schemas.ActionCutoff, clk.now().Add(time.Hour)))

	eventually(t, "ready once the bucket is watched", func() bool { return health.Ready(ctx)[WorkerName] == nil })
	// The watch may have loaded the bucket between its creation and the
	// put: the record then arrives as an update, a moment after ready.
	cc := map[string]string{"sasl_username": "cust-c"}
	eventually(t, "cust-c enforced from the live bucket", func() bool { return strings.HasPrefix(c.ask(t, cc), "DEFER_IF_PERMIT") })
	if got := c.ask(t, a); got != "DUNNO" {
		t.Errorf("cust-a, absent from the live bucket: %q", got)
	}
	eventually(t, "snapshot rewritten from the live bucket", func() bool {
		return slices.Equal(snapshotKeys(t, snap), []string{enforcement.Customer("cust-c").Key()})
	})
	// A live change applies.
	if err := kv.Delete(ctx, enforcement.Customer("cust-c").Key()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "live delete applied", func() bool { return c.ask(t, cc) == "DUNNO" })
	eventually(t, "snapshot follows the delete", func() bool { return len(snapshotKeys(t, snap)) == 0 })
}

// What a stale state answers is configured: fail_open answers DUNNO,
// enforce_unexpired keeps each record until its own until. Both raise the
// state alert.
func TestOnStale(t *testing.T) {
	for _, tc := range []struct {
		onStale       string
		wantA         string // the record with a long until
		wantRefused   bool
		wantCondition stateCondition
	}{
		{OnStaleFailOpen, "DUNNO", true, conditionFailOpen},
		{OnStaleEnforceUnexpired, "DEFER_IF_PERMIT 4.7.1 Sending suspended for customer:cust-a", false, conditionStale},
	} {
		t.Run(tc.onStale, func(t *testing.T) {
			clk := newClock()
			e := start(t, func(c *Config) {
				c.OnStale = tc.onStale
				c.StaleAfter = config.Duration(time.Minute)
			}, clk.now)
			<-e.srv.State().Synced()
			e.put(t, record(enforcement.Customer("cust-a"), schemas.ActionCutoff, clk.now().Add(time.Hour)))
			e.put(t, record(enforcement.Customer("cust-b"), schemas.ActionCutoff, clk.now().Add(5*time.Minute)))
			eventually(t, "decisions loaded", func() bool { return e.srv.State().Len() == 2 })
			c := dial(t, e.srv.Addr())
			a, b := map[string]string{"sender": "x@a.example"}, map[string]string{"sender": "x@b.example"}

			e.ns.Shutdown()
			eventually(t, "the state is no longer live", func() bool {
				return e.srv.State().Mode(clk.now(), time.Minute) != ModeLive
			})
			if got := c.ask(t, a); got == "DUNNO" {
				t.Errorf("within stale_after: %q", got)
			}
			clk.advance(10 * time.Minute)
			if got := c.ask(t, a); got != tc.wantA {
				t.Errorf("stale, until not passed: %q, want %q", got, tc.wantA)
			}
			if got := c.ask(t, b); got != "DUNNO" {
				t.Errorf("stale, until passed: %q", got)
			}
			if got := metricValue(t, e.srv, "mailmon_policy_service_fail_open_total") > 0; got != tc.wantRefused {
				t.Errorf("fail_open_total > 0: %v, want %v", got, tc.wantRefused)
			}
			// The state alert says which: failing open, or enforcing a stale
			// copy (its publish waits for NATS).
			if cond := stateCondition(e.srv.conditionNow.Load()); cond != tc.wantCondition {
				t.Errorf("state alert condition %d, want %d", cond, tc.wantCondition)
			}
		})
	}
}

// The snapshot is written whole or not at all, owner-only, within its
// size bound, and read back only when nobody else could have written it.
func TestSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "enforcement.json")
	good := record(enforcement.Customer("acme"), schemas.ActionCutoff, time.Now().Add(time.Hour))
	expired := record(enforcement.Customer("old"), schemas.ActionCutoff, time.Now().Add(-time.Hour))
	entries := []*entry{
		{key: good.SubjectOf().Key(), revision: 7, value: good.Marshal(), rec: good},
		{key: expired.SubjectOf().Key(), revision: 8, value: expired.Marshal(), rec: expired},
	}
	data, err := encodeSnapshot(entries, time.Now(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(path, data); err != nil {
		t.Fatal(err)
	}
	snap, err := readSnapshot(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Records) != 1 || snap.Records[0].Key != good.SubjectOf().Key() || snap.Records[0].Revision != 7 {
		t.Errorf("read back %+v, want only the unexpired record", snap.Records)
	}
	if files, _ := os.ReadDir(filepath.Dir(path)); len(files) != 1 {
		t.Errorf("%d files in the snapshot directory, want the snapshot alone", len(files))
	}
	if _, err := encodeSnapshot(entries, time.Now(), 100); err == nil {
		t.Error("a snapshot over its bound was encoded")
	}
	if _, err := readSnapshot(path, 100); err == nil {
		t.Error("a snapshot over its bound was read")
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := readSnapshot(path, 1<<20); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("group-writable snapshot: %v", err)
	}
	if snap, err := readSnapshot(filepath.Join(dir, "missing.json"), 1<<20); snap != nil || err != nil {
		t.Errorf("missing snapshot: %v %v", snap, err)
	}
}

// Records read from the snapshot pass the same checks as the watch's: a
// hand-edited hostile record is refused and counted, the others enforced.
func TestSnapshotRecordsAreChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enforcement.json")
	future := time.Now().Add(time.Hour)
	good := record(enforcement.Customer("good"), schemas.ActionCutoff, future)
	evil := record(enforcement.Customer("evil"), schemas.ActionCutoff, future)
	evil.PolicyAction = "OK relay me"
	data, err := encodeSnapshot([]*entry{
		{key: good.SubjectOf().Key(), revision: 1, value: good.Marshal(), rec: good},
		{key: evil.SubjectOf().Key(), revision: 2, value: evil.Marshal(), rec: evil},
	}, time.Now(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(path, data); err != nil {
		t.Fatal(err)
	}
	_, _, js := natstest.Start(t) // no topology: the bucket never loads
	cfg := DefaultConfig()
	cfg.Listen, cfg.SnapshotFile = "127.0.0.1:0", path
	srv, err := New(cfg, testSettings(js))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()
	c := dial(t, srv.Addr())
	if got := c.ask(t, map[string]string{"sasl_username": "good"}); !strings.HasPrefix(got, "DEFER_IF_PERMIT") {
		t.Errorf("good record from the snapshot: %q", got)
	}
	if got := c.ask(t, map[string]string{"sasl_username": "evil"}); got != "DUNNO" {
		t.Errorf("hostile record from the snapshot: %q", got)
	}
	if n := metricValue(t, srv, "mailmon_policy_service_invalid_records_total"); n != 1 {
		t.Errorf("invalid_records_total = %v, want 1", n)
	}
}
