package peers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestRenderMain(t *testing.T) {
	got := renderMain([][2]string{{"a", "1"}, {"b", ""}, {"c", "3"}}, map[string]string{"c": "x", "z": "$config_directory/z", "m": ""})
	want := "a = 1\nb =\nc = x\nm =\nz = $config_directory/z\n"
	if got != want {
		t.Errorf("renderMain:\n%s\nwant:\n%s", got, want)
	}
}

// unavailable fails under CI, which installs the peers, and skips
// elsewhere. It repeats services/internal/peertest.Unavailable, which Go
// does not let this package import.
func unavailable(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("real peer unavailable under CI: %v", err)
	}
	t.Skipf("real peer unavailable (CI would fail): %v", err)
}

// Both peers as the tests use them: Postfix delivers inbox.test to
// Dovecot over LMTP, the sieve script files X-Spam-Flag: YES into Junk, a
// header_checks file named through $config_directory discards a message;
// Stop ends both processes and Close removes their directories.
func TestPostfixDovecot(t *testing.T) {
	for _, check := range []func() error{CheckPostfix, CheckDovecot} {
		if err := check(); err != nil {
			unavailable(t, err)
		}
	}
	dv, err := StartDovecot(t.Context(), DovecotConfig{Users: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dv.Close() })
	pf, err := StartPostfix(t.Context(), PostfixConfig{
		Dovecot: dv,
		Main:    map[string]string{"header_checks": "regexp:$config_directory/header_checks"},
		Files:   map[string]string{"header_checks": "/^X-Discard: yes/ DISCARD told to\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pf.Close() })

	for _, extra := range []string{"", "X-Spam-Flag: YES\r\n", "X-Discard: yes\r\n"} {
		msg := fmt.Sprintf("From: <s@example.test>\r\nTo: <alice@inbox.test>\r\nSubject: t\r\n%s\r\nbody\r\n", extra)
		if err := send(pf.Addr(), msg); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for dv.MaildirCount("alice", "") < 1 || dv.MaildirCount("alice", "Junk") < 1 || !strings.Contains(pf.Log(), "discard: header X-Discard: yes") {
		if time.Now().After(deadline) {
			t.Fatalf("inbox %d junk %d; maillog:\n%s\ndovecot.log:\n%s", dv.MaildirCount("alice", ""), dv.MaildirCount("alice", "Junk"), pf.LogTail(20), dv.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}

	pid, dovecotPid := pf.pid, dv.cmd.Process.Pid
	for name, stop := range map[string]func() error{"postfix": pf.Stop, "dovecot": dv.Stop} {
		if err := stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if err := stop(); err != nil {
			t.Errorf("second stop of %s: %v", name, err)
		}
	}
	for _, p := range []int{pid, dovecotPid} {
		if pidAlive(p) {
			t.Errorf("pid %d still runs after Stop", p)
		}
	}
	if !strings.Contains(pf.Log(), "status=sent") {
		t.Errorf("maillog gone after Stop:\n%s", pf.Log())
	}
	for _, c := range []func() error{pf.Close, dv.Close} {
		if err := c(); err != nil {
			t.Error(err)
		}
	}
	for _, dir := range []string{pf.Dir, dv.Dir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s not removed by Close: %v", dir, err)
		}
	}
}

// A directory the caller gives stays after Close.
func TestCallerDirKept(t *testing.T) {
	if err := CheckPostfix(); err != nil {
		unavailable(t, err)
	}
	parent, err := os.MkdirTemp("", "mm-peers-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	pf, err := StartPostfix(t.Context(), PostfixConfig{Dir: filepath.Join(parent, "pf")})
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pf.ConfigDir, "main.cf")); err != nil {
		t.Errorf("caller's dir not kept: %v", err)
	}
}

// send submits msg to alice@inbox.test in plain SMTP (smtp.SendMail
// insists on STARTTLS, which the loopback instance does not offer).
func send(addr, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		return err
	}
	if err := c.Mail("s@example.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("alice@inbox.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
