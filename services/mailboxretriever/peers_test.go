package mailboxretriever

import (
	"testing"

	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/peers"
)

// Real Postfix and Dovecot on loopback (services/peers, shared/peers.md
// section 3), each in its own short temp dir and on ports picked free, so
// tests of other packages running the same peers at the same time do not
// collide.

// needPeers skips the test when Postfix or Dovecot cannot run here, except
// in CI, which installs them through `go tool task deps`: there it fails.
func needPeers(t *testing.T) {
	t.Helper()
	for _, check := range []func() error{peers.CheckPostfix, peers.CheckDovecot} {
		if err := check(); err != nil {
			peertest.Unavailable(t, "%v", err)
		}
	}
}

// startDovecot runs Dovecot with users alice and bob (password "secret")
// on inbox.test, and a global sieve script filing X-Spam-Flag: YES into
// Junk.
func startDovecot(t *testing.T) *peers.Dovecot {
	t.Helper()
	d, err := peers.StartDovecot(t.Context(), peers.DovecotConfig{Users: []string{"alice", "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closePeer(t, "dovecot.log", d) })
	return d
}

// startPostfix runs Postfix relaying inbox.test to Dovecot's LMTP. Mail
// with "X-Probe-Discard: yes" is accepted and silently discarded, which is
// how a test makes a probe go missing.
func startPostfix(t *testing.T, dv *peers.Dovecot) *peers.Postfix {
	t.Helper()
	p, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{
		Dovecot: dv,
		Main:    map[string]string{"header_checks": "regexp:$config_directory/header_checks"},
		Files:   map[string]string{"header_checks": "/^X-Probe-Discard: yes/ DISCARD probe told to vanish\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closePeer(t, "postfix maillog", p) })
	return p
}

// peer is a *peers.Postfix or a *peers.Dovecot.
type peer interface {
	Stop() error
	LogTail(n int) string
	Close() error
}

// closePeer stops p, shows the end of its log when the test failed (after
// the stop, so the log is complete; before Close removes it), and removes
// its directory.
func closePeer(t *testing.T, logName string, p peer) {
	if err := p.Stop(); err != nil {
		t.Log(err)
	}
	if t.Failed() {
		t.Logf("%s:\n%s", logName, p.LogTail(40))
	}
	_ = p.Close()
}
