package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures the in-process NATS server used by `mailmon run`
// when no external NATS URL is configured, and by tests.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's file storage. Required: the embedded
	// server exists to keep events across restarts.
	StoreDir string
	// Host is the listen address; the default 127.0.0.1 keeps the bus off
	// the network.
	Host string
	// Port is the client port: -1 picks a free port, 0 opens no listener at
	// all (clients must connect in-process with nats.InProcessServer).
	Port int
	// MaxMemory and MaxStore cap JetStream's memory and file storage in
	// bytes; 0 lets the server choose from the machine's resources.
	MaxMemory, MaxStore int64
	// Users, when set, are the only clients the server accepts, each with
	// its own permissions: without a user and its password nobody connects,
	// on the listener or in-process. Empty leaves the server open to any
	// client, which only tests want; mailmon's runtime always sets users.
	Users []*server.User
}

// embeddedReadyTimeout bounds the wait for the server to accept clients;
// a healthy server is ready in a few tens of milliseconds.
const embeddedReadyTimeout = 10 * time.Second

// StartEmbedded starts a NATS server with JetStream on file storage in this
// process and returns once it accepts connections. The caller stops it with
// Shutdown followed by WaitForShutdown.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("bus: embedded nats: store directory is required")
	}
	if opts.Port < -1 || opts.Port > 65535 {
		return nil, fmt.Errorf("bus: embedded nats: port %d out of range (-1 for a random port, 0 for no listener)", opts.Port)
	}
	if opts.MaxMemory < 0 || opts.MaxStore < 0 {
		return nil, errors.New("bus: embedded nats: MaxMemory and MaxStore must not be negative")
	}
	for _, u := range opts.Users {
		if u == nil || u.Username == "" || u.Password == "" {
			return nil, errors.New("bus: embedded nats: every user needs a name and a password")
		}
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	sopts := &server.Options{
		ServerName:         "mailmon-embedded",
		Host:               host,
		Port:               opts.Port,
		JetStream:          true,
		StoreDir:           opts.StoreDir,
		JetStreamMaxMemory: opts.MaxMemory,
		JetStreamMaxStore:  opts.MaxStore,
		// The process owning the server handles signals and logging.
		NoSigs: true,
		NoLog:  true,
		Users:  opts.Users,
	}
	if opts.Port == 0 {
		// server.Options treats port 0 as "the default 4222"; ours means none.
		sopts.DontListen = true
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(embeddedReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded nats: not ready after %s (store %s)", embeddedReadyTimeout, opts.StoreDir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded nats: JetStream failed to start (store %s)", opts.StoreDir)
	}
	return ns, nil
}
