package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostfixConfig is what a caller changes in the verified configuration.
type PostfixConfig struct {
	// Dir holds etc/ (the config directory), spool/ (the queue), data/ and
	// the maillog file. Its parent must be traversable by user postfix.
	// Empty: a new temp dir with a short path, removed by Close.
	Dir string
	// Dovecot, when set, is where Postfix delivers mail for the Dovecot's
	// domain, over LMTP (virtual_mailbox_domains and virtual_transport).
	Dovecot *Dovecot
	// Main adds main.cf parameters or replaces the standard ones (for
	// example relayhost, smtpd_recipient_restrictions, header_checks,
	// syslog_name). Values are written as given, so Postfix's own
	// expansion works: "regexp:$config_directory/header_checks" names a
	// file of Files. Without a relayhost, mail for any other domain goes to
	// a loopback port where nothing listens and stays queued, so nothing
	// ever leaves the machine.
	Main map[string]string
	// Master adds master.cf lines after the standard services, e.g.
	// "ndr unix - - n - - smtp -o syslog_name=postfix-ndr".
	Master []string
	// Files are written into the config directory before the start, by
	// name (header_checks, maps).
	Files map[string]string
	// SMTPPort is the port of the smtpd on 127.0.0.1; 0 picks a free one.
	// A long-lived instance (the lab) uses a fixed one its clients are
	// configured with.
	SMTPPort int
}

// Postfix is a running private Postfix instance.
type Postfix struct {
	// Dir is the instance's directory.
	Dir string
	// ConfigDir is its config directory, for `postfix -c` and
	// `sendmail -C`.
	ConfigDir string
	// Maillog is the file postlogd writes (maillog_file).
	Maillog string
	// SMTP is the port of its smtpd on 127.0.0.1.
	SMTP int

	ownDir bool
	pid    int

	mu      sync.Mutex
	stopped bool
}

// Addr is the address of the instance's smtpd.
func (p *Postfix) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.SMTP) }

// Log is the whole maillog so far ("" if there is none yet).
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.Maillog)
	return string(b)
}

// LogTail is the maillog's last n lines.
func (p *Postfix) LogTail(n int) string { return fileTail(p.Maillog, n) }

// mainCF is shared/peers.md's main.cf without its routing, which callers
// set: the instance's paths, loopback only, no DNS, no TLS, short retry
// times so deferred mail is retried within a test.
func mainCF(dir string) [][2]string {
	return [][2]string{
		{"compatibility_level", "3.6"},
		{"queue_directory", dir + "/spool"},
		{"data_directory", dir + "/data"},
		// maillog_file must start with one of maillog_file_prefixes, or
		// postfix start exits 1 without a word.
		{"maillog_file", dir + "/maillog"},
		{"maillog_file_prefixes", dir},
		{"mail_owner", "postfix"},
		{"setgid_group", "postdrop"},
		{"myhostname", "mta.example.test"},
		{"mydomain", "example.test"},
		{"myorigin", "$mydomain"},
		{"mydestination", ""},
		{"local_recipient_maps", ""},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"inet_interfaces", "loopback-only"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"},
		{"smtpd_banner", "$myhostname ESMTP"},
		{"biff", "no"},
		{"smtp_dns_support_level", "disabled"},
		{"smtp_tls_security_level", "none"},
		{"smtpd_tls_security_level", "none"},
		{"queue_run_delay", "5s"},
		{"minimal_backoff_time", "5s"},
		{"maximal_backoff_time", "15s"},
	}
}

// masterCF is shared/peers.md's master.cf after the smtpd line: chroot off
// everywhere, and postlog, without which maillog_file stays empty.
const masterCF = `pickup     unix  n - n 60 1 pickup
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
`

// renderMain writes the standard parameters in their order, each replaced
// by the caller's value if it has one, then the caller's other parameters
// sorted by name. Every name appears once: Postfix would warn about an
// overriding entry.
func renderMain(base [][2]string, extra map[string]string) string {
	var b strings.Builder
	seen := map[string]bool{}
	line := func(name, value string) {
		if value == "" {
			fmt.Fprintf(&b, "%s =\n", name)
			return
		}
		fmt.Fprintf(&b, "%s = %s\n", name, value)
	}
	for _, kv := range base {
		seen[kv[0]] = true
		if v, ok := extra[kv[0]]; ok {
			line(kv[0], v)
			continue
		}
		line(kv[0], kv[1])
	}
	var rest []string
	for name := range extra {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		line(name, extra[name])
	}
	return b.String()
}

