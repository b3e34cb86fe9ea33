package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/mailboxretriever"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/peers"
	"github.com/mailmon/mailmon/services/probesender"
)

// The world of the end-to-end alert test: our sending IPs and domain as the
// dns-sweeper knows them, the providers' seed mailboxes behind their
// receiving Postfix, and the operators' mailbox the alerts are mailed to.
const (
	e2eListedIP     = "192.0.2.10" // listed on bl.test, then delisted
	e2ePTRIP        = "192.0.2.20" // its PTR is removed, then restored
	e2eListedDomain = "news.mailmon.test"
	e2eBlockedSeed  = "seed@provb.test" // provb refuses our probes for a while
	e2eSpamSeed     = "seed@provc.test" // provc files our probes into Junk for a while
	e2eOpsAddress   = "ops@ops.test"    // where the notifier's email route sends
	e2eSeedPassword = "secret"          // peers.Dovecot's default password
)

// alertCase is one failure the operators want to hear about: fail produces
// it for real before mailmon starts, recover ends it while the notifier is
// stopped, and key is the dedupe key of the condition, whose firing and
// resolved notifications the test counts on every route.
type alertCase struct {
	name    string
	key     string
	evident string // a line the firing e-mail must hold: the evidence a person acts on
	fail    func(t *testing.T)
	recover func(t *testing.T)
}

