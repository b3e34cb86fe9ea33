package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// RbldnsdBin is Debian's rbldnsd (shared/peers.md section 4).
const RbldnsdBin = "/usr/sbin/rbldnsd"

// RbldnsdConfig says what a private rbldnsd serves.
type RbldnsdConfig struct {
	// Dir holds the zone files and rbldnsd.log. rbldnsd drops root for
	// its own user, so Start makes Dir and the files readable by others.
	Dir string
	// Files are the zone files Start writes into Dir, by name.
	Files map[string]string
	// Addr is the UDP address on 127.0.0.1; empty picks a free port.
	Addr string
	// Zones are rbldnsd's "name:type:file" specs, files relative to Dir.
	Zones []string
	// Ready is a name rbldnsd must answer (a listed test entry, e.g.
	// "2.0.0.127.bl.test") before Start returns.
	Ready string
	// PIDFile, when set, is where rbldnsd writes its pid, so a later
	// process can stop one that outlived its parent.
	PIDFile string
	// CheckEvery is how often rbldnsd looks for changed zone files;
	// 1 s when zero.
	CheckEvery time.Duration
}

// Rbldnsd is a running private rbldnsd, in the foreground, stopped by its
// own pid.
type Rbldnsd struct {
	// Addr is the UDP address it answers on.
	Addr string
	// Dir holds its zone files.
	Dir string
	// LogPath is its standard output and error.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRbldnsd starts rbldnsd and returns once it answers cfg.Ready.
func StartRbldnsd(ctx context.Context, cfg RbldnsdConfig) (*Rbldnsd, error) {
	if _, err := os.Stat(RbldnsdBin); err != nil {
		return nil, fmt.Errorf("%s is not installed (go tool task deps installs it): %w", RbldnsdBin, err)
	}
	addr := cfg.Addr
	if addr == "" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choose a free UDP port: %w", err)
		}
		addr = pc.LocalAddr().String()
		pc.Close()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("rbldnsd address %q: want 127.0.0.1:PORT", addr)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	check := cfg.CheckEvery
	if check <= 0 {
		check = time.Second
	}
	args := []string{"-n", "-b", host + "/" + port, "-w", cfg.Dir, "-t", "60", "-c", fmt.Sprintf("%ds", max(1, int(check.Seconds())))}
	if cfg.PIDFile != "" {
		args = append(args, "-p", cfg.PIDFile)
	}
	r := &Rbldnsd{Addr: addr, Dir: cfg.Dir, LogPath: filepath.Join(cfg.Dir, "rbldnsd.log"), exited: make(chan struct{})}
	for name, content := range cfg.Files {
		if err := r.writeZone(name, content); err != nil {
			return nil, err
		}
	}
	log, err := os.Create(r.LogPath)
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command(RbldnsdBin, append(args, cfg.Zones...)...)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	r.cmd.SysProcAttr = procAttr()
	if err := r.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start rbldnsd: %w", err)
	}
	go func() {
		_ = r.cmd.Wait()
		log.Close()
		close(r.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	for !r.Answers(cfg.Ready) {
		select {
		case <-r.exited:
			return nil, fmt.Errorf("rbldnsd exited at start: %s", strings.TrimSpace(r.Log()))
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("rbldnsd on %s does not answer %s: %w", addr, cfg.Ready, ctx.Err()), r.Stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return r, nil
}

// Answers reports whether rbldnsd lists name (an A record, NOERROR).
func (r *Rbldnsd) Answers(name string) bool {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	client := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	resp, _, err := client.Exchange(q, r.Addr)
	return err == nil && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0
}

// Rewrite replaces a zone file and makes rbldnsd read it now (SIGHUP).
func (r *Rbldnsd) Rewrite(name, content string) error {
	if err := r.writeZone(name, content); err != nil {
		return err
	}
	return r.cmd.Process.Signal(syscall.SIGHUP)
}

func (r *Rbldnsd) writeZone(name, content string) error {
	path := filepath.Join(r.Dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		return err
	}
	// rbldnsd compares modification times at one-second resolution: a
	// rewrite within the second of the last load would go unseen.
	later := time.Now().Add(2 * time.Second)
	return os.Chtimes(path, later, later)
}

// Log returns what rbldnsd has written.
func (r *Rbldnsd) Log() string {
	b, _ := os.ReadFile(r.LogPath)
	return string(b)
}

// Stop sends SIGTERM to rbldnsd's pid and waits; SIGKILL after
// StopTimeout.
func (r *Rbldnsd) Stop() error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return nil
	case <-time.After(StopTimeout):
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	return fmt.Errorf("rbldnsd (pid %d) ignored SIGTERM and was killed", r.cmd.Process.Pid)
}

// Pid is rbldnsd's process id.
func (r *Rbldnsd) Pid() int { return r.cmd.Process.Pid }
