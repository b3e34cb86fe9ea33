package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Real Postfix and Dovecot on loopback for the probes scenario, configured
// as in shared/peers.md section 3 (and as the mailbox-retriever's real-peer
// tests run them): each under its own directory of the run's temp dir, on
// ports picked free, stopped by its own pid.

const (
	postfixBin  = "/usr/sbin/postfix"
	dovecotBin  = "/usr/sbin/dovecot"
	sievecBin   = "/usr/bin/sievec"
	seedDomain  = "inbox.test"
	seedSecret  = "secret"
	peerStartIn = 15 * time.Second
	peerStopIn  = 10 * time.Second
)

// needMailPeers reports which of Postfix, Dovecot and sievec is missing.
func needMailPeers() error {
	var missing []string
	for _, b := range []string{postfixBin, dovecotBin, sievecBin} {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not installed (go tool task deps installs Postfix and Dovecot)", strings.Join(missing, ", "))
	}
	return nil
}

// freeLoopbackPorts picks n distinct free ports on 127.0.0.1.
func freeLoopbackPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("choose a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// greets reports whether the server on port greets with prefix.
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

// waitUntil polls ok every 50 ms until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %s", what, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func writePeerFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// fileTail is the last n lines of the file at path.
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

// dovecotPeer is a running Dovecot: IMAP, POP3 and LMTP with a global sieve
// script filing X-Spam-Flag: YES into Junk.
type dovecotPeer struct {
	dir              string
	imap, pop3, lmtp int
	cmd              *exec.Cmd
	exited           chan struct{}
}

// startDovecot runs Dovecot under dir with the given users of seedDomain,
// all with password seedSecret.
func startDovecot(ctx context.Context, dir string, users []string) (*dovecotPeer, error) {
	ps, err := freeLoopbackPorts(3)
	if err != nil {
		return nil, err
	}
	d := &dovecotPeer{dir: dir, imap: ps[0], pop3: ps[1], lmtp: ps[2], exited: make(chan struct{})}
	conf := filepath.Join(dir, "dovecot.conf")
	err = writePeerFile(conf, fmt.Sprintf(`protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mm-loadtest-dovecot-%[2]d
log_path = %[1]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[1]s/mail/%%d/%%n
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[3]d
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[4]d
  }
}
protocol lmtp {
  mail_plugins = $mail_plugins sieve
  postmaster_address = postmaster@%[5]s
}
plugin {
  sieve_before = %[1]s/sieve/spam.sieve
}
`, dir, d.imap, d.pop3, d.lmtp, seedDomain))
	if err != nil {
		return nil, err
	}
	var passwd strings.Builder
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s@%s:{PLAIN}%s\n", u, seedDomain, seedSecret)
	}
	if err := writePeerFile(filepath.Join(dir, "users"), passwd.String()); err != nil {
		return nil, err
	}
	sieve := filepath.Join(dir, "sieve", "spam.sieve")
	err = writePeerFile(sieve, `require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" {
  fileinto :create "Junk";
  stop;
}
`)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	// Mail cannot be stored as root: the userdb delivers as nobody.
	nobody, err := userIDs("nobody")
	if err != nil {
		return nil, fmt.Errorf("dovecot stores mail as nobody: %w", err)
	}
	if err := os.Chown(filepath.Join(dir, "mail"), nobody[0], nobody[1]); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, sievecBin, "-c", conf, sieve).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sievec: %w\n%s", err, out)
	}
	log, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(dovecotBin, "-F", "-c", conf)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = childProcAttr()
	if err := d.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start dovecot: %w", err)
	}
	go func() {
		_ = d.cmd.Wait()
		log.Close()
		close(d.exited)
	}()
	if err := waitUntil(ctx, peerStartIn, "dovecot", func() bool { return greets(d.imap, "* OK") && greets(d.lmtp, "220") }); err != nil {
		d.stop()
		return nil, fmt.Errorf("%w; dovecot.log ends:\n%s", err, fileTail(filepath.Join(dir, "dovecot.log"), 20))
	}
	return d, nil
}

// stop sends SIGTERM to Dovecot's master and SIGKILL after peerStopIn.
func (d *dovecotPeer) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(peerStopIn):
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("dovecot (pid %d) ignored SIGTERM for %s and was killed", d.cmd.Process.Pid, peerStopIn)
}