// TestAlertsEndToEnd produces each failure of issue 15's list for real and
// checks that a person hears of it exactly once when it starts and once
// when it ends, on a webhook and in a real mailbox, with the notifier
// restarted in between and after:
//
//   - an IP, then a domain, listed in a real rbldnsd zone, then delisted;
//   - a sending IP's PTR record removed from the test DNS server, then
//     restored (dns_hygiene);
//   - our relay (a real Postfix) stopped, so probes fail at our own MTA,
//     then started again;
//   - one provider's receiving Postfix refusing our seed address, so its
//     probes go missing, then accepting it again;
//   - another provider's Postfix marking our probes X-Spam-Flag: YES, so
//     Dovecot's sieve files them into Junk, then no longer.
//
// Every case runs at once in one mailmon run (the probe-sender,
// mailbox-retriever, dns-sweeper and complaint-evaluator as in production,
// each as its own NATS user); the notifier runs in a process of its own
// against the same NATS, so it can be stopped and started alone.
func TestAlertsEndToEnd(t *testing.T) {
	for _, check := range []func() error{peers.CheckPostfix, peers.CheckDovecot} {
		if err := check(); err != nil {
			peertest.Unavailable(t, "%v", err)
		}
	}
	if _, err := os.Stat(peers.RbldnsdBin); err != nil {
		peertest.Unavailable(t, "rbldnsd not installed (go tool task deps installs it): %v", err)
	}
	started := time.Now()
	// Postfix's, Dovecot's and rbldnsd's unprivileged processes must
	// traverse the directories: t.TempDir is 0700 under a 0700 parent.
	root, err := os.MkdirTemp("", "mm-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	dnsServer := startE2EDNS(t)
	bl := startE2ERbldnsd(t, filepath.Join(root, "rbl"))

	dv, err := peers.StartDovecot(ctx, peers.DovecotConfig{Dir: filepath.Join(root, "dovecot"),
		Addresses: []string{e2eBlockedSeed, e2eSpamSeed, e2eOpsAddress}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPeer(t, "dovecot.log", dv) })

	// The providers' receiving side: one Postfix for provb, provc and the
	// operators' domain, delivering into Dovecot. Its recipients file is
	// how a provider refuses or marks our mail. It relays nothing, so the
	// bounces of refused probes die at our relay and its queue holds only
	// what is on its way to a mailbox.
	mxPort := freePort(t)
	mxMain := map[string]string{
		"myhostname":                   "mx.providers.test",
		"virtual_mailbox_domains":      "provb.test provc.test ops.test",
		"smtpd_relay_restrictions":     "reject_unauth_destination",
		"smtpd_recipient_restrictions": "check_recipient_access texthash:$config_directory/recipients, reject_unauth_destination",
	}
	// Our relays: both hand everything to the providers' Postfix.
	relayMainCF := func(name string) map[string]string {
		return map[string]string{"myhostname": name + ".mailmon.test", "relayhost": fmt.Sprintf("[127.0.0.1]:%d", mxPort)}
	}
	var mx, relay, flaky *peers.Postfix
	var startErrs [3]error
	var wg sync.WaitGroup
	wg.Go(func() {
		mx, startErrs[0] = peers.StartPostfix(ctx, peers.PostfixConfig{Dir: filepath.Join(root, "mx"), Dovecot: dv, SMTPPort: mxPort,
			Main: mxMain, Files: map[string]string{"recipients": ""}})
	})
	wg.Go(func() {
		relay, startErrs[1] = peers.StartPostfix(ctx, peers.PostfixConfig{Dir: filepath.Join(root, "relay"), Main: relayMainCF("relay")})
	})
	wg.Go(func() {
		flaky, startErrs[2] = peers.StartPostfix(ctx, peers.PostfixConfig{Dir: filepath.Join(root, "flaky"), Main: relayMainCF("flaky")})
	})
	wg.Wait()
	for i, p := range []*peers.Postfix{mx, relay, flaky} {
		if p != nil {
			name := []string{"mx", "relay", "flaky relay"}[i]
			t.Cleanup(func() { stopPeer(t, name+" maillog", p) })
		}
	}
	if err := errors.Join(startErrs[:]...); err != nil {
		t.Fatal(err)
	}
	flakyPort := flaky.SMTP
	var flakyAgain *peers.Postfix

	mxRecipients := func(t *testing.T, lines ...string) {
		t.Helper()
		writePeerFile(t, filepath.Join(mx.ConfigDir, "recipients"), strings.Join(lines, "\n")+"\n")
		// Every smtpd process reads the texthash table when it starts;
		// reload replaces them.
		if out, err := exec.CommandContext(ctx, peers.PostfixBin, "-c", mx.ConfigDir, "reload").CombinedOutput(); err != nil {
			t.Fatalf("postfix reload: %v\n%s", err, out)
		}
	}
	var mxMu sync.Mutex
	mxRules := map[string]string{}
	setMXRule := func(t *testing.T, rcpt, action string) {
		mxMu.Lock()
		defer mxMu.Unlock()
		if action == "" {
			delete(mxRules, rcpt)
		} else {
			mxRules[rcpt] = action
		}
		var lines []string
		for _, r := range slices.Sorted(maps.Keys(mxRules)) {
			lines = append(lines, r+" "+mxRules[r])
		}
		mxRecipients(t, lines...)
	}

	cases := []alertCase{
		{
			name: "IP listed then delisted", key: "blocklist/ip:" + e2eListedIP,
			evident: "delist_url=https://bl.test/remove?ip=" + e2eListedIP,
			fail:    func(t *testing.T) { bl.setListed(t, "bl.zone", e2eListedIP, true) },
			recover: func(t *testing.T) { bl.setListed(t, "bl.zone", e2eListedIP, false) },
		},
		{
			name: "relay stopped then started", key: "probe_send_failed/route:flaky",
			evident: "outcome=error",
			fail: func(t *testing.T) {
				if err := flaky.Stop(); err != nil {
					t.Fatal(err)
				}
			},
			recover: func(t *testing.T) {
				// The same instance again: its directory, queue and port.
				p, err := peers.StartPostfix(ctx, peers.PostfixConfig{Dir: flaky.Dir, SMTPPort: flakyPort, Main: relayMainCF("flaky")})
				if err != nil {
					t.Fatal(err)
				}
				flakyAgain = p
				t.Cleanup(func() { stopPeer(t, "flaky relay maillog", p) })
			},
		},
		{
			name: "provider refuses our probes", key: "probe_missing_provider/route:relay/provider:provb",
			evident: "Provider:         provb",
			fail:    func(t *testing.T) { setMXRule(t, e2eBlockedSeed, "550 5.7.1 mail from your network is not accepted") },
			recover: func(t *testing.T) { setMXRule(t, e2eBlockedSeed, "") },
		},
		{
			name: "domain listed then delisted", key: "blocklist/domain:" + e2eListedDomain,
			evident: "zone=dbl.test",
			fail:    func(t *testing.T) { bl.setListed(t, "dbl.zone", e2eListedDomain, true) },
			recover: func(t *testing.T) { bl.setListed(t, "dbl.zone", e2eListedDomain, false) },
		},
		{
			name: "PTR removed then restored", key: "dns_hygiene/ip:" + e2ePTRIP + "/check:ptr",
			evident: "has no PTR record",
			fail:    func(t *testing.T) { dnsServer.setPTR(e2ePTRIP, "") },
			recover: func(t *testing.T) { dnsServer.setPTR(e2ePTRIP, "mta2.mailmon.test") },
		},
		{
			name: "probes filed into Junk", key: "probe_in_spam/route:relay/provider:provc",
			evident: "Provider:         provc",
			fail:    func(t *testing.T) { setMXRule(t, e2eSpamSeed, "PREPEND X-Spam-Flag: YES") },
			recover: func(t *testing.T) { setMXRule(t, e2eSpamSeed, "") },
		},
	}

	// The healthy world, then every failure at once: the cases touch
	// different IPs, domains, relays and providers, so they run together.
	dnsServer.setPTR(e2eListedIP, "mta1.mailmon.test")
	dnsServer.setPTR(e2ePTRIP, "mta2.mailmon.test")
	dnsServer.setA("mta1.mailmon.test", e2eListedIP)
	dnsServer.setA("mta2.mailmon.test", e2ePTRIP)
	dnsServer.setTXT(e2eListedDomain, "v=spf1 ip4:192.0.2.0/24 -all")
	dnsServer.setTXT("_dmarc."+e2eListedDomain, "v=DMARC1; p=reject")
	for _, c := range cases {
		c.fail(t)
	}

	hook := newWebhookRecorder(t)
	dataDir := t.TempDir()
	cfg := e2eConfig(t, dataDir, dnsServer.Addr, bl.Addr, relay.Addr(), fmt.Sprintf("127.0.0.1:%d", flakyPort), dv.IMAP)
	opsMaildir := peers.MaildirOf(dv.Dir, "ops.test", "ops")

	workers, err := SelectWorkers("complaint-evaluator,dns-sweeper,probe-sender,mailbox-retriever")
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("warnings and errors logged:\n%s", log.String())
		}
	}()
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, stopMailmon := runMailmon(t, ctx, cfg, logger, workers)
	defer stopMailmon()

	notifierCfg := e2eNotifierConfig(t, cfg, hook.url, mx.Addr())
	nf := startE2ENotifier(t, notifierCfg, logger)

	counts := func() (webhook, mailbox map[string]map[string]int) {
		return hook.counts(), mailboxCounts(t, opsMaildir)
	}
	var missing []string // what the last wait lacked, shown if it times out
	defer func() {
		if t.Failed() {
			webhook, mailbox := counts()
			t.Logf("last missing: %q\nwebhook: %v\nmailbox: %v", missing, webhook, mailbox)
			for _, a := range alertsOnStream(t, rt.JetStream) {
				t.Logf("ALERT stream: %s %s %s %s severity %s", a.Time.Format(time.RFC3339Nano), a.ID, a.DedupeKey, a.Status, a.Severity)
			}
		}
	}()
	allSeen := func(status string) func() bool {
		return func() bool {
			webhook, mailbox := counts()
			missing = missing[:0]
			for _, c := range cases {
				if webhook[c.key][status] == 0 {
					missing = append(missing, "webhook "+c.key)
				}
				if mailbox[c.key][status] == 0 {
					missing = append(missing, "mailbox "+c.key)
				}
			}
			return len(missing) == 0
		}
	}
	testwait.Eventually(t, 3*time.Minute, "a firing notification of every case on the webhook and in the mailbox", allSeen(schemas.AlertFiring))
	t.Logf("every case fired after %s", time.Since(started).Round(time.Second))
	for _, c := range cases {
		if body := mailboxBodyOf(t, opsMaildir, c.key, schemas.AlertFiring); !strings.Contains(body, c.evident) {
			t.Errorf("%s: the firing e-mail lacks %q:\n%s", c.name, c.evident, body)
		}
	}

	// The notifier is stopped while every failure ends: the resolutions
	// wait in the ALERT stream for the next notifier, which must send each
	// once and nothing it sent before.
	nf.stop(t)
	for _, c := range cases {
		c.recover(t)
	}
	testwait.Eventually(t, 3*time.Minute, "the evaluator to resolve every case", func() bool {
		resolved := resolvedOnStream(t, rt.JetStream)
		for _, c := range cases {
			if !resolved[c.key] {
				return false
			}
		}
		return true
	})
	nf = startE2ENotifier(t, notifierCfg, logger)
	testwait.Eventually(t, 2*time.Minute, "a resolved notification of every case on the webhook and in the mailbox", allSeen(schemas.AlertResolved))
	t.Logf("every case resolved after %s", time.Since(started).Round(time.Second))

	// Once more, after everything was told: a restart repeats nothing. An
	// alert published after the restart marks how far the new notifier
	// got: once it is notified, the alerts before it were judged again.
	nf.stop(t)
	nf = startE2ENotifier(t, notifierCfg, logger)
	marker := &schemas.AlertRaised{Rule: "e2e_marker", Status: schemas.AlertFiring, Severity: schemas.AlertInfo,
		Subject: "route:e2e-marker", Summary: "the notifier restarted", DedupeKey: "e2e_marker/route:e2e-marker"}
	if err := schemas.Stamp(marker, schemas.Source{Worker: "test", Host: "e2e"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(rt.JetStream, bus.PublisherOptions{}).Publish(ctx, marker); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, time.Minute, "the restarted notifier to notify a new alert, take every alert, and its mail to reach the mailbox", func() bool {
		webhook, mailbox := counts()
		return webhook[marker.DedupeKey][schemas.AlertFiring] > 0 && mailbox[marker.DedupeKey][schemas.AlertFiring] > 0 &&
			notifierDrained(t, rt.JetStream) && postfixQueueEmpty(t, mx)
	})
	nf.stop(t)

	webhook, mailbox := counts()
	for _, c := range cases {
		for _, route := range []struct {
			name   string
			counts map[string]map[string]int
		}{{"webhook", webhook}, {"mailbox", mailbox}} {
			got := route.counts[c.key]
			if got[schemas.AlertFiring] != 1 || got[schemas.AlertResolved] != 1 {
				t.Errorf("%s (%s): %s got %d firing and %d resolved notifications, want 1 and 1",
					c.name, c.key, route.name, got[schemas.AlertFiring], got[schemas.AlertResolved])
			}
		}
	}
	for key, got := range webhook {
		if key != marker.DedupeKey && !slices.ContainsFunc(cases, func(c alertCase) bool { return c.key == key }) {
			t.Logf("also notified: %s %v", key, got)
		}
	}
	if flakyAgain == nil {
		t.Error("the flaky relay was never started again")
	}
	t.Logf("whole test: %s", time.Since(started).Round(time.Second))
}

