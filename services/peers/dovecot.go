package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DovecotConfig is what a caller changes in the verified configuration.
type DovecotConfig struct {
	// Dir holds dovecot.conf, the users file, the sieve script, the
	// runtime and state directories and the mail. Its parent must be
	// traversable by user nobody, who stores the mail.
	// Empty: a new temp dir with a short path, removed by Close.
	Dir string
	// Domain is the users' domain; "inbox.test" if empty.
	Domain string
	// Users are the local parts of the accounts, all with Password.
	Users []string
	// Addresses are more accounts, as full addresses in any domain, with
	// the same Password: one instance can hold the mailboxes of several
	// domains (the lab's providers). Their mail is stored under
	// Dir/mail/DOMAIN/LOCALPART.
	Addresses []string
	// Password is every user's password; "secret" if empty.
	Password string
	// IMAPPort is the IMAP port on 127.0.0.1; 0 picks a free one. A
	// long-lived instance (the lab) uses a fixed one its clients are
	// configured with.
	IMAPPort int
}

// Dovecot is a running private Dovecot: IMAP, POP3 and LMTP on 127.0.0.1,
// with a global sieve script that files X-Spam-Flag: YES into Junk, and
// mail stored as Maildir under Dir/mail/DOMAIN/USER.
type Dovecot struct {
	// Dir is the instance's directory.
	Dir string
	// Domain is the users' domain.
	Domain string
	// IMAP, POP3 and LMTP are the ports on 127.0.0.1.
	IMAP, POP3, LMTP int

	ownDir bool
	cmd    *exec.Cmd
	exited chan struct{}

	mu      sync.Mutex
	stopped bool
}

// dovecotConf is shared/peers.md's dovecot.conf: arguments 1 dir, 2-4
// IMAP, POP3 and LMTP ports, 5 domain. The instance_name (with the IMAP
// port, unique while it runs) and base_dir keep it apart from the system's
// instance and from other tests' ones.
const dovecotConf = `protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mm-peers-dovecot-%[2]d
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
`

const spamSieve = `require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" {
  fileinto :create "Junk";
  stop;
}
`

