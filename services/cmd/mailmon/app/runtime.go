package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Runtime is what a mailmon process shares between its workers: NATS (the
// embedded server, when there is no external one, and the connections), the
// ClickHouse connection (and the local server, when enabled), metrics and
// health. Close releases them in reverse order of Start.
type Runtime struct {
	Config  Config
	Logger  *slog.Logger
	Metrics *prometheus.Registry
	Health  *obs.Health
	// NATS and JetStream are the admin connection: topology apply and the
	// runtime's own checks. No worker uses it: each connects as its own user
	// (Connect). Nil when an external server is configured with per-worker
	// users and no admin credentials.
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	// ClickHouse is nil unless a started worker needs it.
	ClickHouse driver.Conn

	access   pipelines.Access
	embedded *server.Server
	// passwords are the embedded server's generated ones, by user.
	passwords map[string]string
	conns     []*natsConn
	// permissionViolations counts what the server refused each user; a
	// worker that hits one lacks a grant in pipelines/access.yaml.
	permissionViolations *prometheus.CounterVec
	localCH              *chstore.LocalServer
	// localCHAddr is the local ClickHouse server's address once started.
	localCHAddr string
	// natsMayBeDown: see StartOptions.NATSMayBeDown.
	natsMayBeDown bool
}

// natsConn is one open connection and the signal that it has closed.
type natsConn struct {
	nc     *nats.Conn
	closed chan struct{}
}

// StartOptions says which optional parts a command needs.
type StartOptions struct {
	// ClickHouse connects to ClickHouse (starting the local server when
	// clickhouse.local.enabled) and applies the migrations.
	ClickHouse bool
	// NATSMayBeDown starts the runtime even when an external NATS server
	// is unreachable: the topology is not applied and every worker
	// connection retries in the background. Only for processes whose
	// workers all StartWithoutNATS.
	NATSMayBeDown bool
}

// Start brings up NATS (embedded when no URL is configured), applies the
// JetStream topology as admin, and, when asked, ClickHouse with its
// migrations.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, opts StartOptions) (_ *Runtime, err error) {
	rt := &Runtime{Config: cfg, Logger: logger, Metrics: obs.NewRegistry(), Health: obs.NewHealth(), natsMayBeDown: opts.NATSMayBeDown}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	rt.permissionViolations, err = obs.RegisterOrReuse(rt.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailmon_nats_permission_violations_total",
		Help: "Operations the NATS server refused a user (publish or subscribe outside its permissions).",
	}, []string{"user"}))
	if err != nil {
		return nil, err
	}
	top, err := pipelines.Default()
	if err != nil {
		return nil, err
	}
	if rt.access, err = pipelines.DefaultAccess(); err != nil {
		return nil, err
	}
	if err := rt.startNATS(top); err != nil {
		return nil, err
	}
	if rt.JetStream != nil {
		if err := top.Apply(ctx, rt.JetStream, pipelines.ApplyOptions{Replicas: cfg.NATS.Replicas}); err != nil {
			return nil, err
		}
	}
	if opts.ClickHouse {
		if err := rt.startClickHouse(ctx); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// startNATS starts the embedded server with a generated password per user
// (no URL configured), then opens the admin connection.
func (rt *Runtime) startNATS(top pipelines.Topology) error {
	c := rt.Config.NATS
	if c.URL == "" {
		host, port := "", 0 // no listener: in-process clients only
		if c.Embedded.Listen != "" {
			h, p, err := net.SplitHostPort(c.Embedded.Listen)
			if err != nil {
				return fmt.Errorf("nats.embedded.listen: %w", err)
			}
			if port, err = strconv.Atoi(p); err != nil {
				return fmt.Errorf("nats.embedded.listen: bad port %q", p)
			}
			if port == 0 {
				port = -1 // ":0" asks for any free port, as with net.Listen
			}
			host = h
		}
		dir := rt.Config.natsStoreDir()
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("nats store: %w", err)
		}
		credDir := rt.Config.EmbeddedCredentialsDir()
		passwords, err := embeddedPasswords(credDir, rt.access.Names())
		if err != nil {
			return err
		}
		rt.passwords = passwords
		ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Host: host, Port: port,
			MaxStore: c.Embedded.MaxStore.Int64(), Users: embeddedUsers(rt.access, top, passwords)})
		if err != nil {
			return err
		}
		rt.embedded = ns
		rt.Logger.Info("embedded nats started", "store_dir", dir, "listen", c.Embedded.Listen, "credentials_dir", credDir)
	}
	nc, js, err := rt.Connect(pipelines.UserAdmin)
	// Against an external server the admin is optional: a process given no
	// admin credentials (or not the admin's password file) runs its workers
	// on the topology someone else applied.
	if rt.embedded == nil && (errors.Is(err, errNoCredentials) || errors.Is(err, fs.ErrNotExist)) {
		rt.Logger.Info("no admin credentials for nats; the topology is not applied by this process", "reason", err)
		return nil
	}
	if rt.embedded == nil && rt.natsMayBeDown && errors.Is(err, nats.ErrNoServers) {
		rt.Logger.Warn("nats unreachable; starting without it, the topology is not applied by this process", "url", redactURL(c.URL))
		return nil
	}
	if err != nil {
		return err
	}
	rt.NATS, rt.JetStream = nc, js
	return nil
}

// errNoCredentials: nats.users names other users but not this one, and
// there is no shared credential to fall back on.
var errNoCredentials = errors.New("no credentials")

