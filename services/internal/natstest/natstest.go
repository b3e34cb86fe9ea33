package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/bus"
)

// Start runs an embedded NATS server with JetStream on file storage in
// t.TempDir(), listening on a random 127.0.0.1 port, and returns it with a
// connected client and a JetStream handle. Everything is closed and the
// server shut down in t.Cleanup.
func Start(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc, err := nats.Connect(ns.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", ns.ClientURL(), err)
	}
	// Registered after the server's cleanup, so it runs first.
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return ns, nc, js
}