// StartPostfix writes the configuration, runs `postfix -c DIR start`
// (which daemonizes) and waits for the smtpd's 220 banner, all within
// StartTimeout or until ctx ends. On error nothing is left running.
func StartPostfix(ctx context.Context, cfg PostfixConfig) (*Postfix, error) {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	dir, own, err := peerDir(cfg.Dir, "mm-pf-")
	if err != nil {
		return nil, err
	}
	p := &Postfix{Dir: dir, ConfigDir: filepath.Join(dir, "etc"), Maillog: filepath.Join(dir, "maillog"), ownDir: own}
	if err := p.start(ctx, cfg); err != nil {
		// Whatever started is stopped, and the directory made is removed.
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

func (p *Postfix) start(ctx context.Context, cfg PostfixConfig) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	p.SMTP = ports[0]
	if cfg.SMTPPort != 0 {
		p.SMTP = cfg.SMTPPort
	}
	base := mainCF(p.Dir)
	// Nothing listens on the second port: mail for other domains stays
	// queued unless the caller names a relayhost.
	base = append(base, [2]string{"relayhost", fmt.Sprintf("[127.0.0.1]:%d", ports[1])})
	if d := cfg.Dovecot; d != nil {
		base = append(base,
			[2]string{"virtual_mailbox_domains", d.Domain},
			[2]string{"virtual_transport", fmt.Sprintf("lmtp:inet:127.0.0.1:%d", d.LMTP)})
	}
	master := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", p.SMTP) + masterCF
	for _, l := range cfg.Master {
		master += l + "\n"
	}
	files := map[string]string{"main.cf": renderMain(base, cfg.Main), "master.cf": master}
	for name, body := range cfg.Files {
		if _, clash := files[name]; clash {
			return fmt.Errorf("postfix file %s: set main.cf and master.cf through Main and Master", name)
		}
		files[name] = body
	}
	// postfix check/start sleeps about 2 s when main.cf is younger than
	// 2 s: the files are backdated.
	past := time.Now().Add(-time.Minute)
	for name, body := range files {
		path := filepath.Join(p.ConfigDir, name)
		if err := writeFile(path, body); err != nil {
			return err
		}
		if err := os.Chtimes(path, past, past); err != nil {
			return err
		}
	}
	// The queue directory stays root-owned; the data directory must be
	// postfix's.
	for _, sub := range []string{"spool", "data"} {
		if err := os.MkdirAll(filepath.Join(p.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	uid, _, err := userIDs("postfix")
	if err != nil {
		return fmt.Errorf("no postfix user: %w", err)
	}
	if err := os.Chown(filepath.Join(p.Dir, "data"), uid, 0); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, PostfixBin, "-c", p.ConfigDir, "start").CombinedOutput(); err != nil {
		return fmt.Errorf("postfix start: %w\n%s\nmaillog ends:\n%s", err, out, p.LogTail(20))
	}
	if err := p.readPid(); err != nil {
		return err
	}
	if err := waitUntil(ctx, "postfix", func() bool { return greets(p.SMTP, "220") }); err != nil {
		return fmt.Errorf("%w; maillog ends:\n%s", err, p.LogTail(20))
	}
	return nil
}

// readPid reads the master's pid, which `postfix start` wrote before it
// returned: the master daemonizes, so the pid file is the only handle on
// it.
func (p *Postfix) readPid() error {
	b, err := os.ReadFile(filepath.Join(p.Dir, "spool", "pid", "master.pid"))
	if err == nil {
		p.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if err == nil && p.pid <= 1 {
		err = fmt.Errorf("pid %d", p.pid)
	}
	if err != nil {
		p.pid = 0
		return fmt.Errorf("postfix master.pid: %w", err)
	}
	return nil
}

// Stop sends SIGTERM to the master, which stops its children, and waits
// until it is gone (SIGKILL after StopTimeout, reported as an error). The
// directory stays, so the maillog can still be read. Only the first call
// does anything; later ones return nil, so a test may stop Postfix itself
// and still register Close with t.Cleanup.
func (p *Postfix) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	if p.pid == 0 {
		// A start that failed half-way may still have left a master.
		_ = p.readPid()
	}
	if p.pid == 0 {
		return nil
	}
	return stopPid("postfix", p.pid)
}

// Close stops Postfix and removes its directory if StartPostfix made it.
func (p *Postfix) Close() error {
	err := p.Stop()
	if p.ownDir {
		err = errors.Join(err, os.RemoveAll(p.Dir))
	}
	return err
}

// stopPid stops a daemon that is not our child: SIGTERM, poll until it is
// gone or a zombie, SIGKILL after StopTimeout.
func stopPid(what string, pid int) error {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) || !pidAlive(pid) {
			return nil
		}
		return fmt.Errorf("SIGTERM %s (pid %d): %w", what, pid, err)
	}
	deadline := time.Now().Add(StopTimeout)
	for time.Now().Before(deadline) {
		if !pidAlive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = proc.Kill()
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed", what, pid, StopTimeout)
}
