package chtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

var shared *chstore.LocalServer

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &shared)) }

func TestStartStopsTheServerInCleanup(t *testing.T) {
	var pid int
	t.Run("uses a server", func(t *testing.T) {
		srv, conn := chtest.Start(t)
		pid = srv.PID()
		var current string
		if err := conn.QueryRow(context.Background(), "SELECT currentDatabase()").Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current != chtest.Database {
			t.Errorf("currentDatabase() = %q, want %q", current, chtest.Database)
		}
	})
	if pid == 0 {
		t.Fatal("no server was started")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server pid %d still exists after the test's cleanup (kill -0: %v)", pid, err)
	}
}

func TestNewDatabaseIsolatesAndDrops(t *testing.T) {
	ctx := context.Background()
	var names []string
	t.Run("two databases", func(t *testing.T) {
		connA, a := chtest.NewDatabase(t, shared)
		connB, b := chtest.NewDatabase(t, shared)
		if a == b {
			t.Fatalf("both databases are %q", a)
		}
		names = []string{a, b}
		if err := connA.Exec(ctx, "CREATE TABLE only_in_a (x UInt8) ENGINE = Memory"); err != nil {
			t.Fatal(err)
		}
		var n uint64
		if err := connB.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'only_in_a'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Error("a table created in one test database is visible in the other")
		}
	})

	conn, err := chtest.Open(ctx, shared, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, name := range names {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after the test", name)
		}
	}
}

// TestStartFailsWithoutServer proves a missing clickhouse-server fails the
// test with the install hint instead of skipping it.
func TestStartFailsWithoutServer(t *testing.T) {
	t.Setenv(chtest.BinaryEnv, "/nonexistent/clickhouse-server")
	rec := &recordingTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // Fatalf ends this goroutine, as it would end a test
		defer wg.Done()
		chtest.Start(rec)
	}()
	wg.Wait()
	if rec.skipped {
		t.Error("Start skipped the test")
	}
	if !rec.failed {
		t.Fatal("Start did not fail the test")
	}
	if !strings.Contains(rec.message, "apt-get install clickhouse-server") {
		t.Errorf("failure %q lacks the install hint", rec.message)
	}
}

// recordingTB stands in for a test to observe how Start ends it.
type recordingTB struct {
	testing.TB
	mu      sync.Mutex
	failed  bool
	skipped bool
	message string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed, r.message = true, fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recordingTB) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) { r.Skip() }
func (r *recordingTB) SkipNow()                         { r.Skip() }
