package mailboxretriever

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/mailboxretriever/mailhdr"
	"github.com/mailmon/mailmon/services/mailboxretriever/pop3"
	"github.com/mailmon/mailmon/services/probesender"
)

// The probe loop against real peers: probe-sender submits to Postfix (over
// SMTP, and through Postfix's sendmail command), Postfix delivers over LMTP
// to Dovecot, whose sieve files X-Spam-Flag: YES into Junk; the retriever
// reads alice over IMAP IDLE and bob over POP3. Every probe is reported
// with the right placement, the one Postfix discards goes missing, and a
// probe that arrives while no retriever runs is reported after a restart.
func TestEndToEndPostfixDovecot(t *testing.T) {
	needPeers(t)
	dv := startDovecot(t)
	pf := startPostfix(t, dv)
	js := startNATS(t)
	received := watchEvents(t, js, "PROBE", schemas.SubjectProbeReceived)
	missing := watchEvents(t, js, "PROBE", schemas.SubjectProbeMissing)
	sentLog := watchEvents(t, js, "PROBE", schemas.SubjectProbeSent)

	rcfg := DefaultConfig()
	rcfg.Deadline = config.Duration(4 * time.Second)
	rcfg.CheckInterval = config.Duration(200 * time.Millisecond)
	rcfg.PollInterval = config.Duration(300 * time.Millisecond)
	rcfg.ReconnectMin = config.Duration(100 * time.Millisecond)
	rcfg.ReconnectMax = config.Duration(time.Second)
	rcfg.Timeout = config.Duration(10 * time.Second)
	rcfg.Accounts = []Account{
		{Name: "alice", Protocol: ProtocolIMAP, Addr: "127.0.0.1:" + strconv.Itoa(dv.IMAP), TLS: TLSNone, Username: "alice@inbox.test", Password: "secret"},
		{Name: "bob", Protocol: ProtocolPOP3, Addr: "127.0.0.1:" + strconv.Itoa(dv.POP3), TLS: TLSNone, Username: "bob@inbox.test", Password: "secret"},
	}
	rn := startRetriever(t, js, rcfg, nil)

	scfg := probesender.DefaultConfig()
	scfg.From = "probe@example.test"
	scfg.Timeout = config.Duration(10 * time.Second)
	scfg.Sources = []probesender.Source{
		{Name: "postfix-smtp", Type: probesender.SourceSMTP, Addr: "127.0.0.1:" + strconv.Itoa(pf.SMTP), TLS: probesender.TLSNone, HeloName: "probe.example.test", SourceIP: "127.0.0.1"},
		{Name: "postfix-sendmail", Type: probesender.SourceSendmail, SendmailCommand: []string{"/usr/sbin/sendmail", "-C", pf.ConfigDir, "-i"}},
	}
	scfg.Targets = []probesender.Target{
		{Name: "alice-inbox", Provider: "dovecot", Address: "alice@inbox.test", Variants: []string{probesender.VariantHTML}},
		{Name: "alice-junk", Provider: "dovecot", Address: "alice@inbox.test", Headers: map[string]string{"X-Spam-Flag": "YES"}},
		{Name: "alice-discard", Provider: "dovecot", Address: "alice@inbox.test", Headers: map[string]string{"X-Probe-Discard": "yes"}},
		{Name: "bob-pop3", Provider: "dovecot", Address: "bob@inbox.test", Variants: []string{probesender.VariantListUnsubscribe}},
	}
	sender, err := probesender.New(scfg, worker.Settings{
		JetStream: js, Source: schemas.Source{Worker: probesender.WorkerName, Host: "test"},
		Tracking: worker.Tracking{Keyring: &testRing},
	})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 10*time.Second, "both accounts read", func() bool {
		return !rn.r.accounts["alice"].syncedAt().IsZero() && !rn.r.accounts["bob"].syncedAt().IsZero()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	sent := sender.Round(ctx, 0, nil)
	if len(sent) != 8 {
		t.Fatalf("round sent %d probes, want 8", len(sent))
	}
	want := map[string]string{} // probe id -> expected placement, or "missing"
	for _, ev := range sent {
		if ev.Outcome != schemas.OutcomeAccepted {
			t.Fatalf("%s via %s: %s %s %s", ev.Target, ev.Route, ev.Outcome, ev.ReplyText, ev.Error)
		}
		if ev.Submission == schemas.SubmissionSMTP && (ev.QueueID == "" || ev.EnhancedStatus != "2.0.0" || ev.DataMs < 0) {
			t.Errorf("smtp probe without queue id / status / timings: %+v", ev)
		}
		switch ev.Target {
		case "alice-inbox", "bob-pop3":
			want[ev.ProbeID] = schemas.PlacementInbox
		case "alice-junk":
			want[ev.ProbeID] = schemas.PlacementSpam
		case "alice-discard":
			want[ev.ProbeID] = "missing"
		}
	}
	sentLog.wait(t, 8, 5*time.Second)

	evs := received.wait(t, 6, 30*time.Second)
	t.Logf("6 probes reported received %s after the round started", time.Since(start).Round(time.Millisecond))
	for _, e := range evs {
		r := e.(*schemas.ProbeReceived)
		if want[r.ProbeID] != r.Placement {
			t.Errorf("probe %s (%s via %s) placed %s in %s, want %s", r.ProbeID, r.Target, r.Route, r.Placement, r.Folder, want[r.ProbeID])
		}
		if r.Target == "bob-pop3" && (r.Protocol != schemas.ProtocolPOP3 || r.ArrivalSource != schemas.ArrivalReceived) {
			t.Errorf("bob's probe: protocol %s arrival %s", r.Protocol, r.ArrivalSource)
		}
		if r.Target == "alice-junk" && r.Folder != "Junk" {
			t.Errorf("junk probe in folder %q", r.Folder)
		}
		if r.ReceivedHops < 2 || r.LatencyMs < -2000 || r.LatencyMs > 20000 || r.DetectionMs < -1000 || r.DetectionMs > 20000 {
			t.Errorf("probe %s: hops %d latency %d ms detection %d ms", r.Target, r.ReceivedHops, r.LatencyMs, r.DetectionMs)
		}
		t.Logf("%-14s %-16s %-5s %-6s latency %5d ms detection %5d ms hops %d", r.Target, r.Route, r.Protocol, r.Placement, r.LatencyMs, r.DetectionMs, r.ReceivedHops)
	}
	ms := missing.wait(t, 2, 20*time.Second)
	for _, e := range ms {
		m := e.(*schemas.ProbeMissing)
		if want[m.ProbeID] != "missing" {
			t.Errorf("probe %s (%s) reported missing", m.ProbeID, m.Target)
		}
	}
	testwait.Eventually(t, 10*time.Second, "reported probes deleted", func() bool {
		return dv.MaildirCount("alice", "") == 0 && dv.MaildirCount("alice", "Junk") == 0 && dv.MaildirCount("bob", "") == 0
	})

	// Restart: a probe lands while no retriever runs.
	rn.stop(t)
	restartCfg := scfg
	restartCfg.Sources = scfg.Sources[:1]
	restartCfg.Targets = scfg.Targets[:1]
	again, err := probesender.New(restartCfg, worker.Settings{
		JetStream: js, Source: schemas.Source{Worker: probesender.WorkerName, Host: "test"},
		Tracking: worker.Tracking{Keyring: &testRing},
	})
	if err != nil {
		t.Fatal(err)
	}
	late := again.Round(ctx, 0, nil)
	if len(late) != 1 || late[0].Outcome != schemas.OutcomeAccepted {
		t.Fatalf("restart round: %+v", late)
	}
	testwait.Eventually(t, 10*time.Second, "delivery to alice", func() bool { return dv.MaildirCount("alice", "") == 1 })
	startRetriever(t, js, rcfg, nil)
	evs = received.wait(t, 7, 15*time.Second)
	if last := evs[len(evs)-1].(*schemas.ProbeReceived); last.ProbeID != late[0].ProbeID || last.Placement != schemas.PlacementInbox {
		t.Errorf("after the restart: %+v", last)
	}
	time.Sleep(500 * time.Millisecond)
	if n, m := len(received.all()), len(missing.all()); n != 7 || m != 2 {
		t.Errorf("%d received and %d missing events, want 7 and 2 (nothing double counted)", n, m)
	}
}

// The POP3 client against Dovecot: login, list, read headers, delete.
func TestPOP3ClientAgainstDovecot(t *testing.T) {
	needPeers(t)
	dv := startDovecot(t)
	pf := startPostfix(t, dv)
	// Deliver two messages through Postfix's sendmail.
	for i := range 2 {
		msg := "From: <probe@example.test>\r\nTo: <bob@inbox.test>\r\nSubject: pop3 " + strconv.Itoa(i) + "\r\nMessage-ID: <pop3-" + strconv.Itoa(i) + "@example.test>\r\n\r\nhello\r\n"
		if err := sendmail(pf.ConfigDir, "bob@inbox.test", msg); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Eventually(t, 15*time.Second, "delivery", func() bool { return dv.MaildirCount("bob", "") == 2 })
	c, err := dialPOP3(t, dv.POP3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bob@inbox.test", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	c.Close()
	c, err = dialPOP3(t, dv.POP3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bob@inbox.test", "secret"); err != nil {
		t.Fatal(err)
	}
	if n, size, err := c.Stat(); err != nil || n != 2 || size == 0 {
		t.Fatalf("stat %d %d %v", n, size, err)
	}
	uids, err := c.UIDL()
	if err != nil || len(uids) != 2 {
		t.Fatalf("uidl %v %v", uids, err)
	}
	top, err := c.Top(uids[0].Num, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h := mailhdr.Parse(top); h.MessageID() == "" || h.ReceivedHops() < 2 {
		t.Errorf("header via TOP: message id %q, %d Received", h.MessageID(), h.ReceivedHops())
	}
	for _, u := range uids {
		if err := c.Dele(u.Num); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if n := dv.MaildirCount("bob", ""); n != 0 {
		t.Errorf("%d messages left after DELE and QUIT", n)
	}
}

func dialPOP3(t *testing.T, port int) (*pop3.Client, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return nil, err
	}
	return pop3.NewClient(conn, 5*time.Second)
}

// sendmail submits msg through Postfix's sendmail command of the instance
// in etc.
func sendmail(etc, rcpt, msg string) error {
	cmd := exec.Command("/usr/sbin/sendmail", "-C", etc, "-i", "-f", "probe@example.test", "--", rcpt)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sendmail: %v: %s", err, out)
	}
	return nil
}
