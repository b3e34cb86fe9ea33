// Package peers starts private instances of Debian's Postfix, Dovecot and
// rbldnsd, and an authoritative DNS server, on loopback for real-peer tests,
// the load-test scenarios and the lab, configured as in shared/peers.md
// sections 3 and 4: each under a directory of its own, on
// ports picked free on 127.0.0.1, stopped by its own pid, every step
// bounded in time.
//
// It is not under services/internal/ because the load-test scenarios (a
// main package outside services/) use it too, and Go lets only code under
// services/ import services/internal/.
//
// Nothing here takes a *testing.T: a test registers the Close methods
// (stop, then remove the directory) with t.Cleanup, and loadtest, which
// keeps its directories for inspection, defers the Stop methods.
package peers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// PostfixBin is Debian's postfix command (start, stop, logrotate).
	PostfixBin = "/usr/sbin/postfix"
	// DovecotBin is Debian's dovecot master.
	DovecotBin = "/usr/sbin/dovecot"
	// SievecBin compiles the global sieve script, which Dovecot will not
	// compile itself (sieve_before scripts must be precompiled).
	SievecBin = "/usr/bin/sievec"

	// StartTimeout bounds each start, from writing the configs to the
	// first banner. A start takes a second or two; `postfix start` alone
	// took over 15 s on a 2-core machine running several test binaries.
	StartTimeout = 60 * time.Second
	// StopTimeout is how long a peer gets to exit after SIGTERM before it
	// is killed.
	StopTimeout = 10 * time.Second
)

// CheckPostfix reports why a private Postfix cannot run here, or nil.
// It needs root: the queue and config directories must be root-owned and
// the data directory is handed to user postfix.
func CheckPostfix() error {
	if _, err := os.Stat(PostfixBin); err != nil {
		return fmt.Errorf("%s is not installed (go tool task deps installs it)", PostfixBin)
	}
	if os.Geteuid() != 0 {
		return errors.New("running a private postfix instance needs root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("no postfix user: %w", err)
	}
	return nil
}

// CheckDovecot reports why a private Dovecot cannot run here, or nil.
// It needs root to hand the mail directory to user nobody, as whom mail is
// stored (Dovecot refuses to store mail as uid 0).
func CheckDovecot() error {
	for _, b := range []string{DovecotBin, SievecBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is not installed (go tool task deps installs it)", b)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("running a private dovecot instance needs root")
	}
	if _, _, err := userIDs("nobody"); err != nil {
		return fmt.Errorf("dovecot stores mail as nobody: %w", err)
	}
	return nil
}

// peerDir returns dir, created world-traversable, or when dir is empty a
// new temp dir with a short path: Postfix's and Dovecot's unprivileged
// processes must reach it (t.TempDir is 0700 under a 0700 parent), and
// their unix socket paths are limited to 108 bytes. own tells whether
// Close removes it.
func peerDir(dir, prefix string) (path string, own bool, err error) {
	if dir == "" {
		dir, err = os.MkdirTemp("", prefix)
		if err != nil {
			return "", false, err
		}
		own = true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		if own {
			os.RemoveAll(dir)
		}
		return "", false, err
	}
	return dir, own, nil
}

// freePorts picks n distinct free ports on 127.0.0.1, holding all of them
// open until every one is chosen so none is returned twice.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choose a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// greets reports whether the server on the loopback port greets with
// prefix.
func greets(port int, prefix string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, prefix)
}

// waitUntil polls ok every 50 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, what string, ok func() bool) error {
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not up: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// writeFile writes content to path, creating its directory.
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// fileTail is the last n lines of the file at path, for error messages
// and test logs.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pidAlive reports whether pid runs and is not a zombie: a daemon that was
// re-parented stays a zombie for a while after it exited, until pid 1
// reaps it (peers.md).
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// userIDs is the uid and gid of a user.
func userIDs(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	return uid, gid, nil
}