// e2eConfig is mailmon compressed in time: a probe round every 3 s through
// both relays to both providers, probes missing 15 s after they were sent,
// a sweep and an audit every 2 s, and probe_in_spam judging 2 of the last 3.
func e2eConfig(t *testing.T, dataDir, auditResolver, blocklistResolver, relayAddr, flakyAddr string, imapPort int) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = ""
	cfg.NATS.Embedded.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.ClickHouse.Local.Enabled = false
	cfg.Tracking.Key = TrackingKey{ID: "e2e", Secret: config.Secret("e2e-tracking-secret-0123456789-0123456789")}

	ds := &cfg.DNSSweeper
	ds.Resolver = blocklistResolver
	ds.CustomZones = []dnsbl.Zone{
		{Name: "bl.test", List: "e2e BL", Kind: dnsbl.KindIP, Weight: 2, DelistURL: "https://bl.test/remove?ip={target}",
			Codes: map[string]dnsbl.Code{"127.0.0.2": {Class: dnsbl.ClassListed, Meaning: "listed"}}},
		{Name: "dbl.test", List: "e2e DBL", Kind: dnsbl.KindDomain, Weight: 1, DelistURL: "https://bl.test/remove?domain={target}",
			Codes: map[string]dnsbl.Code{"127.0.1.2": {Class: dnsbl.ClassListed, Meaning: "spam domain"}}},
	}
	ds.Zones = []string{"bl.test", "dbl.test"}
	ds.ZoneRate = 0
	ds.TCPFallback = false // rbldnsd serves UDP only
	ds.SeenIPs.Enabled = false
	ds.IPs = []string{e2eListedIP, e2ePTRIP}
	ds.Domains = []string{e2eListedDomain}
	ds.Interval = config.Duration(2 * time.Second)
	ds.Timeout = config.Duration(time.Second)
	ds.Audit.Enabled = true
	ds.Audit.Interval = config.Duration(2 * time.Second)
	ds.Audit.Resolver = auditResolver

	ps := &cfg.ProbeSender
	ps.Interval = config.Duration(3 * time.Second)
	ps.Jitter = 0
	ps.Timeout = config.Duration(15 * time.Second)
	ps.From = "probe@mailmon.test"
	ps.Sources = []probesender.Source{
		{Name: "relay", Type: "smtp", Addr: relayAddr, TLS: probesender.TLSNone, HeloName: "prober.mailmon.test"},
		{Name: "flaky", Type: "smtp", Addr: flakyAddr, TLS: probesender.TLSNone, HeloName: "prober.mailmon.test"},
	}
	ps.Targets = []probesender.Target{
		{Name: "provb-seed", Provider: "provb", Address: e2eBlockedSeed},
		{Name: "provc-seed", Provider: "provc", Address: e2eSpamSeed},
	}

	mr := &cfg.MailboxRetriever
	mr.Deadline = config.Duration(15 * time.Second)
	mr.CheckInterval = config.Duration(time.Second)
	mr.PollInterval = config.Duration(2 * time.Second)
	for _, seed := range []string{e2eBlockedSeed, e2eSpamSeed} {
		mr.Accounts = append(mr.Accounts, mailboxretriever.Account{Name: seed, Protocol: mailboxretriever.ProtocolIMAP,
			Addr: fmt.Sprintf("127.0.0.1:%d", imapPort), TLS: mailboxretriever.TLSNone, Username: seed, Password: e2eSeedPassword})
	}

	ce := &cfg.ComplaintEvaluator
	ce.ProbeInSpam.Spam = 2
	ce.ProbeInSpam.Of = 3

	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// e2eNotifierConfig is the notifier's own process: it reaches the main
