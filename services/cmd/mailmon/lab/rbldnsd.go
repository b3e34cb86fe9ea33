package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// rbldnsdBin is Debian's rbldnsd.
const rbldnsdBin = "/usr/sbin/rbldnsd"

func checkRbldnsd() error {
	if _, err := os.Stat(rbldnsdBin); err != nil {
		return fmt.Errorf("%s is not installed (go tool task deps installs it)", rbldnsdBin)
	}
	return nil
}

// rblZoneFile lists 127.0.0.3, the spammer's pool, and the self-test entry;
// never 127.0.0.1 (RFC 5782). Every listing answers 127.0.0.2 with a TXT
// that says the lab listed it on purpose ($ is the queried IP).
const rblZoneFile = `:127.0.0.2:Listed in the mailmon lab blocklist on purpose: $ sends the lab spammer's mail
` + selfTestListed + `
` + ipOut3 + `
`

// rbldnsd is a running rbldnsd child serving rblZone over UDP.
type rbldnsd struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRbldnsd writes the zone into dir and runs rbldnsd in the
// foreground on addr (dns_sweeper.resolver), then waits until it answers
// the self-test entry.
func startRbldnsd(ctx context.Context, dir, addr string) (*rbldnsd, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("dns_sweeper.resolver %q: the lab's rbldnsd runs on 127.0.0.1:PORT", addr)
	}
	// rbldnsd drops root for user rbldns, who must read the zone.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "rbl.zone"), []byte(rblZoneFile), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "rbldnsd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(rbldnsdBin, "-n", "-b", host+"/"+port, "-w", dir, "-p", filepath.Join(dir, "rbldnsd.pid"), "-t", "60", "-c", "5s",
		rblZone+":ip4set:rbl.zone")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start rbldnsd: %w", err)
	}
	r := &rbldnsd{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(r.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q := new(dns.Msg)
	rev, _ := dns.ReverseAddr(selfTestListed)
	q.SetQuestion(rev[:len(rev)-len("in-addr.arpa.")]+rblZone+".", dns.TypeA)
	client := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	for {
		if resp, _, err := client.Exchange(q, addr); err == nil && len(resp.Answer) > 0 {
			return r, nil
		}
		select {
		case <-r.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "rbldnsd.log"))
			return nil, fmt.Errorf("rbldnsd exited at start: %s", b)
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("rbldnsd on %s does not answer: %w", addr, ctx.Err()), r.stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to rbldnsd's pid and waits, SIGKILL after 10 s.
func (r *rbldnsd) stop() error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	return fmt.Errorf("rbldnsd (pid %d) ignored SIGTERM and was killed", r.cmd.Process.Pid)
}
