package chtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
)

// Database is the database Start's connection uses.
const Database = "mailmon_test"

// BinaryEnv names an environment variable that, when set, is the server
// binary to run instead of the one found on the machine.
const BinaryEnv = "CHTEST_CLICKHOUSE_SERVER"

// startTimeout bounds one server start; it normally takes well under a second.
const startTimeout = 30 * time.Second

// Start runs a real clickhouse-server in t.TempDir() on free loopback ports
// and returns it with a connection to the Database database. Both are
// closed in t.Cleanup. A missing clickhouse-server fails the test with the
// install hint: these tests are never skipped.
func Start(t testing.TB) (*chstore.LocalServer, driver.Conn) {
	t.Helper()
	srv, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	// Registered first so it runs last: the connection closes before the
	// server stops, or the server waits for it.
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("chtest: stop server: %v", err)
		}
	})
	conn, err := Open(context.Background(), srv, Database)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

// StartServer starts a server in dir on free loopback ports; the caller
// stops it. TestMain uses it through RunWithServer.
func StartServer(dir string) (*chstore.LocalServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return chstore.StartLocal(ctx, chstore.LocalServerConfig{Dir: dir, Binary: os.Getenv(BinaryEnv)})
}

// Open connects to srv through chstore.Open (so tests exercise the same
// path as the workers), creating database if needed.
func Open(ctx context.Context, srv *chstore.LocalServer, database string) (driver.Conn, error) {
	cfg := chstore.DefaultConfig()
	cfg.Addr = srv.Addr()
	cfg.Database = database
	cfg.ReadTimeout = config.Duration(30 * time.Second)
	return chstore.Open(ctx, cfg)
}

// RunWithServer is the body of a TestMain that shares one server among
// all tests of a package: it starts the server in a temporary folder,
// stores it in *srv, runs the tests and stops the server. It returns the
// exit code for os.Exit; a server that cannot start is a failure (exit 1),
// never a skip.
func RunWithServer(m *testing.M, srv **chstore.LocalServer) int {
	dir, err := os.MkdirTemp("", "chtest-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "chtest: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := StartServer(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chtest: %v\n", err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "chtest: stop server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var databaseSeq atomic.Int64

var notIdentifierChar = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// NewDatabase creates a database of its own for one test on a shared
// server and returns a connection whose default database it is, with its
// name. Both are dropped and closed in t.Cleanup, so tests sharing a
// server never see each other's tables.
func NewDatabase(t testing.TB, srv *chstore.LocalServer) (driver.Conn, string) {
	t.Helper()
	if srv == nil {
		t.Fatal("chtest: no shared server; call chtest.RunWithServer from TestMain")
	}
	name := strings.ToLower(notIdentifierChar.ReplaceAllString(t.Name(), "_"))
	if len(name) > 40 {
		name = name[:40]
	}
	database := fmt.Sprintf("t%d_%s", databaseSeq.Add(1), name)
	ctx := context.Background()
	conn, err := Open(ctx, srv, database)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+database); err != nil {
			t.Errorf("chtest: drop database %s: %v", database, err)
		}
		conn.Close()
	})
	return conn, database
}
