package chstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is the `clickhouse` section of the mailmon config.
type Config struct {
	// Addr is the native-protocol address (host:port). The HTTP protocol
	// is not supported: ClickHouse 18.16 rejects clickhouse-go's handshake.
	Addr string `yaml:"addr"`
	// Addrs lists several servers (host:port), the replicas of a cluster:
	// connections go to the first that answers, in order, so a replica that
	// is down is skipped. It replaces addr, which must then be left unset.
	Addrs []string `yaml:"addrs"`
	// Cluster is the cluster name from the servers' remote_servers. Empty
	// (the default) is a single server with plain tables. Set, migrations
	// create replicated tables ON CLUSTER, each behind a Distributed table
	// of the same name that readers query; the sink inserts into the
	// replicated table on the replica it is connected to.
	Cluster string `yaml:"cluster"`
	// Database holds mailmon's tables; migrations create it.
	Database string `yaml:"database"`
	// Username and Password log in to the server.
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// DialTimeout bounds connecting; ReadTimeout bounds waiting for a
	// server reply. Keep ReadTimeout short: a statement the old server
	// cannot handle hangs until it expires.
	DialTimeout config.Duration `yaml:"dial_timeout"`
	ReadTimeout config.Duration `yaml:"read_timeout"`
	// RetentionDays is how many days of events are kept: day partitions
	// older than this are dropped.
	RetentionDays int `yaml:"retention_days"`
	// Local runs a clickhouse-server child process for a single machine.
	Local LocalConfig `yaml:"local"`
}

// LocalConfig is the `clickhouse.local` section: whether mailmon starts
// its own clickhouse-server, and where.
type LocalConfig struct {
	// Enabled starts Debian's clickhouse-server as a child process (the
	// local default for `go tool task run`); addr is then ignored.
	Enabled bool `yaml:"enabled"`
	// Dir holds the local server's data and configuration.
	Dir string `yaml:"dir"`
	// TCPPort and HTTPPort are the local server's native and HTTP ports, on
	// loopback.
	TCPPort  int `yaml:"tcp_port"`
	HTTPPort int `yaml:"http_port"`
}

// Defaults.
const (
	DefaultAddr          = "127.0.0.1:19000"
	DefaultDatabase      = "mailmon"
	DefaultUsername      = "default"
	DefaultDialTimeout   = 5 * time.Second
	DefaultReadTimeout   = 30 * time.Second
	DefaultRetentionDays = 30
	DefaultLocalDir      = "var/clickhouse"
	DefaultLocalTCPPort  = 19000
	DefaultLocalHTTPPort = 18123
)

// DefaultConfig returns the defaults: a server on loopback port 19000 (the
// local server's port, clear of a system ClickHouse on 9000), database
// mailmon, 30 days of retention. The local server is off unless enabled.
func DefaultConfig() Config {
	return Config{
		Addr:          DefaultAddr,
		Database:      DefaultDatabase,
		Username:      DefaultUsername,
		DialTimeout:   config.Duration(DefaultDialTimeout),
		ReadTimeout:   config.Duration(DefaultReadTimeout),
		RetentionDays: DefaultRetentionDays,
		Local: LocalConfig{
			Dir:      DefaultLocalDir,
			TCPPort:  DefaultLocalTCPPort,
			HTTPPort: DefaultLocalHTTPPort,
		},
	}
}

