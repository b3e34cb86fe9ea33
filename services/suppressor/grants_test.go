package suppressor

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/suppression"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// TestRunsWithItsOwnGrants runs the suppressor as its NATS user, with
// exactly the permissions pipelines/access.yaml grants it, through an add,
// a clear by delivery and an expiry: a missing permission shows up as a
// permission violation or as work that never completes.
func TestRunsWithItsOwnGrants(t *testing.T) {
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	access, err := pipelines.DefaultAccess()
	if err != nil {
		t.Fatal(err)
	}
	var users []*server.User
	for _, g := range access.Grants(top) {
		if g.User != WorkerName && g.User != pipelines.UserAdmin {
			continue
		}
		users = append(users, &server.User{Username: g.User, Password: "pw-" + g.User, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: g.Publish.Allow, Deny: g.Publish.Deny},
			Subscribe: &server.SubjectPermission{Allow: g.Subscribe.Allow, Deny: g.Subscribe.Deny},
		}})
	}
	if len(users) != 2 {
		t.Fatalf("access data has %d of the users admin and %s", len(users), WorkerName)
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	var mu sync.Mutex
	var violations []string
	connect := func(user string) jetstream.JetStream {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, "pw-"+user),
			nats.CustomInboxPrefix(pipelines.InboxPrefix(user)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				mu.Lock()
				defer mu.Unlock()
				violations = append(violations, user+": "+err.Error())
			}))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	admin := connect(pipelines.UserAdmin)
	ctx := context.Background()
	if err := top.Apply(ctx, admin, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	clock := newFakeClock(t0)
	cfg := suppression.DefaultConfig()
	cfg.SweepInterval = config.Duration(20 * time.Millisecond)
	w, err := New(cfg, worker.Settings{JetStream: connect(WorkerName), Now: clock.Now,
		Logger: slog.New(slog.DiscardHandler), Source: schemas.Source{Worker: WorkerName, Host: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	e := &env{js: admin, w: w, clock: clock, pub: bus.NewPublisher(admin, bus.PublisherOptions{Worker: "test"})}
	if e.kv, err = admin.KeyValue(ctx, suppression.Bucket); err != nil {
		t.Fatal(err)
	}
	e.publish(t, bounce("b1", nil))
	e.publish(t, bounce("b2", func(b *schemas.BounceReceived) { b.Recipient = "other@example.org" }))
	e.publish(t, complaint("c1", nil))
	e.drained(t)
	if n := len(e.entries(t)); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	e.publish(t, delivery("sent", func(d *schemas.DeliveryAttempted) {
		d.Time, d.Status, d.DSN, d.ReplyCode, d.Category = t0.Add(time.Hour), schemas.StatusSent, "2.0.0", 250, ""
	}))
	e.drained(t)
	if n := len(e.entries(t)); n != 2 {
		t.Fatalf("%d entries after the delivery, want 2", n)
	}
	clock.Advance(91 * 24 * time.Hour)
	testwait.Eventually(t, wait, "the sweep to expire the other bounce", func() bool { return len(e.entries(t)) == 1 })
	evs := mustEvents(t, e)
	if len(added(evs)) != 3 || len(removed(evs)) != 2 {
		t.Fatalf("%d added, %d removed events; want 3 and 2", len(added(evs)), len(removed(evs)))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("permission violations: %v", violations)
	}
}
