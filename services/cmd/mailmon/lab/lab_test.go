package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/peers"
)

// labConfigPath is the lab config `go tool task run` uses.
const labConfigPath = "../../../../deploy/config/mailmon.lab.yaml"

// TestLab is the lab as an acceptance test: the lab config with time
// compressed (probes every 10 s, a sweep every 30 s, three messages a
// second, a complaint about every second spam message) on free ports in a
// directory of its own, and each signal a newcomer should see must reach
// ClickHouse: probes received (yahoo.lab filing 127.0.0.3's into spam),
// 127.0.0.3 listed and refused by outlook.lab, the spammer's complaint
// rate over the line with its reroute decision, its mail then leaving
// through ndr, and the abuse team's alert delivered to its mailbox.
func TestLab(t *testing.T) {
	if err := Check(); err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if _, err := os.Stat("/usr/sbin/clickhouse-server"); err != nil {
			peertest.Unavailable(t, "clickhouse-server is not installed (go tool task deps installs it)")
		}
	}
	cfg, err := app.Load(labConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: Postfix and Dovecot run as other users and must
	// traverse the directory, and unix socket paths must stay short.
	dir, err := os.MkdirTemp("", "mm-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	compress(t, &cfg, dir)
	if err := Prepare(&cfg); err != nil {
		t.Fatal(err)
	}

	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *World, 1)
	done := make(chan error, 1)
	labStart := time.Now()
	go func() {
		done <- Run(ctx, cfg, Options{
			Logger:         logger,
			SubmissionPort: freePorts(t, 1)[0],
			Traffic:        TrafficOptions{Interval: time.Second, ComplaintEvery: 2, ComplaintDelay: 2 * time.Second, ReportEvery: 20 * time.Second},
			Ready:          func(w *World) { ready <- w },
		})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("the lab did not stop within 2 minutes")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the lab: %v", err)
		}
		if t.Failed() {
			t.Logf("lab log:\n%s", logBuf.String())
		}
	})
	var w *World
	select {
	case w = <-ready:
	case err := <-done:
		t.Fatalf("the lab stopped before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("the lab was not ready within 3 minutes")
	}

	conn, err := OpenClickHouse(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var last Summary
	read := func() Summary {
		s, err := ReadSummary(t.Context(), conn, cfg, w.Dir)
		if err != nil {
			t.Logf("reading the summary: %v", err)
		}
		last = s
		return s
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b bytes.Buffer
			last.Print(&b)
			t.Logf("last summary:\n%s", b.String())
		}
	})
	// Generous bounds for a loaded 2-core CI machine; nothing is timed.
	const within = 4 * time.Minute
	signals := []struct {
		what string
		ok   func(Summary) bool
	}{
		{"probes received in the inbox from 127.0.0.2 at every provider", func(s Summary) bool {
			return hasCount(s.Probes, "gmail", "inbox", ipOut2) && hasCount(s.Probes, "yahoo", "inbox", ipOut2) && hasCount(s.Probes, "outlook", "inbox", ipOut2)
		}},
		{"yahoo.lab filing probes from 127.0.0.3 into spam", func(s Summary) bool { return hasCount(s.Probes, "yahoo", "spam", ipOut3) }},
		{"127.0.0.3 listed on the lab zone", func(s Summary) bool { return hasCount(s.Listings, ipOut3, rblZone) }},
		{"outlook.lab refusing 127.0.0.3 as a blocklisted IP", func(s Summary) bool {
			return hasCount(s.Refusals, "outlook", ipOut3, "bounced", "blocked_ip_or_blocklist")
		}},
		{"the spammer's trusted complaint rate above the act threshold", func(s Summary) bool {
			for _, r := range s.Rates {
				if r.Customer == SpammerCustomer && r.ActReached {
					return true
				}
			}
			return false
		}},
		{"a reroute decision for the spammer via ndr", func(s Summary) bool {
			for _, d := range s.Decisions {
				if d.Kind == "reroute" && strings.Contains(d.Subject, SpammerCustomer) && d.Transport == "ndr" {
					return true
				}
			}
			return false
		}},
		{"the spammer's mail delivered through ndr (127.0.0.4)", func(s Summary) bool { return hasCount(s.Rerouted, SpammerCustomer, "sent") }},
		{"an alert e-mail in the abuse team's mailbox", func(s Summary) bool { return s.AbuseMailbox > 0 }},
		{"a customer's unknown recipient suppressed after its hard bounce", func(s Summary) bool {
			for _, c := range s.Suppressed {
				if c.Keys[0] != SpammerCustomer && c.Keys[1] == "hard_bounce" && c.N > 0 {
					return true
				}
			}
			return false
		}},
		{"DMARC reports in the status: our mail passing, the stranger's under " + dmarcSpoofDomain + " failing", func(s Summary) bool {
			var ours, stranger bool
			for _, c := range s.DMARC {
				ours = ours || c.OurSource && c.Messages > 0 && c.Pass == c.Messages
				stranger = stranger || !c.OurSource && c.Domain == dmarcSpoofDomain && c.Messages > c.Pass
			}
			return ours && stranger
		}},
	}
	start := time.Now()
	for _, sig := range signals {
		testwait.Eventually(t, within-time.Since(start)+10*time.Second, sig.what, func() bool {
			if sig.ok(last) {
				return true
			}
			time.Sleep(time.Second) // one query round a second is plenty
			return sig.ok(read())
		})
		t.Logf("%s: after %s", sig.what, time.Since(start).Round(time.Second))
	}
	// gmail.lab's DMARC aggregate reports: our pools' rows traced to the
	// customers, the stranger's under shop.lab not ours; the console's
	// DMARC page shows the domain.
	testwait.Eventually(t, time.Minute, "DMARC report rows from gmail.lab", func() bool {
		var ours, foreign uint64
		q := "SELECT countIf(our_source = 1 AND customer != ''), countIf(our_source = 0 AND source_ip = '" + dmarcSpoofIP + "') FROM " +
			cfg.ClickHouse.Database + ".dmarc_record WHERE org_name = '" + dmarcReporter + "'"
		if err := conn.QueryRow(t.Context(), q).Scan(&ours, &foreign); err != nil {
			t.Logf("%s: %v", q, err)
			return false
		}
		return ours > 0 && foreign > 0
	})
	if body := httpGet(t, "http://"+cfg.HTTP.Addr+"/dmarc"); !strings.Contains(body, dmarcSpoofDomain) {
		t.Errorf("console /dmarc does not show %q", dmarcSpoofDomain)
	}
	// The alert mail tells the abuse team about the spammer.
	testwait.Eventually(t, time.Minute, "an alert e-mail about "+SpammerCustomer, func() bool {
		return mailboxMentions(t, w.Dir, SpammerCustomer)
	})
	// The ops console shows the same world: the listed IP on the
	// overview, with its zone, and the spammer's decision.
	for path, wants := range map[string][]string{
		"/":           {ipOut3, rblZone},
		"/complaints": {SpammerCustomer, "mailmon enforcement lift"},
		"/blocklists": {ipOut3, rblZone},
	} {
		body := httpGet(t, "http://"+cfg.HTTP.Addr+path)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("console %s does not show %q", path, want)
			}
		}
	}
	// A newcomer reads the first minute of the log: nothing in it may look
	// like a failure unless the lab says it caused it on purpose.
	for _, l := range strings.Split(logBuf.String(), "\n") {
		at, ok := logTime(l)
		if !ok || at.After(labStart.Add(time.Minute)) {
			continue
		}
		if (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) && !strings.Contains(l, "on purpose") {
			t.Errorf("in the lab's first minute: %s", l)
		}
	}
	// Only the rerouted mail leaves from 127.0.0.4: the other customers'
	// does not.
	for _, c := range last.Rerouted {
		if c.Keys[0] != SpammerCustomer {
			t.Errorf("customer %s's mail left through ndr: %v", c.Keys[0], c)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stopping the lab: %v", err)
	}
	// Every server is gone: their ports are free again.
	for _, addr := range []string{w.MTA.Addr(), w.MX.Addr(), "127.0.0.1:" + strconv.Itoa(w.Dovecot.IMAP)} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the lab stopped", addr)
		}
	}
}