// StartDovecot writes the configuration, compiles the sieve script, runs
// `dovecot -F` as a child and waits for the IMAP and LMTP banners, all
// within StartTimeout or until ctx ends (ctx does not bound the running
// Dovecot: Stop does). On error nothing is left running.
func StartDovecot(ctx context.Context, cfg DovecotConfig) (*Dovecot, error) {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if cfg.Domain == "" {
		cfg.Domain = "inbox.test"
	}
	if cfg.Password == "" {
		cfg.Password = "secret"
	}
	dir, own, err := peerDir(cfg.Dir, "mm-dv-")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{Dir: dir, Domain: cfg.Domain, ownDir: own, exited: make(chan struct{})}
	if err := d.start(ctx, cfg); err != nil {
		// Whatever started is stopped, and the directory made is removed.
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

func (d *Dovecot) start(ctx context.Context, cfg DovecotConfig) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	d.IMAP, d.POP3, d.LMTP = ports[0], ports[1], ports[2]
	if cfg.IMAPPort != 0 {
		d.IMAP = cfg.IMAPPort
	}
	conf := filepath.Join(d.Dir, "dovecot.conf")
	if err := writeFile(conf, fmt.Sprintf(dovecotConf, d.Dir, d.IMAP, d.POP3, d.LMTP, d.Domain)); err != nil {
		return err
	}
	var passwd strings.Builder
	for _, u := range cfg.Users {
		fmt.Fprintf(&passwd, "%s@%s:{PLAIN}%s\n", u, d.Domain, cfg.Password)
	}
	for _, a := range cfg.Addresses {
		local, domain, ok := strings.Cut(a, "@")
		// The address becomes a passwd-file line and a path: nothing that
		// could end the line, split a field or leave the mail directory.
		if !ok || local == "" || domain == "" || strings.ContainsAny(a, ":/\\\r\n\t ") || strings.Contains(a, "..") {
			return fmt.Errorf("dovecot address %q: want local@domain without spaces, colons, slashes or ..", a)
		}
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", a, cfg.Password)
	}
	if err := writeFile(filepath.Join(d.Dir, "users"), passwd.String()); err != nil {
		return err
	}
	sieve := filepath.Join(d.Dir, "sieve", "spam.sieve")
	if err := writeFile(sieve, spamSieve); err != nil {
		return err
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	// Mail cannot be stored as root: the userdb delivers as nobody.
	uid, gid, err := userIDs("nobody")
	if err != nil {
		return fmt.Errorf("dovecot stores mail as nobody: %w", err)
	}
	if err := os.Chown(filepath.Join(d.Dir, "mail"), uid, gid); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, SievecBin, "-c", conf, sieve).CombinedOutput(); err != nil {
		return fmt.Errorf("sievec: %w\n%s", err, out)
	}
	log, err := os.Create(filepath.Join(d.Dir, "stdout.log"))
	if err != nil {
		return err
	}
	// Not CommandContext: the start's deadline must not end the server.
	d.cmd = exec.Command(DovecotBin, "-F", "-c", conf)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = procAttr()
	if err := d.cmd.Start(); err != nil {
		log.Close()
		d.cmd = nil
		return fmt.Errorf("start dovecot: %w", err)
	}
	go func() {
		_ = d.cmd.Wait()
		log.Close()
		close(d.exited)
	}()
	if err := waitUntil(ctx, "dovecot", func() bool { return greets(d.IMAP, "* OK") && greets(d.LMTP, "220") }); err != nil {
		return fmt.Errorf("%w; dovecot.log ends:\n%s", err, d.LogTail(20))
	}
	return nil
}

// LogTail is the last n lines of dovecot.log.
func (d *Dovecot) LogTail(n int) string { return fileTail(filepath.Join(d.Dir, "dovecot.log"), n) }

// Stop sends SIGTERM to Dovecot's master (about 1 s to exit) and waits
// for it, SIGKILL after StopTimeout (reported as an error). The directory
// stays. Only the first call does anything; later ones return nil.
func (d *Dovecot) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	if d.cmd == nil {
		return nil
	}
	return d.stopChild()
}

// Close stops Dovecot and removes its directory if StartDovecot made it.
func (d *Dovecot) Close() error {
	err := d.Stop()
	if d.ownDir {
		err = errors.Join(err, os.RemoveAll(d.Dir))
	}
	return err
}

func (d *Dovecot) stopChild() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(StopTimeout):
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("dovecot (pid %d) ignored SIGTERM for %s and was killed", d.cmd.Process.Pid, StopTimeout)
}

// maildir is a user's Maildir: a local part of Domain, or a full address
// of Addresses.
func (d *Dovecot) maildir(user string) string {
	if local, domain, ok := strings.Cut(user, "@"); ok {
		return MaildirOf(d.Dir, domain, local)
	}
	return MaildirOf(d.Dir, d.Domain, user)
}

// MaildirOf is where a Dovecot started with Dir dir stores the mail of
// local@domain, so another process (the lab's status command) can count
// it without logging in.
func MaildirOf(dir, domain, local string) string {
	return filepath.Join(dir, "mail", domain, local, "Maildir")
}

// MaildirCount counts the messages in a user's folder ("" is INBOX),
// straight from the Maildir, without IMAP. user is a local part of the
// Domain or a full address of Addresses.
func (d *Dovecot) MaildirCount(user, folder string) int {
	return CountMaildir(d.maildir(user), folder)
}

// CountMaildir counts the messages in a Maildir's folder ("" is INBOX).
func CountMaildir(maildir, folder string) int {
	dir := maildir
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

// MakeMaildirs creates a user's maildirs (INBOX and Junk) as Dovecot
// would, owned by nobody, before anything is delivered, and returns their
// new/ directories, where delivered messages land: a watch on them can
// then note each message as it is stored.
func (d *Dovecot) MakeMaildirs(user string) ([]string, error) {
	uid, gid, err := userIDs("nobody")
	if err != nil {
		return nil, err
	}
	maildir := d.maildir(user)
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
	domain := filepath.Join(d.Dir, "mail", d.Domain)
	err = filepath.WalkDir(domain, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	return news, err
}
