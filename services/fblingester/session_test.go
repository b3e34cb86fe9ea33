package fblingester

import (
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// TestSessionDeadlineEndsNOOPLoop: a client that sends a NOOP every
// second, well inside read_timeout, is still cut at session_timeout; it
// cannot hold a connection slot for ever.
func TestSessionDeadlineEndsNOOPLoop(t *testing.T) {
	js := startNATS(t)
	cfg := testConfig()
	cfg.SMTP.ReadTimeout = config.Duration(2 * time.Second)
	cfg.SMTP.SessionTimeout = config.Duration(3 * time.Second)
	cfg.SMTP.MaxConnections = 1
	r := startIngester(t, cfg, js)
	c, err := dialSMTP(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Ten NOOPs a second apart would keep the connection past 10 s;
	// the session deadline must end it first.
	noops := 0
	for ; noops < 10; noops++ {
		if err := c.Noop(); err != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if noops == 10 {
		t.Fatal("ten NOOPs over ten seconds kept a session with session_timeout 3s open")
	}
	if noops < 2 {
		t.Errorf("the session ended after %d NOOPs, before its deadline", noops)
	}
	if got := counter(t, r.in.m.smtpRefused.WithLabelValues("session_timeout")); got != 1 {
		t.Errorf("session timeouts counted %v, want 1", got)
	}
	// Its slot is free again (max_connections 1).
	c2, err := dialSMTP(r.addr)
	if err != nil {
		t.Fatalf("new connection after the cut: %v", err)
	}
	c2.Close()
}

// TestStopRightAfterStart: a stop that comes before the listener's
// Serve has started still ends Run (the listener is closed by Run, not
// only by the SMTP server's Shutdown, which knows only the listeners
// Serve registered).
func TestStopRightAfterStart(t *testing.T) {
	js := startNATS(t)
	for range 20 {
		r := startIngester(t, testConfig(), js)
		r.stop() // fails the test when Run does not return
	}
}
