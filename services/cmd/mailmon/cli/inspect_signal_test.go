//go:build unix

package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildMailmon builds the mailmon binary (services/cmd/mailmon: its
// signal handling is part of what is tested) into a temporary directory.
func buildMailmon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailmon")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mailmon/mailmon/services/cmd/mailmon")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeMbox writes n copies of the message in file as an mbox.
func writeMbox(t *testing.T, dir, file string, n int) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString("From MAILER-DAEMON Mon Jun 10 12:00:05 2024\n")
		b.Write(raw)
		b.WriteString("\n")
	}
	path := filepath.Join(dir, filepath.Base(file)+".mbox")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// endless writes line (with a counter) to w until a write fails (the
// reader is gone).
func endless(line string) func(w io.WriteCloser) {
	return func(w io.WriteCloser) {
		defer w.Close()
		bw := bufio.NewWriterSize(w, 64<<10)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(bw, line, i%60); err != nil {
				return
			}
		}
	}
}

// TestInspectStopsOnSignal runs `mailmon inspect` on inputs that take a
// long time to read (an mbox of thousands of reports, an endless pipe of
// log lines), sends SIGTERM once it is printing, and checks that it stops
// there, with a failure status and "interrupted" on its error output. It
// used to read on to the end (or for ever).
func TestInspectStopsOnSignal(t *testing.T) {
	bin := buildMailmon(t)
	dir := t.TempDir()
	const reports = 20000
	tests := []struct {
		parser, file string
		// total is how many lines the whole input prints (0: endless)
		total int
		feed  func(io.WriteCloser)
	}{
		{parser: "arf", file: writeMbox(t, dir, filepath.Join("..", "..", "..", "internal", "arf", "testdata", "abuse-tracked.eml"), reports), total: reports},
		{parser: "bounce", file: writeMbox(t, dir, filepath.Join("..", "..", "..", "internal", "dsn", "testdata", "postfix-dsn.eml"), reports), total: 2 * reports},
		{parser: "rejection", file: "-", feed: endless("smtp; 550 5.1.1 <a%d@example.com>: Recipient address rejected: User unknown\n")},
		{parser: "postfix-log", file: "-", feed: endless("Mar 10 09:00:%02d mx1 postfix/smtp[4711]: 3F1A22C0A1: to=<r@example.org>, relay=mx.example.org[192.0.2.7]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=4.7.1, status=deferred (host mx.example.org[192.0.2.7] said: 451 4.7.1 try again later (in reply to RCPT TO command))\n")},
	}
	for _, tt := range tests {
		t.Run(tt.parser, func(t *testing.T) {
			cmd := exec.Command(bin, "inspect", tt.parser, tt.file)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stdin io.WriteCloser
			if tt.feed != nil {
				if stdin, err = cmd.StdinPipe(); err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if stdin != nil {
				go tt.feed(stdin)
			}
			out := bufio.NewReader(stdout)
			if _, err := out.ReadString('\n'); err != nil {
				t.Fatalf("no output before the signal: %v; %s", err, stderr.String())
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			lines := 1
			counted := make(chan struct{})
			go func() {
				defer close(counted)
				for {
					if _, err := out.ReadString('\n'); err != nil {
						return
					}
					lines++
				}
			}()
			exited := make(chan error, 1)
			go func() {
				<-counted
				exited <- cmd.Wait()
			}()
			select {
			case err = <-exited:
			case <-time.After(time.Minute):
				// Not a measure of promptness (that is the line count
				// below), only a guard against a test that never ends.
				cmd.Process.Kill()
				t.Fatalf("still running a minute after SIGTERM, %d lines printed", lines)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
				t.Errorf("exit: %v, want status %d", err, exitFailure)
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("error output %q does not say it was interrupted", stderr.String())
			}
			if tt.total > 0 && lines >= tt.total {
				t.Errorf("printed all %d lines: it did not stop", lines)
			}
			t.Logf("stopped after %d lines%s", lines, map[bool]string{true: fmt.Sprintf(" of %d", tt.total)}[tt.total > 0])
		})
	}
}
