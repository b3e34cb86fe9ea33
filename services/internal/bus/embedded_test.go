package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/bus"
)

func TestStartEmbedded(t *testing.T) {
	tests := []struct {
		name     string
		port     int
		connect  func(t *testing.T, url string, opt nats.Option) (*nats.Conn, error)
		listener bool
	}{
		{"random loopback port", -1, func(t *testing.T, url string, _ nats.Option) (*nats.Conn, error) {
			if !strings.HasPrefix(url, "nats://127.0.0.1:") {
				t.Errorf("client URL %q is not on 127.0.0.1", url)
			}
			return nats.Connect(url)
		}, true},
		{"in-process only", 0, func(t *testing.T, _ string, inProcess nats.Option) (*nats.Conn, error) {
			return nats.Connect("", inProcess)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Port: tt.port, MaxStore: 64 << 20})
			must(t, err, "start")
			t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
			if got := ns.Addr() != nil; got != tt.listener {
				t.Fatalf("listener present = %v, want %v", got, tt.listener)
			}
			nc, err := tt.connect(t, ns.ClientURL(), nats.InProcessServer(ns))
			must(t, err, "connect")
			defer nc.Close()
			js, err := jetstream.New(nc)
			must(t, err, "jetstream")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage})
			must(t, err, "create stream")
			_, err = js.Publish(ctx, "s.x", []byte("x"))
			must(t, err, "publish")
			if cfg := ns.JetStreamConfig(); cfg == nil || cfg.MaxStore != 64<<20 || cfg.StoreDir == "" {
				t.Errorf("JetStream config %+v, want max store %d under %s", cfg, 64<<20, dir)
			}
		})
	}
}

func TestStartEmbeddedKeepsStreamsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Port: 0})
	must(t, err, "start")
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	must(t, err, "connect")
	js, err := jetstream.New(nc)
	must(t, err, "jetstream")
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage})
	must(t, err, "create stream")
	_, err = js.Publish(ctx, "keep.one", []byte("survives"))
	must(t, err, "publish")
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	ns, err = bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Port: 0})
	must(t, err, "restart")
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err = nats.Connect("", nats.InProcessServer(ns))
	must(t, err, "reconnect")
	defer nc.Close()
	js, err = jetstream.New(nc)
	must(t, err, "jetstream")
	st, err := js.Stream(ctx, "KEEP")
	must(t, err, "stream after restart")
	m, err := st.GetLastMsgForSubject(ctx, "keep.one")
	must(t, err, "get message after restart")
	if string(m.Data) != "survives" {
		t.Fatalf("message after restart %q, want %q", m.Data, "survives")
	}
}

func TestStartEmbeddedRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts bus.EmbeddedOptions
		want string
	}{
		{"no store dir", bus.EmbeddedOptions{Port: -1}, "store directory is required"},
		{"port too large", bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: 70000}, "out of range"},
		{"port below -1", bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -2}, "out of range"},
		{"negative memory", bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, MaxMemory: -1}, "must not be negative"},
		{"user without password", bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: []*server.User{{Username: "w"}}}, "needs a name and a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, err := bus.StartEmbedded(tt.opts)
			if err == nil {
				ns.Shutdown()
				t.Fatalf("StartEmbedded accepted %+v", tt.opts)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want one containing %q", err, tt.want)
			}
		})
	}
}

// With users, the server accepts nobody else, over the listener or
// in-process, and holds each user to its permissions.
func TestStartEmbeddedWithUsersRefusesAnonymousAndEnforcesPermissions(t *testing.T) {
	t.Parallel()
	users := []*server.User{
		{Username: "writer", Password: "writer-secret", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"s.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.writer.>"}},
		}},
		{Username: "reader", Password: "reader-secret", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"nothing.here"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"s.>"}},
		}},
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Users: users})
	must(t, err, "start")
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	for name, opts := range map[string][]nats.Option{
		"anonymous on the listener": nil,
		"anonymous in-process":      {nats.InProcessServer(ns)},
		"wrong password":            {nats.UserInfo("writer", "guess")},
		"unknown user":              {nats.UserInfo("admin", "writer-secret")},
	} {
		t.Run(name, func(t *testing.T) {
			// In parallel: refused in-process, the client sees it only
			// when the server's write deadline ends its pipe (10 s).
			t.Parallel()
			nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.MaxReconnects(0))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected, want an authorization error")
			}
			// In-process, the server closes the pipe as it refuses, so the
			// client may see the closed pipe first.
			if name != "anonymous in-process" && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("error %v, want an authorization error", err)
			}
		})
	}

	violations := make(chan error, 4)
	reader, err := nats.Connect(ns.ClientURL(), nats.UserInfo("reader", "reader-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	must(t, err, "connect reader")
	defer reader.Close()
	sub, err := reader.SubscribeSync("s.>")
	must(t, err, "reader subscribes")
	must(t, reader.Flush(), "flush reader")

	writer, err := nats.Connect(ns.ClientURL(), nats.UserInfo("writer", "writer-secret"), nats.CustomInboxPrefix("_INBOX.writer"))
	must(t, err, "connect writer")
	defer writer.Close()
	must(t, writer.Publish("s.one", []byte("allowed")), "writer publishes")
	must(t, writer.Flush(), "flush writer")
	m, err := sub.NextMsg(5 * time.Second)
	must(t, err, "reader receives what the writer may publish")
	if string(m.Data) != "allowed" {
		t.Fatalf("reader got %q", m.Data)
	}

	must(t, reader.Publish("s.two", []byte("denied")), "reader publishes")
	must(t, reader.Flush(), "flush reader")
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("reader's publish: %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader published outside its permissions without an error")
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("the denied publish was delivered: %q", m.Data)
	}
}
