package mailboxretriever

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Real Postfix and Dovecot on loopback, configured as in shared/peers.md
// section 3, each in its own short temp dir (unix socket paths are limited
// to 108 bytes) and on ports picked free, so tests of other packages
// running the same peers at the same time do not collide.

const (
	postfixBin = "/usr/sbin/postfix"
	dovecotBin = "/usr/sbin/dovecot"
)

// needPeers skips the test when Postfix or Dovecot is missing, except in
// CI (the CI environment variable is set), which installs them through
// `go tool task deps`: there a missing peer fails the test.
func needPeers(t *testing.T) {
	t.Helper()
	for _, b := range []string{postfixBin, dovecotBin, "/usr/bin/sievec"} {
		if _, err := os.Stat(b); err != nil {
			skipOrFailInCI(t, "%s is not installed (go tool task deps installs it)", b)
		}
	}
}

// skipOrFailInCI skips the test, or fails it when CI is set.
func skipOrFailInCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set: "+format, args...)
	}
	t.Skipf(format, args...)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// shortTempDir is a temp dir with a short path, readable by the peers'
// unprivileged users, removed after the test.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// banner reports whether the server on port greets with prefix.
func banner(port int, prefix string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, prefix)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type dovecot struct {
	dir              string
	imap, pop3, lmtp int
	cmd              *exec.Cmd
}

// startDovecot runs Dovecot with users alice and bob (password "secret")
// on inbox.test, and a global sieve script filing X-Spam-Flag: YES into
// Junk.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	d := &dovecot{dir: shortTempDir(t, "mm-dv"), imap: freePort(t), pop3: freePort(t), lmtp: freePort(t)}
	conf := filepath.Join(d.dir, "dovecot.conf")
	writeFile(t, conf, fmt.Sprintf(`protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mm-dovecot-%[2]d
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
  postmaster_address = postmaster@inbox.test
}
plugin {
  sieve_before = %[1]s/sieve/spam.sieve
}
`, d.dir, d.imap, d.pop3, d.lmtp))
	writeFile(t, filepath.Join(d.dir, "users"), "alice@inbox.test:{PLAIN}secret\nbob@inbox.test:{PLAIN}secret\n")
	writeFile(t, filepath.Join(d.dir, "sieve", "spam.sieve"), `require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" {
  fileinto :create "Junk";
  stop;
}
`)
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		skipOrFailInCI(t, "no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if err := os.Chown(filepath.Join(d.dir, "mail"), uid, gid); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sievec", "-c", conf, filepath.Join(d.dir, "sieve", "spam.sieve")).CombinedOutput(); err != nil {
		t.Fatalf("sievec: %v\n%s", err, out)
	}
	log, err := os.Create(filepath.Join(d.dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dovecotBin, "-F", "-c", conf)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		_ = d.cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", tail(string(b), 40))
		}
	})
	waitFor(t, 15*time.Second, "dovecot", func() bool { return banner(d.imap, "* OK") && banner(d.lmtp, "220") })
	return d
}

// maildirCount counts the messages of a user's folder ("" is INBOX).
func (d *dovecot) maildirCount(user, folder string) int {
	dir := filepath.Join(d.dir, "mail", "inbox.test", user, "Maildir")
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

type postfix struct {
	etc  string
	smtp int
}

// startPostfix runs Postfix relaying inbox.test to Dovecot's LMTP. Mail
// with "X-Probe-Discard: yes" is accepted and silently discarded, which is
// how a test makes a probe go missing.
func startPostfix(t *testing.T, lmtpPort int) *postfix {
	t.Helper()
	run := shortTempDir(t, "mm-pf")
	p := &postfix{etc: filepath.Join(run, "etc"), smtp: freePort(t)}
	relay := freePort(t) // nothing listens: only other domains go there
	writeFile(t, filepath.Join(p.etc, "main.cf"), fmt.Sprintf(`compatibility_level = 3.6
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
virtual_mailbox_domains = inbox.test
virtual_transport = lmtp:inet:127.0.0.1:%[2]d
relayhost = [127.0.0.1]:%[3]d
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 15s
header_checks = regexp:%[1]s/etc/header_checks
`, run, lmtpPort, relay))
	writeFile(t, filepath.Join(p.etc, "header_checks"), "/^X-Probe-Discard: yes/ DISCARD probe told to vanish\n")
	writeFile(t, filepath.Join(p.etc, "master.cf"), fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
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
	for _, sub := range []string{"spool", "data"} {
		if err := os.MkdirAll(filepath.Join(run, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		skipOrFailInCI(t, "no postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	if err := os.Chown(filepath.Join(run, "data"), uid, 0); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute) // a fresh main.cf makes postfix sleep 2 s
	for _, f := range []string{"main.cf", "master.cf"} {
		_ = os.Chtimes(filepath.Join(p.etc, f), old, old)
	}
	if out, err := exec.Command(postfixBin, "-c", p.etc, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(run, "spool", "pid", "master.pid"))
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) && alive(pid) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(run, "maillog"))
			t.Logf("postfix maillog:\n%s", tail(string(b), 40))
		}
	})
	waitFor(t, 15*time.Second, "postfix", func() bool { return banner(p.smtp, "220") })
	return p
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