// compress rewrites the lab config for a test: state under dir, every
// address on a free port, no NATS listener, and time compressed.
func compress(t *testing.T, cfg *app.Config, dir string) {
	t.Helper()
	ports := freePorts(t, 12)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	cfg.DataDir = dir
	cfg.HTTP.Addr = addr(10) // the ops console
	cfg.NATS.Embedded.Listen = ""
	cfg.ClickHouse.Local.Dir = dir + "/clickhouse"
	cfg.ClickHouse.Local.TCPPort, cfg.ClickHouse.Local.HTTPPort = ports[0], ports[1]
	cfg.ClickHouse.Addr = addr(0)
	cfg.PolicyService.Listen = addr(2)
	cfg.FBLIngester.SMTP.Listen = addr(3)
	cfg.DNSSweeper.Resolver = addr(4)
	cfg.DNSSweeper.Audit.Resolver = addr(5)
	cfg.FBLIngester.Trust.Resolver = addr(5)
	for i := range cfg.ProbeSender.Sources {
		cfg.ProbeSender.Sources[i].Addr = addr(6 + i)
	}
	for i := range cfg.MailboxRetriever.Accounts {
		cfg.MailboxRetriever.Accounts[i].Addr = addr(8)
	}
	for i := range cfg.Notifier.Routes {
		cfg.Notifier.Routes[i].SMTPAddr = addr(9)
	}
	cfg.ProbeSender.Interval = config.Duration(10 * time.Second)
	cfg.ProbeSender.Jitter = config.Duration(2 * time.Second)
	cfg.DNSSweeper.Interval = config.Duration(30 * time.Second)
	cfg.MailboxRetriever.Deadline = config.Duration(time.Minute)
	cfg.ClickHouseSink.BatchAge = config.Duration(time.Second)
}