// Connect opens a connection as user (a worker's name or another user of
// pipelines/access.yaml) with its own inbox prefix, which its permissions
// require, and registers its readiness check. Close drains it.
func (rt *Runtime) Connect(user string) (*nats.Conn, jetstream.JetStream, error) {
	c := rt.Config.NATS
	if _, ok := rt.access.User(user); !ok {
		return nil, nil, fmt.Errorf("nats: no user %q in pipelines/access.yaml", user)
	}
	opts := []nats.Option{
		nats.Name("mailmon " + user),
		nats.Timeout(c.ConnectTimeout.Std()),
		nats.MaxReconnects(-1),
		nats.DrainTimeout(drainTimeout),
		nats.CustomInboxPrefix(pipelines.InboxPrefix(user)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				rt.Logger.Warn("nats disconnected", "user", user, "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { rt.Logger.Info("nats reconnected", "user", user) }),
		// Asynchronous errors, above all a slow consumer (the client then
		// drops messages, which JetStream redelivers only after AckWait)
		// and permission violations (a grant missing for this user).
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, nats.ErrPermissionViolation) {
				rt.permissionViolations.WithLabelValues(user).Inc()
			}
			rt.Logger.Warn("nats asynchronous error", "user", user, "subject", subject, "error", err)
		}),
	}
	if rt.natsMayBeDown && user != pipelines.UserAdmin {
		// The admin applies the topology and must fail fast; a worker that
		// serves from local state keeps trying instead.
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	url := c.URL
	if rt.embedded != nil {
		opts = append(opts, nats.InProcessServer(rt.embedded), nats.UserInfo(user, rt.passwords[user]))
	} else {
		auth, ok, err := c.natsAuth(user)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, fmt.Errorf("nats: user %s: %w: set nats.users.%s or a shared nats.user", user, errNoCredentials, user)
		}
		if auth != nil {
			opts = append(opts, auth)
		}
	}
	conn := &natsConn{closed: make(chan struct{})}
	opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { close(conn.closed) }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		// nats errors never include the credentials, only the URL.
		return nil, nil, fmt.Errorf("connect to nats %s as %s: %w", redactURL(url), user, err)
	}
	conn.nc = nc
	rt.conns = append(rt.conns, conn)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	rt.Health.Register("nats:"+user, func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	return nc, js, nil
}

func (rt *Runtime) startClickHouse(ctx context.Context) error {
	c := rt.Config.ClickHouse
	if c.Local.Enabled {
		dir := c.Local.Dir
		if dir == "" {
			dir = filepath.Join(rt.Config.DataDir, "clickhouse")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		srv, err := chstore.StartLocal(ctx, chstore.LocalServerConfig{Dir: abs, TCPPort: c.Local.TCPPort, HTTPPort: c.Local.HTTPPort})
		if err != nil {
			return err
		}
		rt.localCH = srv
		rt.localCHAddr = srv.Addr()
		c.Addr = srv.Addr()
		rt.Logger.Info("local clickhouse started", "dir", abs, "addr", c.Addr)
	}
	conn, err := chstore.Open(ctx, c)
	if err != nil {
		return err
	}
	rt.ClickHouse = conn
	applied, err := chstore.MigrateFor(ctx, conn, c, schemas.Migrations)
	if err != nil {
		return err
	}
	rt.Logger.Info("clickhouse migrations applied", "new", len(applied), "database", c.Database)
	rt.Health.Register("clickhouse", func(ctx context.Context) error { return conn.Ping(ctx) })
	return nil
}

// ClickHouseConfig is the shared `clickhouse` section as workers use it:
// with the local server's address when this runtime started one.
// ClickHouseClient is the clickhouse section a command outside a running
// mailmon connects with (mailmon report, lab status, schemas migrate): when
// mailmon runs its own local server on a fixed port, that server's address.
func ClickHouseClient(cfg Config) chstore.Config {
	c := cfg.ClickHouse
	if c.Local.Enabled && c.Local.TCPPort != 0 {
		c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Local.TCPPort))
	}
	return c
}

func (rt *Runtime) ClickHouseConfig() chstore.Config {
	c := rt.Config.ClickHouse
	if rt.localCHAddr != "" {
		c.Addr = rt.localCHAddr
	}
	return c
}

// Close drains every NATS connection (the workers have stopped by then)
// and stops what Start started.
func (rt *Runtime) Close() {
	// Drain flushes what was published and ends subscriptions cleanly; it
	// is asynchronous, so wait for the closed callbacks, all within one
	// drain timeout.
	for _, c := range rt.conns {
		if err := c.nc.Drain(); err != nil {
			c.nc.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for _, c := range rt.conns {
		select {
		case <-c.closed:
		case <-ctx.Done():
			c.nc.Close()
		}
	}
	if rt.embedded != nil {
		rt.embedded.Shutdown()
		rt.embedded.WaitForShutdown()
	}
	if rt.ClickHouse != nil {
		rt.ClickHouse.Close()
	}
	if rt.localCH != nil {
		if err := rt.localCH.Stop(); err != nil {
			rt.Logger.Warn("stopping local clickhouse", "error", err)
		}
	}
}

// drainTimeout bounds how long Close waits for in-flight publishes.
const drainTimeout = 30 * time.Second

// redactURL drops any user info from a NATS URL list before it is shown.
func redactURL(urls string) string {
	if urls == "" {
		return "(embedded)"
	}
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable url)"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
