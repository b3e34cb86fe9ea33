package mtalogtailer_test

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/mtalogtailer"
)

// TestRealPostfix runs Debian's Postfix, logging to its own file
// (maillog_file) and relaying everything to a go-smtp server that answers
// like the big providers do, and follows Postfix's log with the tailer.
// Halfway the tailer is killed without draining, and the log is rotated
// twice (postfix logrotate, then copytruncate) while it is down and after
// it restarted. Every delivery attempt Postfix logged must be in the
// stream exactly once, classified.
func TestRealPostfix(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
		peertest.Unavailable(t, "postfix is not installed (go tool task deps installs it)")
	}
	if os.Geteuid() != 0 {
		peertest.Unavailable(t, "starting a Postfix instance needs root")
	}
	mx := startFakeMX(t)
	pf := startPostfix(t, mx.port)
	js := startBus(t)

	cfg := testConfig(pf.maillog)
	cfg.Files[0].RotatedGlobs = []string{pf.maillog + ".*"}
	cfg.TimeZone = "Local" // postlogd writes local time
	cfg.TrackingHeader = tracking.HeaderName
	run := startTailer(t, js, cfg, mtalogtailer.SimulateCrashes)

	// Each recipient's local part tells the fake MX how to answer.
	sent := map[string]string{} // recipient → expected final status
	send := func(round int) {
		for _, r := range []struct{ local, domain, status string }{
			{"ok", "gmail.com", "sent"},
			{"rate", "gmail.com", "deferred"},
			{"block", "example.net", "bounced"},
			{"unknown", "outlook.com", "bounced"},
		} {
			rcpt := fmt.Sprintf("%s-%d@%s", r.local, round, r.domain)
			pf.send(t, rcpt, fmt.Sprintf("m-%d-%s", round, r.local))
			sent[rcpt] = r.status
		}
	}
	for round := range 3 {
		send(round)
	}
	waitFor(t, 30*time.Second, "the first rounds' events", func() bool { return streamCount(t, js, "DELIVERY") >= 12 })

	// Killed, and the log rotated while it is down.
	run.stop(t)
	for round := 3; round < 5; round++ {
		send(round)
	}
	pf.waitLog(t, "status=", 20)
	pf.logrotate(t)
	send(5)
	run = startTailer(t, js, cfg)
	pf.waitLog(t, "status=", 24)
	pf.copytruncate(t)
	send(6)
	pf.waitLog(t, "status=", 28)

	// Stop Postfix, so no retry adds attempts while we count.
	pf.stop(t)
	want := pf.deliveryLines(t)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d events", want), func() bool { return streamCount(t, js, "DELIVERY") >= uint64(want) })
	run.stop(t)

	events := streamEvents(t, js)
	byID := map[string]bool{}
	final := map[string]*schemas.DeliveryAttempted{}
	for _, ev := range events {
		if byID[ev.ID] {
			t.Errorf("event %s stored twice", ev.ID)
		}
		byID[ev.ID] = true
		if prev := final[ev.Recipient]; prev == nil || ev.Status != schemas.StatusDeferred {
			final[ev.Recipient] = ev
		}
	}
	if len(events) != want {
		t.Errorf("%d events stored, Postfix logged %d delivery attempts", len(events), want)
	}
	for rcpt, status := range sent {
		ev := final[rcpt]
		if ev == nil {
			t.Errorf("no event for %s", rcpt)
			continue
		}
		local := rcpt[:strings.IndexByte(rcpt, '-')]
		var reason, category, signature, provider string
		switch local {
		case "ok":
			reason, provider = "delivered", "gmail"
		case "rate":
			reason, category, signature, provider = "blocked", "blocked_ip_or_blocklist", "gmail-4.7.28", "gmail"
		case "block":
			reason, category, signature = "blocked", "blocked_ip_or_blocklist", "spamhaus"
		case "unknown":
			reason, category, provider = "userunknown", "user_unknown", "outlook"
		}
		if ev.Status != status || ev.Reason != reason || (category != "" && ev.Category != category) || ev.Signature != signature || ev.Provider != provider {
			t.Errorf("%s: status %s reason %s category %s signature %q provider %q; want %s %s %s %q %q (reply %q)",
				rcpt, ev.Status, ev.Reason, ev.Category, ev.Signature, ev.Provider, status, reason, category, signature, provider, ev.Reply)
		}
		if ev.TrackingStatus != schemas.TrackingValid || ev.Customer != "acme" || ev.SourceIP != "192.0.2.9" || ev.RelayIP != "127.0.0.1" ||
			ev.MTA != "postfix" || ev.MTAInstance != "postfix-192.0.2.9/smtp" || ev.QueueID == "" || ev.MessageID == "" || ev.DelayMs < 0 {
			t.Errorf("%s: tracking %s customer %q source ip %q relay %q instance %q queue %q message-id %q delay %d",
				rcpt, ev.TrackingStatus, ev.Customer, ev.SourceIP, ev.RelayIP, ev.MTAInstance, ev.QueueID, ev.MessageID, ev.DelayMs)
		}
	}
	t.Logf("%d delivery attempts logged by Postfix across %d files, %d events stored", want, len(pf.logFiles(t)), len(events))
}

