package chstore

import (
	"bytes"
	"context"
	"encoding/xml"
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
	"sync"
	"syscall"
	"text/template"
	"time"
)

// LocalServerConfig says where and how to run a local clickhouse-server.
type LocalServerConfig struct {
	// Dir holds the rendered config.xml, the data, tmp and log folders. The
	// data survives a restart with the same Dir.
	Dir string
	// TCPPort is the native-protocol port; HTTPPort serves /ping. Both bind
	// 127.0.0.1 only. Zero picks a free port.
	TCPPort, HTTPPort int
	// Binary is the server executable. Empty means clickhouse-server from
	// PATH (or /usr/sbin, where Debian puts it), then `clickhouse server`.
	Binary string
}

// LocalServer is a clickhouse-server child process started by StartLocal.
type LocalServer struct {
	cmd      *exec.Cmd
	dir      string
	tcpPort  int
	httpPort int

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // the process exit status; read after exited is closed

	stopOnce sync.Once
	stopErr  error
}

const (
	// startTimeout bounds the wait for /ping. A large existing data dir
	// makes the first start slower, hence more than the usual half second.
	startTimeout = 60 * time.Second
	// stopTimeout bounds the wait after SIGTERM. A server stuck in a query
	// has been seen to need about 11 s to exit.
	stopTimeout = 20 * time.Second
	// portRetries covers the small race between choosing a free port and
	// the server binding it.
	portRetries = 3
)

// InstallHint tells how to get clickhouse-server on the machine.
const InstallHint = "install it with `apt-get install clickhouse-server` (Debian/Ubuntu) or `go tool task deps`"

// ErrServerNotInstalled is returned (wrapped) when no ClickHouse server
// binary can be found.
var ErrServerNotInstalled = errors.New("clickhouse-server not found; " + InstallHint)

// StartLocal writes the project's minimal server config into cfg.Dir,
// starts clickhouse-server as a child process bound to 127.0.0.1 and waits
// until it answers /ping. The caller must call Stop.
func StartLocal(ctx context.Context, cfg LocalServerConfig) (*LocalServer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("chstore: local server: Dir is required")
	}
	for _, p := range []int{cfg.TCPPort, cfg.HTTPPort} {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("chstore: local server: port %d out of range", p)
		}
	}
	if cfg.TCPPort != 0 && cfg.TCPPort == cfg.HTTPPort {
		return nil, fmt.Errorf("chstore: local server: tcp and http port are both %d", cfg.TCPPort)
	}
	binary, args, err := findServerBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("chstore: local server: %w", err)
	}
	for _, sub := range []string{"data", "tmp", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("chstore: local server: %w", err)
		}
	}

	autoPorts := cfg.TCPPort == 0 || cfg.HTTPPort == 0
	for attempt := 1; ; attempt++ {
		srv, err := startOnce(ctx, binary, args, dir, cfg.TCPPort, cfg.HTTPPort)
		if err == nil {
			return srv, nil
		}
		if !autoPorts || attempt == portRetries || !errors.Is(err, errAddrInUse) {
			return nil, err
		}
	}
}

var errAddrInUse = errors.New("address already in use")

func startOnce(ctx context.Context, binary string, args []string, dir string, tcpPort, httpPort int) (*LocalServer, error) {
	var err error
	if tcpPort, err = portOrFree(tcpPort); err != nil {
		return nil, err
	}
	if httpPort, err = portOrFree(httpPort); err != nil {
		return nil, err
	}
	if tcpPort == httpPort {
		return nil, fmt.Errorf("chstore: local server: picked the same port twice: %w", errAddrInUse)
	}
	// A server already listening on our port would answer /ping in place
	// of ours, so refuse to start next to it.
	for _, p := range []int{tcpPort, httpPort} {
		if err := checkPortFree(p); err != nil {
			return nil, err
		}
	}

	configPath := filepath.Join(dir, "config.xml")
	if err := writeServerConfig(configPath, serverConfig{Dir: dir, TCPPort: tcpPort, HTTPPort: httpPort}); err != nil {
		return nil, err
	}
	stdoutPath := filepath.Join(dir, "log", "stdout.log")
	out, err := os.OpenFile(stdoutPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("chstore: local server: %w", err)
	}
	defer out.Close() // the child keeps its own copy of the descriptor

	// Remember where the logs ended before this start, so an early-exit
	// error shows this run's lines and not an old run's.
	errLogPath := filepath.Join(dir, "log", "server.err.log")
	errLogStart := fileSize(errLogPath)
	stdoutStart := fileSize(stdoutPath)

	cmd := exec.Command(binary, append(args, "--config-file="+configPath)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chstore: local server: start %s: %w", binary, err)
	}
	srv := &LocalServer{cmd: cmd, dir: dir, tcpPort: tcpPort, httpPort: httpPort, exited: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		close(srv.exited)
	}()

	if err := srv.waitReady(ctx); err != nil {
		select {
		case <-srv.exited:
			tail := logTail(errLogPath, errLogStart) + logTail(stdoutPath, stdoutStart)
			err = fmt.Errorf("chstore: local server exited during start (%v); log tail:\n%s", srv.waitErr, tail)
			if strings.Contains(tail, "Address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return nil, err
		default:
		}
		_ = srv.Stop()
		return nil, err
	}
	return srv, nil
}

// waitReady polls /ping until it answers "Ok.", the process exits or the
// start bound passes.
func (s *LocalServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// No keep-alive: the server waits for open connections when it shuts
	// down, and an idle one left by this probe made every Stop take ~10 s.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + s.HTTPAddr() + "/ping"
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if pingOK(ctx, client, url) {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("chstore: local server exited during start")
		case <-ctx.Done():
			return fmt.Errorf("chstore: local server not ready on %s: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

func pingOK(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "Ok."
}

// Addr is the native-protocol address, host:port.
func (s *LocalServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tcpPort)) }

// HTTPAddr is the HTTP interface address, host:port.
func (s *LocalServer) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort))
}