// process's embedded NATS as the notifier user, with the password that
// server generated, and sends to the webhook and, through the providers'
// Postfix, to the operators' mailbox.
func e2eNotifierConfig(t *testing.T, main Config, hookURL, relayAddr string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = ""
	cfg.NATS.URL = "nats://" + main.NATS.Embedded.Listen
	cfg.NATS.Users = map[string]NATSUser{
		notifier.WorkerName: {PasswordFile: filepath.Join(main.DataDir, "nats", "credentials", notifier.WorkerName)},
	}
	cfg.ClickHouse.Local.Enabled = false
	n := &cfg.Notifier
	n.GroupWait = config.Duration(time.Second)
	n.RetryMin = config.Duration(100 * time.Millisecond)
	n.RetryMax = config.Duration(time.Second)
	n.Redelivery = []config.Duration{config.Duration(2 * time.Second)}
	n.Routes = []notifier.Route{
		{Name: "hook", Kind: notifier.KindWebhook, URL: config.Secret(hookURL)},
		{Name: "ops-mail", Kind: notifier.KindEmail, SMTPAddr: relayAddr, TLS: notifier.EmailTLSNone,
			From: "mailmon <alerts@mailmon.test>", To: []string{e2eOpsAddress}, HeloName: "notifier.mailmon.test"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// e2eNotifier is a notifier process: app.Run with only the notifier.
type e2eNotifier struct {
	cancel context.CancelFunc
	done   chan error
}

func startE2ENotifier(t *testing.T, cfg Config, logger *slog.Logger) *e2eNotifier {
	t.Helper()
	defs, err := SelectWorkers(notifier.WorkerName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := &e2eNotifier{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		n.done <- Run(ctx, cfg, logger.With("process", "notifier"), RunOptions{Workers: defs, Ready: func(*Runtime) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-n.done:
		cancel()
		t.Fatalf("the notifier never started: %v", err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("the notifier did not start within a minute")
	}
	return n
}

// stop ends the notifier's Run and waits for it: it drains what it holds.
func (n *e2eNotifier) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	if err := <-n.done; err != nil {
		t.Fatalf("notifier Run: %v", err)
	}
}

// webhookRecorder is the in-process webhook receiver: it counts the alerts
// of every notification by dedupe key and status.
type webhookRecorder struct {
	url string
	mu  sync.Mutex
	got map[string]map[string]int
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	r := &webhookRecorder{got: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Alerts []schemas.AlertRaised `json:"alerts"`
		}
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body); err != nil {
			t.Errorf("webhook body: %v", err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, a := range body.Alerts {
			if r.got[a.DedupeKey] == nil {
				r.got[a.DedupeKey] = map[string]int{}
			}
			r.got[a.DedupeKey][a.Status]++
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *webhookRecorder) counts() map[string]map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]int{}
	for k, v := range r.got {
		out[k] = maps.Clone(v)
	}
	return out
}

// mailboxMessages reads the alert messages in a Maildir's INBOX and
// returns, per message, the alerts its body lists as (dedupe key, status)
// and the decoded body.
func mailboxMessages(t *testing.T, maildir string) (alerts [][][2]string, bodies []string) {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(maildir, sub))
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue // moved from new/ to cur/ meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("stored message %s: %v", e.Name(), err)
			}
			b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
			if err != nil {
				t.Fatalf("stored message %s: %v", e.Name(), err)
			}
			body := strings.ReplaceAll(string(b), "\r\n", "\n")
			// Each alert of the body lists its status before its dedupe key.
			var listed [][2]string
			status := ""
			for _, line := range strings.Split(body, "\n") {
				if v, ok := strings.CutPrefix(line, "Status:"); ok {
					status = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(line, "Dedupe key:"); ok {
					listed = append(listed, [2]string{strings.TrimSpace(v), status})
				}
			}
			alerts = append(alerts, listed)
			bodies = append(bodies, body)
		}
	}
	return alerts, bodies
}

func mailboxCounts(t *testing.T, maildir string) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	msgs, _ := mailboxMessages(t, maildir)
	for _, listed := range msgs {
		for _, a := range listed {
			if out[a[0]] == nil {
				out[a[0]] = map[string]int{}
			}
			out[a[0]][a[1]]++
		}
	}
	return out
}

// mailboxBodyOf is the body of the message that told key's status.
func mailboxBodyOf(t *testing.T, maildir, key, status string) string {
	t.Helper()
	msgs, bodies := mailboxMessages(t, maildir)
	for i, listed := range msgs {
		if slices.Contains(listed, [2]string{key, status}) {
			return bodies[i]
		}
	}
	return ""
}

// resolvedOnStream returns the dedupe keys whose last alert on the ALERT
// stream is a resolution.
func resolvedOnStream(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	last := map[string]string{}
	for _, a := range alertsOnStream(t, js) {
		last[a.DedupeKey] = a.Status
	}
	out := map[string]bool{}
	for k, s := range last {
		out[k] = s == schemas.AlertResolved
	}
	return out
}

// alertsOnStream reads the whole ALERT stream, in order.
func alertsOnStream(t *testing.T, js jetstream.JetStream) []schemas.AlertRaised {
	t.Helper()
	var out []schemas.AlertRaised
	for _, msg := range streamMessages(t, js, "ALERT") {
		var a schemas.AlertRaised
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			t.Fatalf("ALERT seq %d: %v", msg.Sequence, err)
		}
		out = append(out, a)
	}
	return out
}

// runMailmon runs workers as mailmon run does, in the background, until
// the returned stop, which checks that Run ended cleanly.
func runMailmon(t *testing.T, ctx context.Context, cfg Config, logger *slog.Logger, workers []Definition) (*Runtime, func()) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	runtimeReady := make(chan *Runtime, 1)
	runDone := make(chan error, 1)
	go func() {
		runDone <- Run(runCtx, cfg, logger, RunOptions{Workers: workers, Ready: func(rt *Runtime) { runtimeReady <- rt }})
	}()
	select {
	case rt := <-runtimeReady:
		return rt, func() {
			cancel()
			if err := <-runDone; err != nil {
				t.Errorf("mailmon Run: %v", err)
			}
		}
	case err := <-runDone:
		cancel()
		t.Fatalf("mailmon never became ready: %v", err)
		return nil, nil
	}
}

// streamMessages reads every message a stream holds, in order.
func streamMessages(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// notifierDrained reports whether the notifier's durable consumer has
// taken and acknowledged every alert.
func notifierDrained(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	cons, err := js.Consumer(t.Context(), "ALERT", notifier.WorkerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// postfixQueueEmpty reports whether a Postfix holds no message in any
// queue: what it took has reached its mailbox.
func postfixQueueEmpty(t *testing.T, p *peers.Postfix) bool {
	t.Helper()
	n := 0
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		filepath.WalkDir(filepath.Join(p.Dir, "spool", q), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
	}
	return n == 0
}

// peer is a *peers.Postfix or a *peers.Dovecot.
type peer interface {
	Stop() error
	LogTail(n int) string
	Close() error
}

// stopPeer stops p and shows the end of its log when the test failed.
func stopPeer(t *testing.T, logName string, p peer) {
	if err := p.Stop(); err != nil {
		t.Log(err)
	}
	if t.Failed() {
		t.Logf("%s:\n%s", logName, p.LogTail(40))
	}
	_ = p.Close()
}

// writePeerFile writes a file a peer's unprivileged process reads.
func writePeerFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // regardless of the umask
		t.Fatal(err)
	}
}

// syncBuffer is a log destination for several processes' handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