// fakeMX answers RCPT by the recipient's local part: "rate-" with Gmail's
// rate limit, "block-" with a Spamhaus listing, "unknown-" with a user
// unknown; anything else is accepted.
type fakeMX struct {
	port int
}

func startFakeMX(t *testing.T) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(mxBackend{})
	srv.Domain = "mx.provider.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &fakeMX{port: ln.Addr().(*net.TCPAddr).Port}
}

type mxBackend struct{}

func (mxBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &mxSession{}, nil }

type mxSession struct{ accepted int }

func (*mxSession) Reset()                               {}
func (*mxSession) Logout() error                        { return nil }
func (*mxSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "rate-"):
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 28},
			Message: "Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. a1si1234 - gsmtp"}
	case strings.HasPrefix(to, "block-"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1"}
	case strings.HasPrefix(to, "unknown-"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "Requested action not taken: mailbox unavailable (S2017062302)."}
	}
	s.accepted++
	return nil
}

func (*mxSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// postfix is one Postfix instance in a temp dir.
type postfix struct {
	dir, maillog string
	port         int
	mu           sync.Mutex
	stopped      bool
}

func startPostfix(t *testing.T, relayPort int) *postfix {
	t.Helper()
	// The spool and config must be root-owned, the data dir postfix's, and
	// the unprivileged daemons must be able to reach them: t.TempDir's
	// parent is private to root, so the instance gets a directory of its
	// own, removed after Postfix stopped.
	dir, err := os.MkdirTemp("", "mailmon-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"etc", "spool", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pf := &postfix{dir: dir, maillog: filepath.Join(dir, "maillog"), port: freePort(t)}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
maillog_file_compressor = /bin/true
maillog_file_rotate_suffix = %%Y%%m%%d-%%H%%M%%S
syslog_name = postfix-192.0.2.9
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
relayhost = [127.0.0.1]:%[2]d
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
header_checks = regexp:%[1]s/etc/header_checks
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 15s
`, dir, relayPort)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
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
`, pf.port)
	files := map[string]string{"main.cf": mainCF, "master.cf": masterCF, "header_checks": "/^" + tracking.HeaderName + ":/ WARN\n"}
	past := time.Now().Add(-time.Minute) // a fresh main.cf makes postfix sleep 2 s
	for name, body := range files {
		p := filepath.Join(dir, "etc", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("/usr/sbin/postfix", "-c", filepath.Join(dir, "etc"), "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	t.Cleanup(func() { pf.stop(t) })
	waitFor(t, 15*time.Second, "the Postfix banner", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pf.port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(line, "220")
	})
	return pf
}

// stop signals the master by its pid file and waits until it is gone.
func (p *postfix) stop(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	raw, err := os.ReadFile(filepath.Join(p.dir, "spool", "pid", "master.pid"))
	if err != nil {
		t.Errorf("postfix master pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		t.Errorf("postfix master pid %q", raw)
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("postfix master %d did not exit", pid)
}

// send submits one message from the null sender (no bounce messages to
// follow) with a signed tracking header.
func (p *postfix) send(t *testing.T, rcpt, msgID string) {
	t.Helper()
	header, err := testKeyring.Sign(tracking.Fields{Customer: "acme", Source: "pool-a", MessageID: msgID, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("From: app@example.test\r\nTo: %s\r\nSubject: test\r\nMessage-ID: <%s@app.example.test>\r\n%s: %s\r\n\r\nhello\r\n",
		rcpt, msgID, tracking.HeaderName, header)
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", p.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("app.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(wc, msg); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// logFiles lists the current log and its rotated files.
func (p *postfix) logFiles(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(p.maillog + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// count counts the lines containing s across the log files.
func (p *postfix) count(t *testing.T, s string) int {
	n := 0
	for _, f := range p.logFiles(t) {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(data), s)
	}
	return n
}

// deliveryLines counts the delivery attempts Postfix logged.
func (p *postfix) deliveryLines(t *testing.T) int {
	return p.count(t, ", status=")
}

// waitLog waits until the log files hold n lines containing s.
func (p *postfix) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d %q lines in the Postfix log", n, s), func() bool { return p.count(t, s) >= n })
}

// logrotate renames the log the way Postfix's own "postfix logrotate"
// does (and makes postlogd reopen it).
func (p *postfix) logrotate(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("/usr/sbin/postfix", "-c", filepath.Join(p.dir, "etc"), "logrotate").CombinedOutput(); err != nil {
		t.Fatalf("postfix logrotate: %v\n%s", err, out)
	}
}

// copytruncate copies the log aside and truncates it, as logrotate's
// copytruncate does.
func (p *postfix) copytruncate(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(p.maillog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.maillog+".copy", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p.maillog, 0); err != nil {
		t.Fatal(err)
	}
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