// PID is the server's process id.
func (s *LocalServer) PID() int { return s.cmd.Process.Pid }

// Dir is the absolute folder holding config, data and logs.
func (s *LocalServer) Dir() string { return s.dir }

// Exited is closed when the server process has ended, whether by Stop or
// on its own (a crash while running is worth noticing).
func (s *LocalServer) Exited() <-chan struct{} { return s.exited }

// Stop sends SIGTERM to the server's pid, waits for it to exit and sends
// SIGKILL if it has not exited within a bound. It is safe to call more
// than once; later calls return the first result.
func (s *LocalServer) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *LocalServer) stop() error {
	select {
	case <-s.exited:
		return nil // already gone; nothing to signal
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chstore: local server: SIGTERM pid %d: %w", s.PID(), err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		return nil
	case <-timer.C:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chstore: local server: SIGKILL pid %d: %w", s.PID(), err)
	}
	<-s.exited
	return fmt.Errorf("chstore: local server pid %d ignored SIGTERM for %v and was killed", s.PID(), stopTimeout)
}

// findServerBinary resolves the executable and the arguments that come
// before --config-file.
func findServerBinary(configured string) (string, []string, error) {
	if configured != "" {
		path, err := exec.LookPath(configured)
		if err != nil {
			return "", nil, fmt.Errorf("chstore: local server binary %q: %v: %w", configured, err, ErrServerNotInstalled)
		}
		if filepath.Base(path) == "clickhouse" {
			return path, []string{"server"}, nil
		}
		return path, nil, nil
	}
	if path, err := exec.LookPath("clickhouse-server"); err == nil {
		return path, nil, nil
	}
	// /usr/sbin is often missing from a non-root PATH.
	for _, path := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if isExecutable(path) {
			return path, nil, nil
		}
	}
	if path, err := exec.LookPath("clickhouse"); err == nil {
		return path, []string{"server"}, nil
	}
	return "", nil, fmt.Errorf("chstore: %w", ErrServerNotInstalled)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chstore: local server: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func checkPortFree(port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("chstore: local server: port %d is busy (another ClickHouse still running?): %w", port, errAddrInUse)
	}
	return ln.Close()
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns at most the last 4 KiB written to path after offset.
func logTail(path string, offset int64) string {
	const maxTail = 4 << 10
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	size := fileSize(path)
	if size-offset > maxTail {
		offset = size - maxTail
	}
	if offset > size {
		offset = 0 // the file was rotated or truncated
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, size-offset))
	if err != nil {
		return ""
	}
	return string(b)
}

// serverConfig fills serverConfigTemplate.
type serverConfig struct {
	Dir      string
	TCPPort  int
	HTTPPort int
}

// serverConfigTemplate is the smallest config Debian's ClickHouse 18.16
// accepts that is also valid for current releases: the root element is
// <yandex> (newer servers accept it too), mark_cache_size is mandatory on
// 18.16, users live in the same file, and LowCardinality needs the
// experimental flag on 18.16. The server runs in UTC so day partitions
// (toYYYYMMDD) are UTC days, matching DropExpiredPartitions.
var serverConfigTemplate = template.Must(template.New("config.xml").Funcs(template.FuncMap{"xml": xmlEscape}).Parse(
	`<?xml version="1.0"?>
<!-- Written by mailmon on every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{{xml .Dir}}/log/server.log</log>
        <errorlog>{{xml .Dir}}/log/server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <!-- Shutdown waits for idle keep-alive connections; 10 s (the
         default) made every stop that slow. -->
    <keep_alive_timeout>2</keep_alive_timeout>
    <path>{{xml .Dir}}/data/</path>
    <tmp_path>{{xml .Dir}}/tmp/</tmp_path>
    <user_files_path>{{xml .Dir}}/data/user_files/</user_files_path>
    <format_schema_path>{{xml .Dir}}/data/format_schemas/</format_schema_path>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <users_config>config.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <profiles>
        <default>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</yandex>
`))

func writeServerConfig(path string, c serverConfig) error {
	var buf bytes.Buffer
	if err := serverConfigTemplate.Execute(&buf, c); err != nil {
		return fmt.Errorf("chstore: local server config: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
		return fmt.Errorf("chstore: local server config: %w", err)
	}
	return nil
}

func xmlEscape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}