// maildirCount counts the messages in a user's folder ("" is INBOX).
func (d *dovecotPeer) maildirCount(user, folder string) int {
	dir := filepath.Join(d.dir, "mail", seedDomain, user, "Maildir")
	if folder != "" {
		dir = filepath.Join(dir, "."+folder)
	}
	n := 0
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		n += len(entries)
	}
	return n
}

// makeMaildirs creates the maildirs of a user (INBOX and Junk) as Dovecot
// would, owned by nobody, before anything is delivered, and returns their
// new/ directories, where delivered messages land.
func (d *dovecotPeer) makeMaildirs(user string) ([]string, error) {
	nobody, err := userIDs("nobody")
	if err != nil {
		return nil, err
	}
	domain := filepath.Join(d.dir, "mail", seedDomain)
	maildir := filepath.Join(domain, user, "Maildir")
	var news []string
	for _, folder := range []string{maildir, filepath.Join(maildir, ".Junk")} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(folder, sub), 0o700); err != nil {
				return nil, err
			}
		}
		news = append(news, filepath.Join(folder, "new"))
	}
	if err := os.WriteFile(filepath.Join(maildir, ".Junk", "maildirfolder"), nil, 0o600); err != nil {
		return nil, err
	}
	err = filepath.WalkDir(domain, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, nobody[0], nobody[1])
	})
	return news, err
}

// userIDs is the uid and gid of a user.
func userIDs(name string) ([2]int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return [2]int{}, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return [2]int{}, fmt.Errorf("user %s: %w", name, err)
	}
	return [2]int{uid, gid}, nil
}

// postfixPeer is a running Postfix relaying seedDomain to Dovecot's LMTP.
type postfixPeer struct {
	dir  string
	etc  string
	smtp int
	pid  int
}

// startPostfix runs Postfix under dir, listening for SMTP on a free
// loopback port and delivering seedDomain over LMTP to lmtpPort; other
// domains go to a loopback port where nothing listens (they stay queued).
func startPostfix(ctx context.Context, dir string, lmtpPort int) (*postfixPeer, error) {
	ps, err := freeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	p := &postfixPeer{dir: dir, etc: filepath.Join(dir, "etc"), smtp: ps[0]}
	err = writePeerFile(filepath.Join(p.etc, "main.cf"), fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.example.test
mydomain = example.test
myorigin = $mydomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP
biff = no
virtual_mailbox_domains = %[4]s
virtual_transport = lmtp:inet:127.0.0.1:%[2]d
relayhost = [127.0.0.1]:%[3]d
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 15s
`, dir, lmtpPort, ps[1], seedDomain))
	if err != nil {
		return nil, err
	}
	err = writePeerFile(filepath.Join(p.etc, "master.cf"), fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
lmtp       unix  - - n - - lmtp
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
`, p.smtp))
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"spool", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("no postfix user: %w", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, 0); err != nil {
		return nil, err
	}
	old := time.Now().Add(-time.Minute) // a fresh main.cf makes postfix sleep 2 s
	for _, f := range []string{"main.cf", "master.cf"} {
		_ = os.Chtimes(filepath.Join(p.etc, f), old, old)
	}
	if out, err := exec.CommandContext(ctx, postfixBin, "-c", p.etc, "start").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postfix start: %w\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "spool", "pid", "master.pid"))
	if err == nil {
		p.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if err != nil {
		return nil, fmt.Errorf("postfix master.pid: %w", err)
	}
	if err := waitUntil(ctx, peerStartIn, "postfix", func() bool { return greets(p.smtp, "220") }); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; maillog ends:\n%s", err, fileTail(filepath.Join(dir, "maillog"), 20))
	}
	return p, nil
}

// stop sends SIGTERM to Postfix's master (which stops its children) and
// SIGKILL after peerStopIn.
func (p *postfixPeer) stop() error {
	proc, err := os.FindProcess(p.pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		return fmt.Errorf("SIGTERM postfix (pid %d): %w", p.pid, err)
	}
	deadline := time.Now().Add(peerStopIn)
	for time.Now().Before(deadline) {
		if !pidAlive(p.pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = proc.Kill()
	return fmt.Errorf("postfix (pid %d) ignored SIGTERM for %s and was killed", p.pid, peerStopIn)
}

// pidAlive reports whether pid runs and is not a zombie.
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
