package app

import (
	"context"
	"errors"
	"fmt"
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

// Runtime is what a mailmon process shares between its workers: the NATS
// connection (and the embedded server, when there is no external one), the
// ClickHouse connection (and the local server, when enabled), metrics and
// health. Close releases them in reverse order of Start.
type Runtime struct {
	Config    Config
	Logger    *slog.Logger
	Metrics   *prometheus.Registry
	Health    *obs.Health
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	// ClickHouse is nil unless a started worker needs it.
	ClickHouse driver.Conn

	embedded   *server.Server
	natsClosed chan struct{}
	localCH    *chstore.LocalServer
}

// StartOptions says which optional parts a command needs.
type StartOptions struct {
	// ClickHouse connects to ClickHouse (starting the local server when
	// clickhouse.local.enabled) and applies the migrations.
	ClickHouse bool
}

// Start brings up NATS (embedded when no URL is configured), applies the
// JetStream topology, and, when asked, ClickHouse with its migrations.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, opts StartOptions) (_ *Runtime, err error) {
	rt := &Runtime{Config: cfg, Logger: logger, Metrics: obs.NewRegistry(), Health: obs.NewHealth()}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	if err := rt.startNATS(ctx); err != nil {
		return nil, err
	}
	top, err := pipelines.Default()
	if err != nil {
		return nil, err
	}
	if err := top.Apply(ctx, rt.JetStream, pipelines.ApplyOptions{Replicas: cfg.NATS.Replicas}); err != nil {
		return nil, err
	}
	if opts.ClickHouse {
		if err := rt.startClickHouse(ctx); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

func (rt *Runtime) startNATS(ctx context.Context) error {
	c := rt.Config.NATS
	url := c.URL
	var connOpts []nats.Option
	rt.natsClosed = make(chan struct{})
	if url == "" {
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
		ns, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, Host: host, Port: port, MaxStore: c.Embedded.MaxStore.Int64()})
		if err != nil {
			return err
		}
		rt.embedded = ns
		connOpts = append(connOpts, nats.InProcessServer(ns))
		rt.Logger.Info("embedded nats started", "store_dir", dir, "listen", c.Embedded.Listen)
	}
	connOpts = append(connOpts,
		nats.Name("mailmon"),
		nats.Timeout(c.ConnectTimeout.Std()),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				rt.Logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { rt.Logger.Info("nats reconnected") }),
		// Asynchronous errors, above all a slow consumer: the client then
		// drops messages, which JetStream redelivers only after AckWait.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			rt.Logger.Warn("nats asynchronous error", "subject", subject, "error", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(rt.natsClosed) }),
		nats.DrainTimeout(drainTimeout),
	)
	switch {
	case c.CredsFile != "":
		connOpts = append(connOpts, nats.UserCredentials(c.CredsFile))
	case c.Token != "":
		connOpts = append(connOpts, nats.Token(c.Token.Reveal()))
	case c.User != "":
		connOpts = append(connOpts, nats.UserInfo(c.User, c.Password.Reveal()))
	}
	nc, err := nats.Connect(url, connOpts...)
	if err != nil {
		// nats errors never include the credentials, only the URL.
		return fmt.Errorf("connect to nats %s: %w", redactURL(url), err)
	}
	rt.NATS = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	rt.JetStream = js
	rt.Health.Register("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	return nil
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
		c.Addr = srv.Addr()
		rt.Logger.Info("local clickhouse started", "dir", abs, "addr", c.Addr)
	}
	conn, err := chstore.Open(ctx, c)
	if err != nil {
		return err
	}
	rt.ClickHouse = conn
	applied, err := chstore.Migrate(ctx, conn, c.Database, schemas.Migrations)
	if err != nil {
		return err
	}
	rt.Logger.Info("clickhouse migrations applied", "new", len(applied), "database", c.Database)
	rt.Health.Register("clickhouse", func(ctx context.Context) error { return conn.Ping(ctx) })
	return nil
}

// Close drains the NATS connection and stops what Start started.
func (rt *Runtime) Close() {
	if rt.NATS != nil {
		// Drain flushes what was published and ends subscriptions cleanly;
		// it is asynchronous, so wait for the closed callback.
		if err := rt.NATS.Drain(); err != nil {
			rt.NATS.Close()
		}
		select {
		case <-rt.natsClosed:
		case <-time.After(drainTimeout):
			rt.NATS.Close()
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
