package chstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := chstore.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if cfg.RetentionDays != 30 || cfg.ReadTimeout.Std() != 30*time.Second {
		t.Errorf("defaults: retention %d days, read timeout %v; want 30 days, 30s", cfg.RetentionDays, cfg.ReadTimeout)
	}
	cfg.Local.Enabled = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with local.enabled: %v", err)
	}
}

func TestConfigYAMLKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clickhouse.yaml")
	yaml := `addr: 127.0.0.1:29000
database: analytics
username: mailmon
password: ${env:CHSTORE_TEST_PASSWORD}
dial_timeout: 2s
read_timeout: 1m
retention_days: 45
local:
  enabled: true
  dir: /srv/mailmon/clickhouse
  tcp_port: 29000
  http_port: 28123
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHSTORE_TEST_PASSWORD", "from-the-environment")
	cfg := chstore.DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		t.Fatal(err)
	}
	want := chstore.Config{
		Addr: "127.0.0.1:29000", Database: "analytics", Username: "mailmon",
		Password:    config.Secret("from-the-environment"),
		DialTimeout: config.Duration(2 * time.Second), ReadTimeout: config.Duration(time.Minute),
		RetentionDays: 45,
		Local:         chstore.LocalConfig{Enabled: true, Dir: "/srv/mailmon/clickhouse", TCPPort: 29000, HTTPPort: 28123},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("loaded %+v\nwant   %+v", cfg, want)
	}
	if got := cfg.Local.LocalServerConfig(); got != (chstore.LocalServerConfig{Dir: "/srv/mailmon/clickhouse", TCPPort: 29000, HTTPPort: 28123}) {
		t.Errorf("LocalServerConfig() = %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*chstore.Config)
		wantPaths []string
	}{
		{"missing addr", func(c *chstore.Config) { c.Addr = "" }, []string{"addr"}},
		{"addr without port", func(c *chstore.Config) { c.Addr = "db.example.net" }, []string{"addr"}},
		{"addr bad port", func(c *chstore.Config) { c.Addr = "db.example.net:http" }, []string{"addr"}},
		{"database with a dot", func(c *chstore.Config) { c.Database = "a.b" }, []string{"database"}},
		{"database injection", func(c *chstore.Config) { c.Database = "x; DROP DATABASE y" }, []string{"database"}},
		{"no username", func(c *chstore.Config) { c.Username = "" }, []string{"username"}},
		{"zero timeouts", func(c *chstore.Config) { c.DialTimeout, c.ReadTimeout = 0, 0 }, []string{"dial_timeout", "read_timeout"}},
		{"no retention", func(c *chstore.Config) { c.RetentionDays = 0 }, []string{"retention_days"}},
		{"local with bad ports and no dir", func(c *chstore.Config) {
			c.Local = chstore.LocalConfig{Enabled: true, TCPPort: 0, HTTPPort: 70000}
		}, []string{"local.dir", "local.tcp_port", "local.http_port", "addr"}},
		{"local with same ports", func(c *chstore.Config) {
			c.Local.Enabled, c.Local.HTTPPort = true, c.Local.TCPPort
		}, []string{"local.http_port"}},
		{"local but addr elsewhere", func(c *chstore.Config) {
			c.Local.Enabled, c.Addr = true, "db.example.net:19000"
		}, []string{"addr"}},
		{"remote addr is fine without local", func(c *chstore.Config) { c.Addr = "db.example.net:9000" }, nil},
		{"addrs replace the default addr", func(c *chstore.Config) {
			c.Addrs, c.Cluster = []string{"ch-1.example.net:9000", "ch-2.example.net:9000"}, "mailmon"
		}, nil},
		{"addrs without addr", func(c *chstore.Config) { c.Addr, c.Addrs = "", []string{"ch-1.example.net:9000"} }, nil},
		{"addr and addrs both set", func(c *chstore.Config) {
			c.Addr, c.Addrs = "db.example.net:9000", []string{"ch-1.example.net:9000"}
		}, []string{"addrs"}},
		{"bad and repeated addrs", func(c *chstore.Config) {
			c.Addrs = []string{"ch-1.example.net", "ch-2.example.net:9000", "ch-2.example.net:9000"}
		}, []string{"addrs[0]", "addrs[2]"}},
		{"cluster injection", func(c *chstore.Config) { c.Cluster = "c; DROP DATABASE y" }, []string{"cluster"}},
		{"local with a cluster", func(c *chstore.Config) {
			c.Local.Enabled, c.Cluster, c.Addrs = true, "mailmon", []string{"127.0.0.1:19000", "127.0.0.1:19001"}
		}, []string{"addrs", "cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := chstore.DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if len(tt.wantPaths) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var problems config.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("Validate() = %v, want config.Problems", err)
			}
			got := map[string]bool{}
			for _, p := range problems {
				got[p.Path] = true
			}
			for _, path := range tt.wantPaths {
				if !got[path] {
					t.Errorf("no problem at %q in:\n%v", path, err)
				}
			}
			if len(got) != len(tt.wantPaths) {
				t.Errorf("problems at %v, want exactly %v", got, tt.wantPaths)
			}
		})
	}
}

func TestOpenCreatesDatabaseAndPings(t *testing.T) {
	ctx := context.Background()
	cfg := chstore.DefaultConfig()
	cfg.Addr = server.Addr()
	cfg.Database = "open_creates_" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "_"))

	conn, err := chstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var current string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	if current != cfg.Database {
		t.Errorf("currentDatabase() = %q, want %q", current, cfg.Database)
	}

	// Opening again finds the database and does not fail.
	again, err := chstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	again.Close()
}

func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	const password = "s3cret-Password-42"
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		addr    string
		user    string
		wantErr string
	}{
		// The local server's default user has no password, so any
		// password is wrong; an unknown user fails the same way.
		{"wrong password", server.Addr(), "default", "as default"},
		{"unknown user", server.Addr(), "nobody_" + password, "as nobody_[REDACTED]"},
		{"nothing listening", closedAddr, "default", closedAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := chstore.DefaultConfig()
			cfg.Addr, cfg.Username, cfg.Password = tt.addr, tt.user, config.Secret(password)
			cfg.DialTimeout = config.Duration(2 * time.Second)
			conn, err := chstore.Open(ctx, cfg)
			if err == nil {
				conn.Close()
				t.Fatal("Open succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	cfg := chstore.DefaultConfig()
	cfg.Database = "bad name"
	cfg.Password = "hunter2-hunter2"
	_, err := chstore.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Fatalf("Open = %v, want a database problem", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}
