package mailboxretriever

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// IDLE sees a probe in the inbox and one in the \Junk folder within
// seconds; each is reported once with its placement and verdicts and then
// deleted. A foreign message and a tampered probe are counted and left
// alone.
func TestIdleDetectsProbesInInboxAndJunk(t *testing.T) {
	js := startNATS(t)
	srv := startIMAP(t)
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	cfg := testConfig(srv.addr)
	cfg.PollInterval = config.Duration(time.Hour) // IDLE or nothing
	rn := startRetriever(t, js, cfg, nil)

	inbox, spam := schemas.NewID(), schemas.NewID()
	publishSent(t, js, inbox, "alice@inbox.test", time.Now())
	publishSent(t, js, spam, "ALICE@inbox.test", time.Now())
	testwait.Eventually(t, 10*time.Second, "the account to be read", func() bool { return !rn.r.accounts["alice"].syncedAt().IsZero() })
	time.Sleep(200 * time.Millisecond) // IDLE established

	srv.deliver(t, "INBOX", []byte("From: someone@else.test\r\nSubject: hello\r\n\r\nnot a probe\r\n"))
	tampered := probeMessage(t, schemas.NewID(), "")
	tampered = []byte(strings.Replace(string(tampered), "c=mailmon-probe", "c=mailmon-probf", 1))
	srv.deliver(t, "INBOX", tampered)
	start := time.Now()
	srv.deliver(t, "INBOX", probeMessage(t, inbox, ""))
	srv.deliver(t, "Spam", probeMessage(t, spam, ""))

	evs := received.wait(t, 2, 10*time.Second)
	t.Logf("both probes reported %s after delivery", time.Since(start).Round(time.Millisecond))
	byID := map[string]*schemas.ProbeReceived{}
	for _, e := range evs {
		r := e.(*schemas.ProbeReceived)
		byID[r.ProbeID] = r
	}
	in, sp := byID[inbox], byID[spam]
	if in == nil || sp == nil {
		t.Fatalf("events for the wrong probes: %v", byID)
	}
	if in.Placement != schemas.PlacementInbox || in.Folder != "INBOX" || sp.Placement != schemas.PlacementSpam || sp.Folder != "Spam" {
		t.Errorf("placement inbox=%s/%s spam=%s/%s", in.Placement, in.Folder, sp.Placement, sp.Folder)
	}
	if in.Protocol != "imap" || in.Account != "alice" || in.ArrivalSource != schemas.ArrivalInternalDate || in.ReceivedHops != 2 {
		t.Errorf("filing %+v source %s hops %d", in.ProbeFiling, in.ArrivalSource, in.ReceivedHops)
	}
	if in.SPF != "pass" || in.DKIM != "pass" || in.DMARC != "pass" || in.DMARCPolicy != "none" || in.AuthServID != "mx.inbox.test" || len(in.DKIMDomains) != 1 {
		t.Errorf("verdicts %+v policy %q servid %q domains %v", in.ProbeVerdicts, in.DMARCPolicy, in.AuthServID, in.DKIMDomains)
	}
	if in.DetectionMs < 0 || in.DetectionMs > 5000 || !in.Deleted {
		t.Errorf("detection %d ms deleted %v", in.DetectionMs, in.Deleted)
	}
	testwait.Eventually(t, 5*time.Second, "probes deleted", func() bool { return srv.count(t, "INBOX") == 2 && srv.count(t, "Spam") == 0 })
	testwait.Eventually(t, 5*time.Second, "foreign and tampered counted", func() bool {
		return rn.counter("ignored", "foreign") == 1 && rn.counter("ignored", "tampered") == 1
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(received.all()); n != 2 {
		t.Errorf("%d received events, want 2", n)
	}
}

// A probe not seen by its deadline is missing, once the account has been
// read after the deadline; when it turns up after that it is late, linked
// to the missing event. The clock is the test's.
func TestMissingThenLateWithControlledClock(t *testing.T) {
	js := startNATS(t)
	srv := startIMAP(t)
	missing := watchEvents(t, js, "PROBE", schemas.SubjectProbeMissing)
	late := watchEvents(t, js, "PROBE", schemas.SubjectProbeLate)
	clock := newFakeClock(time.Now())
	cfg := testConfig(srv.addr)
	cfg.CheckInterval = config.Duration(time.Hour) // the test runs the checks
	cfg.Deadline = config.Duration(10 * time.Minute)
	rn := startRetriever(t, js, cfg, clock)
	ctx := context.Background()

	id := schemas.NewID()
	sent := clock.Now()
	publishSent(t, js, id, "alice@inbox.test", sent)
	testwait.Eventually(t, 10*time.Second, "the expectation", func() bool {
		rn.r.mu.Lock()
		defer rn.r.mu.Unlock()
		return rn.r.index[id].State == statePending
	})
	clock.Advance(9 * time.Minute)
	rn.r.checkDeadlines(ctx)
	time.Sleep(300 * time.Millisecond)
	if n := len(missing.all()); n != 0 {
		t.Fatalf("missing before the deadline: %d", n)
	}
	clock.Advance(2 * time.Minute)
	// The first check asks the account for a fresh read; a later one, after
	// that read, declares the probe missing.
	deadline := time.Now().Add(10 * time.Second)
	for len(missing.all()) == 0 && time.Now().Before(deadline) {
		rn.r.checkDeadlines(ctx)
		time.Sleep(50 * time.Millisecond)
	}
	m := missing.wait(t, 1, time.Second)[0].(*schemas.ProbeMissing)
	if m.ProbeID != id || m.DeadlineMs != (10*time.Minute).Milliseconds() || m.WaitedMs < (11*time.Minute).Milliseconds() || m.Account != "alice" {
		t.Errorf("missing %+v", m)
	}
	if strings.Join(m.FoldersChecked, ",") != "INBOX,Spam" {
		t.Errorf("folders checked %v", m.FoldersChecked)
	}
	rn.r.checkDeadlines(ctx)
	time.Sleep(200 * time.Millisecond)
	if n := len(missing.all()); n != 1 {
		t.Fatalf("%d missing events, want 1", n)
	}

	srv.deliver(t, "INBOX", probeMessage(t, id, ""))
	l := late.wait(t, 1, 10*time.Second)[0].(*schemas.ProbeLate)
	if l.ProbeID != id || l.MissingEventID != m.ID || l.Placement != schemas.PlacementInbox || l.DeadlineMs != m.DeadlineMs {
		t.Errorf("late %+v (missing id %s)", l, m.ID)
	}
}

// A failing account raises an alert and holds its probes pending: a probe
// past its deadline is not missing while its mailbox cannot be read.
func TestUnreadableAccountAlertsAndDeclaresNothingMissing(t *testing.T) {
	js := startNATS(t)
	alerts := watchEvents(t, js, "ALERT", schemas.SubjectAlertRaised)
	missing := watchEvents(t, js, "PROBE", schemas.SubjectProbeMissing)
	clock := newFakeClock(time.Now())
	cfg := testConfig("127.0.0.1:1") // nothing listens
	cfg.CheckInterval = config.Duration(time.Hour)
	cfg.AlertAfter = config.Duration(time.Minute)
	rn := startRetriever(t, js, cfg, clock)
	id := schemas.NewID()
	publishSent(t, js, id, "alice@inbox.test", clock.Now())
	testwait.Eventually(t, 10*time.Second, "a failed attempt", func() bool { s, _, _ := rn.r.accounts["alice"].failure(); return !s.IsZero() })
	testwait.Eventually(t, 10*time.Second, "the expectation", func() bool {
		rn.r.mu.Lock()
		defer rn.r.mu.Unlock()
		return rn.r.index[id].State == statePending
	})
	clock.Advance(30 * time.Minute)
	for range 5 {
		rn.r.checkDeadlines(context.Background())
		rn.r.checkAccounts(context.Background())
		time.Sleep(50 * time.Millisecond)
	}
	a := alerts.wait(t, 1, 5*time.Second)[0].(*schemas.AlertRaised)
	if a.Rule != alertRule || a.Status != schemas.AlertFiring || a.Subject != "account:alice" || strings.Contains(a.Summary, "secret") {
		t.Errorf("alert %+v", a)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(missing.all()); n != 0 {
		t.Errorf("%d missing events while the account is unreadable", n)
	}
	if n := len(alerts.all()); n != 1 {
		t.Errorf("%d alerts, want 1 (deduplicated)", n)
	}
}

// Pending probes survive a restart: the expectation is in KV, so a new
// retriever reports the probe that arrived while none ran.
func TestRestartLosesNoPendingProbe(t *testing.T) {
	js := startNATS(t)
	srv := startIMAP(t)
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	cfg := testConfig(srv.addr)
	first := startRetriever(t, js, cfg, nil)
	id := schemas.NewID()
	publishSent(t, js, id, "alice@inbox.test", time.Now())
	testwait.Eventually(t, 10*time.Second, "the expectation", func() bool {
		first.r.mu.Lock()
		defer first.r.mu.Unlock()
		return first.r.index[id].State == statePending
	})
	first.stop(t)
	srv.deliver(t, "INBOX", probeMessage(t, id, ""))
	second := startRetriever(t, js, cfg, nil)
	evs := received.wait(t, 1, 10*time.Second)
	if evs[0].(*schemas.ProbeReceived).ProbeID != id {
		t.Fatal("wrong probe")
	}
	second.stop(t)
	if n := len(received.all()); n != 1 {
		t.Errorf("%d received events, want 1", n)
	}
}

// Two copies of the worker on one mailbox (delete off, so a new reader
// sees the probes again) report each once.
func TestTwoRetrieversCountOnce(t *testing.T) {
	js := startNATS(t)
	srv := startIMAP(t)
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	cfg := testConfig(srv.addr)
	cfg.Delete = false
	cfg.PollInterval = config.Duration(100 * time.Millisecond)
	a := startRetriever(t, js, cfg, nil)
	b := startRetriever(t, js, cfg, nil)
	ids := []string{schemas.NewID(), schemas.NewID(), schemas.NewID()}
	for _, id := range ids {
		publishSent(t, js, id, "alice@inbox.test", time.Now())
	}
	for _, id := range ids {
		srv.deliver(t, "INBOX", probeMessage(t, id, ""))
	}
	received.wait(t, 3, 10*time.Second)
	// The copy reading the account stops; the other one, or a new one,
	// reads it from scratch: with delete off it finds the probes again and
	// reports nothing.
	if !a.r.accounts["alice"].isHeld() {
		a, b = b, a
	}
	a.stop(t)
	stopped := time.Now()
	c := startRetriever(t, js, cfg, nil)
	testwait.Eventually(t, 10*time.Second, "a read after restart", func() bool {
		for _, rn := range []*running{b, c} {
			if ac := rn.r.accounts["alice"]; ac.isHeld() && ac.syncedAt().After(stopped) {
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)
	b.stop(t)
	c.stop(t)
	if n := len(received.all()); n != 3 {
		t.Errorf("%d received events, want 3", n)
	}
	if srv.count(t, "INBOX") != 3 {
		t.Error("delete off, yet probes were deleted")
	}
}

// A probe that arrives before its probe.sent was consumed waits, and is
// reported as soon as the expectation appears.
func TestProbeBeforeItsProbeSent(t *testing.T) {
	js := startNATS(t)
	srv := startIMAP(t)
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	cfg := testConfig(srv.addr)
	cfg.PollInterval = config.Duration(time.Hour)
	rn := startRetriever(t, js, cfg, nil)
	id := schemas.NewID()
	srv.deliver(t, "INBOX", probeMessage(t, id, ""))
	testwait.Eventually(t, 10*time.Second, "the orphan", func() bool {
		rn.r.mu.Lock()
		defer rn.r.mu.Unlock()
		return rn.r.orphans[id] != nil
	})
	publishSent(t, js, id, "alice@inbox.test", time.Now().Add(-time.Second))
	evs := received.wait(t, 1, 10*time.Second)
	if r := evs[0].(*schemas.ProbeReceived); r.ProbeID != id || r.LatencyMs < 0 {
		t.Errorf("%+v", r)
	}
}

func TestXOAUTH2AndTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("ya29.token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Account{Username: "seed@gmail.test", Auth: AuthXOAUTH2, TokenFile: file}
	c, err := saslFor(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mech, ir, _ := c.Start()
	if mech != "XOAUTH2" || string(ir) != "user=seed@gmail.test\x01auth=Bearer ya29.token-from-file\x01\x01" {
		t.Errorf("%s %q", mech, ir)
	}
	a = Account{Username: "u", Auth: AuthXOAUTH2, TokenCommand: []string{"sh", "-c", "echo ya29.from-command"}}
	c, err = saslFor(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ir, _ := c.Start(); !strings.Contains(string(ir), "Bearer ya29.from-command\x01") {
		t.Errorf("%q", ir)
	}
	a.TokenCommand = []string{"sh", "-c", "echo leaked-token; exit 3"}
	if _, err := saslFor(context.Background(), a); err == nil || strings.Contains(err.Error(), "leaked-token") {
		t.Errorf("failing command: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Accounts = []Account{
		{Name: "a", Protocol: ProtocolIMAP, Addr: "imap.example.net:143", TLS: TLSNone, Username: "x@example.net", Password: "pw"},
		{Name: "a", Protocol: "smoke", Addr: "nohost", Username: "nouser", Auth: AuthXOAUTH2},
		{Name: "c", Protocol: ProtocolPOP3, Addr: "127.0.0.1:110", TLS: TLSNone, Username: "X@example.net", Password: "pw", SpamFolders: []string{"Junk"}},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no problems")
	}
	for _, want := range []string{"accounts[0].tls", "accounts[1].name", "accounts[1].protocol", "accounts[1].addr", "accounts[1].token_file", "accounts[1].addresses", "accounts[2].spam_folders", "accounts[2].addresses"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("no problem at %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw") {
		t.Error("password in problems")
	}
}