// Validate reports every problem at once, as config.Problems with paths
// relative to the section.
func (c Config) Validate() error {
	var check config.Check
	var (
		host    string
		port    int
		addrErr error
	)
	switch {
	case len(c.Addrs) == 0:
		check.Require("addr", c.Addr)
		host, port, addrErr = splitHostPort(c.Addr)
		if c.Addr != "" && addrErr != nil {
			check.Addf("addr", "must be host:port: %v", addrErr)
		}
	case c.Addr != "" && c.Addr != DefaultAddr:
		check.Addf("addrs", "addr (%q) is set too: set one of addr and addrs", c.Addr)
	}
	seen := map[string]bool{}
	for i, a := range c.Addrs {
		key := fmt.Sprintf("addrs[%d]", i)
		if _, _, err := splitHostPort(a); err != nil {
			check.Addf(key, "must be host:port: %v", err)
		} else if seen[a] {
			check.Addf(key, "%q is listed twice", a)
		}
		seen[a] = true
	}
	if c.Cluster != "" {
		if err := checkIdentifier(c.Cluster); err != nil {
			check.Addf("cluster", "%v", err)
		}
	}
	if err := checkIdentifier(c.Database); err != nil {
		check.Addf("database", "%v", err)
	}
	check.Require("username", c.Username)
	if c.DialTimeout.Std() <= 0 {
		check.Addf("dial_timeout", "must be positive, got %s", c.DialTimeout)
	}
	if c.ReadTimeout.Std() <= 0 {
		check.Addf("read_timeout", "must be positive, got %s", c.ReadTimeout)
	}
	if c.RetentionDays < 1 {
		check.Addf("retention_days", "must be at least 1, got %d", c.RetentionDays)
	}
	if c.Local.Enabled {
		if len(c.Addrs) > 0 {
			check.Addf("addrs", "must be empty when local.enabled is true (the local server is one server)")
		}
		if c.Cluster != "" {
			check.Addf("cluster", "must be empty when local.enabled is true (the local server is one server)")
		}
		check.Require("local.dir", c.Local.Dir)
		for _, p := range []struct {
			key  string
			port int
		}{{"local.tcp_port", c.Local.TCPPort}, {"local.http_port", c.Local.HTTPPort}} {
			if p.port < 1 || p.port > 65535 {
				check.Addf(p.key, "must be a port between 1 and 65535, got %d", p.port)
			}
		}
		if c.Local.TCPPort == c.Local.HTTPPort {
			check.Addf("local.http_port", "must differ from local.tcp_port (%d)", c.Local.TCPPort)
		}
		// The workers dial addr; with a local server that must be the
		// local server, or they would silently talk to another one.
		if len(c.Addrs) == 0 && addrErr == nil && (!isLoopback(host) || port != c.Local.TCPPort) {
			check.Addf("addr", "must be 127.0.0.1:%d (local.tcp_port) when local.enabled is true, got %q", c.Local.TCPPort, c.Addr)
		}
	}
	return check.Err()
}

// Endpoints are the servers to dial, in order: addrs, or addr alone.
func (c Config) Endpoints() []string {
	if len(c.Addrs) > 0 {
		return append([]string(nil), c.Addrs...)
	}
	return []string{c.Addr}
}

// Clustered reports whether the tables are replicated ON CLUSTER.
func (c Config) Clustered() bool { return c.Cluster != "" }

// LocalServerConfig returns the settings StartLocal needs.
func (c LocalConfig) LocalServerConfig() LocalServerConfig {
	return LocalServerConfig{Dir: c.Dir, TCPPort: c.TCPPort, HTTPPort: c.HTTPPort}
}

func splitHostPort(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", portText)
	}
	return host, port, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkIdentifier accepts plain ClickHouse identifiers only. Database and
// table names are spliced into DDL, so anything else is refused rather than
// quoted.
func checkIdentifier(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if len(name) > 128 || !identifierPattern.MatchString(name) {
		return fmt.Errorf("%q is not a plain identifier (letters, digits, underscore; not starting with a digit)", name)
	}
	return nil
}

// Open connects over the native protocol with LZ4 compression, creates the
// database if it is missing, and pings. Every query on the returned
// connection runs in cfg.Database. Errors never contain the password.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chstore: invalid config:\n%w", err)
	}
	// The server's default database first: the target may not exist yet,
	// and the handshake fails for a database that does not exist.
	boot, err := clickhouse.Open(options(cfg, ""))
	if err != nil {
		return nil, connError(cfg, "open", err)
	}
	defer boot.Close()
	if err := boot.Ping(ctx); err != nil {
		return nil, connError(cfg, "ping", err)
	}
	var exists uint64
	if err := boot.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", cfg.Database).Scan(&exists); err != nil {
		return nil, connError(cfg, "look up database "+cfg.Database, err)
	}
	if exists == 0 {
		// The name passed checkIdentifier, so splicing it is safe.
		if err := boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
			return nil, connError(cfg, "create database "+cfg.Database, err)
		}
	}

	conn, err := clickhouse.Open(options(cfg, cfg.Database))
	if err != nil {
		return nil, connError(cfg, "open", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, connError(cfg, "ping", err)
	}
	return conn, nil
}

func options(cfg Config, database string) *clickhouse.Options {
	return &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     cfg.Endpoints(),
		// In order: the first replica listed is preferred and the next
		// ones are the failover. A dial that fails moves on to the next.
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		Auth: clickhouse.Auth{
			Database: database,
			Username: cfg.Username,
			Password: cfg.Password.Reveal(),
		},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout: cfg.DialTimeout.Std(),
		ReadTimeout: cfg.ReadTimeout.Std(),
	}
}

// connError names the server and user, never the password, and scrubs the
// password in case a driver or server message ever echoed it.
func connError(cfg Config, op string, err error) error {
	return &redactedError{
		msg: redact(fmt.Sprintf("chstore: %s on %s as %s: %v", op, strings.Join(cfg.Endpoints(), ","), cfg.Username, err), cfg.Password.Reveal()),
		err: err,
	}
}

// redactedError keeps the cause for errors.Is/As while its message is
// scrubbed. Unwrap exposes the original error, whose own text callers
// should not print; the message of this wrapper is the safe one.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[REDACTED]")
}