// freePorts picks n distinct free loopback ports (TCP, and free for UDP at
// the time of asking as well, for the DNS servers).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []int
	for len(out) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			continue
		}
		pc.Close()
		out = append(out, port)
	}
	return out
}

// hasCount reports whether cs has a row whose keys start with keys and
// whose count is positive.
func hasCount(cs []Count, keys ...string) bool {
	for _, c := range cs {
		if len(c.Keys) >= len(keys) && c.N > 0 && slicesHavePrefix(c.Keys, keys) {
			return true
		}
	}
	return false
}

func slicesHavePrefix(s, prefix []string) bool {
	for i, p := range prefix {
		if s[i] != p {
			return false
		}
	}
	return true
}

// logTime is the time= of a text log line.
func logTime(line string) (time.Time, bool) {
	v, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	v, _, _ = strings.Cut(v, " ")
	at, err := time.Parse(time.RFC3339Nano, v)
	return at, err == nil
}

// mailboxMentions reports whether a message in the abuse mailbox of the
// lab under dir contains text.
func mailboxMentions(t *testing.T, dir, text string) bool {
	local, domain, _ := strings.Cut(AbuseAddress, "@")
	maildir := peers.MaildirOf(dir+"/dovecot", domain, local)
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(maildir + "/" + sub)
		for _, e := range entries {
			b, err := os.ReadFile(maildir + "/" + sub + "/" + e.Name())
			if err != nil {
				t.Logf("reading an alert mail: %v", err)
				continue
			}
			if bytes.Contains(b, []byte(text)) {
				return true
			}
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer the workers' goroutines may log to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// httpGet returns the body of a GET that must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%.500s", url, resp.Status, err, body)
	}
	return string(body)
}
