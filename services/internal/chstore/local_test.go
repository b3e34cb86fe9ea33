package chstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

func TestLocalServerStartStopKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := chstore.LocalServerConfig{Dir: t.TempDir()}

	srv, err := chstore.StartLocal(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	assertLoopback(t, srv.Addr())
	assertLoopback(t, srv.HTTPAddr())
	if got := httpQuery(t, srv, "SELECT version()"); !strings.HasPrefix(got, "1") && !strings.HasPrefix(got, "2") {
		t.Errorf("version() = %q, want a version number", got)
	}
	for _, name := range []string{"config.xml", "data", "tmp", "log"} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, name)); err != nil {
			t.Errorf("server dir lacks %s: %v", name, err)
		}
	}
	httpQuery(t, srv, "CREATE TABLE default.kept (x UInt32) ENGINE = MergeTree ORDER BY x")
	httpQuery(t, srv, "INSERT INTO default.kept SELECT number FROM system.numbers LIMIT 7")

	pid := srv.PID()
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(start))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Stop (kill -0: %v)", pid, err)
	}
	select {
	case <-srv.Exited():
	default:
		t.Error("Exited() not closed after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// Same dir and ports again: the data is still there.
	tcpPort := portOf(t, srv.Addr())
	httpPort := portOf(t, srv.HTTPAddr())
	again, err := chstore.StartLocal(ctx, chstore.LocalServerConfig{Dir: cfg.Dir, TCPPort: tcpPort, HTTPPort: httpPort})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = again.Stop() })
	if again.Addr() != srv.Addr() {
		t.Errorf("restart Addr = %s, want %s", again.Addr(), srv.Addr())
	}
	if got := httpQuery(t, again, "SELECT count() FROM default.kept"); got != "7" {
		t.Errorf("rows after restart = %q, want 7", got)
	}
	start = time.Now()
	if err := again.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("second stop took %v", time.Since(start))
}

func TestStartLocalErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	// A stand-in server that fails the way a bad config makes the real
	// one fail: message on stderr, exit code 70.
	failing := filepath.Join(t.TempDir(), "clickhouse-server")
	script := "#!/bin/sh\necho 'Code: 70. Not found: mark_cache_size' >&2\nexit 70\n"
	if err := os.WriteFile(failing, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cfg     chstore.LocalServerConfig
		wantErr []string
		wantIs  error
	}{
		{"missing binary", chstore.LocalServerConfig{Dir: t.TempDir(), Binary: "/nonexistent/clickhouse-server"},
			[]string{"apt-get install clickhouse-server", "go tool task deps"}, chstore.ErrServerNotInstalled},
		{"no dir", chstore.LocalServerConfig{}, []string{"Dir is required"}, nil},
		{"bad port", chstore.LocalServerConfig{Dir: t.TempDir(), TCPPort: 70000}, []string{"out of range"}, nil},
		{"same ports", chstore.LocalServerConfig{Dir: t.TempDir(), TCPPort: 19999, HTTPPort: 19999}, []string{"both 19999"}, nil},
		{"busy port", chstore.LocalServerConfig{Dir: t.TempDir(), TCPPort: busyPort, HTTPPort: 0},
			[]string{"port " + strconv.Itoa(busyPort) + " is busy"}, nil},
		{"early exit shows the log tail", chstore.LocalServerConfig{Dir: t.TempDir(), Binary: failing},
			[]string{"exited during start", "exit status 70", "Not found: mark_cache_size"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv, err := chstore.StartLocal(ctx, tt.cfg)
			if err == nil {
				_ = srv.Stop()
				t.Fatal("StartLocal succeeded, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
		})
	}
}

func TestSharedServerIsUsable(t *testing.T) {
	conn, database := chtest.NewDatabase(t, server)
	var current string
	if err := conn.QueryRow(context.Background(), "SELECT currentDatabase()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	if current != database {
		t.Errorf("currentDatabase() = %q, want %q", current, database)
	}
}

// httpQuery runs a statement over the server's HTTP interface, which is
// independent of the driver under test.
func httpQuery(t *testing.T, srv *chstore.LocalServer, query string) string {
	t.Helper()
	resp, err := noKeepAlive.Post("http://"+srv.HTTPAddr()+"/", "text/plain", strings.NewReader(query))
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", query, resp.StatusCode, body)
	}
	return strings.TrimSpace(string(body))
}

func assertLoopback(t *testing.T, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Errorf("address %q is not on 127.0.0.1 (%v)", addr, err)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// noKeepAlive leaves no idle connection behind for the server to wait
// for when it shuts down.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
