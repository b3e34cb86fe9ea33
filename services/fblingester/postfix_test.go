package fblingester

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dkimtest"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/peers"
)

// TestPostfixRelaysReports has Debian's Postfix relay reports to the
// listener, as a provider's MTA (or our MX) would: they become events, and
// the operator's DKIM signature survives the relay (the report is
// trusted; the same report unsigned is not); a report relayed while NATS
// is down gets 451, stays in Postfix's queue, and is delivered once NATS is
// back, stored exactly once.
func TestPostfixRelaysReports(t *testing.T) {
	if err := peers.CheckPostfix(); err != nil {
		peertest.Unavailable(t, "postfix: %v", err)
	}
	n := startRestartableNATS(t)
	d := dkimtest.Start(t)
	operator := d.NewSigner(t, "fbl.provider.test")
	cfg := trustConfig(d)
	cfg.PublishTimeout = 3e9
	r := startIngester(t, cfg, n.js)
	pf, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{Main: map[string]string{
		"relayhost": "[" + strings.Replace(r.addr, ":", "]:", 1),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pf.Close(); err != nil {
			t.Log(err)
		}
	})

	report := operator.Sign(t, arfReport("pf1", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-pf1")))
	if err := send(pf.Addr(), "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, report); err != nil {
		t.Fatalf("submit to postfix: %v", err)
	}
	evs := decode[schemas.ComplaintReceived](t, waitCount(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived, 1))
	if evs[0].Customer != "acme" || evs[0].TraceMethod != schemas.TraceTrackingHeader || !evs[0].Trusted || evs[0].Trust != schemas.TrustOperatorDKIM {
		t.Errorf("signed complaint via postfix: %+v", evs[0])
	}
	waitLog(t, pf, "relayed", "status=sent", "250")
	unsigned := arfReport("pf0", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-pf0"))
	if err := send(pf.Addr(), "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, unsigned); err != nil {
		t.Fatalf("submit to postfix: %v", err)
	}
	if evs := decode[schemas.ComplaintReceived](t, waitCount(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived, 2)); evs[1].Trusted {
		t.Errorf("unsigned complaint via postfix trusted: %+v", evs[1])
	}

	// NATS down: Postfix hears 451 and keeps the report queued.
	n.stop()
	report2 := operator.Sign(t, arfReport("pf2", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-pf2")))
	if err := send(pf.Addr(), "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, report2); err != nil {
		t.Fatalf("submit to postfix: %v", err)
	}
	waitLog(t, pf, "deferred", "status=deferred", "451")

	n.start(t)
	// Flush the queue instead of waiting for Postfix's backoff.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/usr/sbin/postqueue", "-c", pf.ConfigDir, "-f").CombinedOutput(); err != nil {
		t.Fatalf("postqueue -f: %v %s", err, out)
	}
	evs = decode[schemas.ComplaintReceived](t, waitCount(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived, 3))
	if evs[2].TrackingID != "m-pf2" || !evs[2].Trusted {
		t.Errorf("third complaint %q trusted %v, want m-pf2 trusted", evs[2].TrackingID, evs[2].Trusted)
	}
	time.Sleep(500 * time.Millisecond)
	if got := len(storedMsgs(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived)); got != 3 {
		t.Errorf("%d complaints, want exactly 3", got)
	}
}

// waitLog waits for a maillog line holding every part.
func waitLog(t *testing.T, pf *peers.Postfix, what string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(pf.Log(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				t.Logf("%s: %s", what, line)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no maillog line with %q:\n%s", what, parts, pf.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
