package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds the wait for the child's /readyz: it starts a
	// local clickhouse-server and applies the migrations first.
	readyTimeout = 90 * time.Second
	// stopTimeout bounds the wait after SIGTERM before SIGKILL. The child
	// drains its workers and then stops its own clickhouse-server, which
	// can take about 20 s when a query hangs.
	stopTimeout = 45 * time.Second
	// logTailBytes is how much of the child's log an error quotes.
	logTailBytes = 4096
)

// buildMailmon compiles the mailmon command into dir and returns its path.
func buildMailmon(ctx context.Context, moduleRoot, dir string) (string, error) {
	return goBuild(ctx, moduleRoot, "./services/cmd/mailmon", filepath.Join(dir, "mailmon"))
}

// goBuild compiles pkg, at the versions the module requires, into bin.
func goBuild(ctx context.Context, moduleRoot, pkg, bin string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// ports are the loopback ports of one run, all chosen free.
type ports struct {
	NATS, ClickHouseTCP, ClickHouseHTTP, HTTP int
}

func freePorts() (ports, error) {
	// Hold every listener until all are chosen so no two are the same.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	next := func() (int, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("choose a free port: %w", err)
		}
		lns = append(lns, ln)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	var p ports
	for _, dst := range []*int{&p.NATS, &p.ClickHouseTCP, &p.ClickHouseHTTP, &p.HTTP} {
		port, err := next()
		if err != nil {
			return ports{}, err
		}
		*dst = port
	}
	return p, nil
}

// database is the ClickHouse database the child's config names.
const database = "mailmon"

// writeConfig writes the child's config file into dir: embedded NATS and a
// local ClickHouse under dir, everything on loopback, warnings only.
func writeConfig(dir string, p ports, extra string) (string, error) {
	// %q quotes like YAML's double-quoted strings for any path we create.
	// The head ends inside http:, so pprof joins that block.
	doc := childConfigHead("# Written by the mailmon load-test harness for one run.", dir, p.HTTP, p.NATS) + fmt.Sprintf(`  pprof: true
clickhouse:
  addr: "127.0.0.1:%d"
  database: %s
  local:
    enabled: true
    dir: %q
    tcp_port: %d
    http_port: %d
`, p.ClickHouseTCP, database, filepath.Join(dir, "clickhouse"), p.ClickHouseTCP, p.ClickHouseHTTP) + extra
	path := filepath.Join(dir, "mailmon.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// child is a running `mailmon run` process.
type child struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // valid after exited is closed
}

// startChild starts `mailmon run` with the given workers; its output goes
// to a log file next to the config.
func startChild(bin, configPath, workers string) (*child, error) {
	logPath := filepath.Join(filepath.Dir(configPath), "mailmon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "-config", configPath, "-workers", workers)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start mailmon: %w", err)
	}
	c := &child{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

// waitReady polls /readyz until it answers 200, the child exits, or the
// wait times out; a failure quotes the end of the child's log.
func (c *child) waitReady(ctx context.Context, httpPort int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/readyz"
	client := &http.Client{Timeout: 6 * time.Second}
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-c.exited:
			return fmt.Errorf("mailmon exited before it was ready (%v); its log ends:\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("mailmon not ready after %s (last /readyz: %s); its log ends:\n%s", readyTimeout, last, c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// failed reports, without waiting, whether the child has exited.
func (c *child) failed() error {
	select {
	case <-c.exited:
		return fmt.Errorf("mailmon exited during the run (%v); its log ends:\n%s", c.waitErr, c.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to stopTimeout, then sends SIGKILL. It
// signals only the child's own pid.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM mailmon (pid %d): %w", c.cmd.Process.Pid, err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL mailmon (pid %d): %w", c.cmd.Process.Pid, err)
	}
	<-c.exited
	return fmt.Errorf("mailmon (pid %d) ignored SIGTERM for %s and was killed", c.cmd.Process.Pid, stopTimeout)
}

func (c *child) logTail() string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > logTailBytes {
		f.Seek(st.Size()-logTailBytes, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	if len(bytes.TrimSpace(data)) == 0 {
		return "(empty)"
	}
	return string(bytes.TrimSpace(data))
}
