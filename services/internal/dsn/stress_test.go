package dsn

import (
	"strings"
	"testing"
	"time"
)

// TestLargeInputsStayFast feeds large, hostile bounces and checks that
// Parse stays well within a second: no quadratic blow-up on long texts,
// many recipients or many quoted addresses.
func TestLargeInputsStayFast(t *testing.T) {
	var many strings.Builder
	many.WriteString("From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\nX-Failed-Recipients: ")
	for i := 0; i < 2000; i++ {
		many.WriteString("u")
		many.WriteString(strings.Repeat("x", i%7))
		many.WriteString("@example.net, ")
	}
	many.WriteString("\n\nThe following addresses failed:\n\n")
	for i := 0; i < 20000; i++ {
		many.WriteString("<user@example.net>: host mx said: 550 5.1.1 unknown (in reply to RCPT TO command)\n")
	}
	longLine := "From: MAILER-DAEMON@example.com\nSubject: failure notice\n\n" + strings.Repeat("a@b.c ", 400000)
	deep := "From: MAILER-DAEMON@example.com\nSubject: failure notice\n\n" + strings.Repeat("x\n", 500000)
	for name, in := range map[string]string{"many recipients": many.String(), "long line": longLine, "many lines": deep} {
		start := time.Now()
		b := Parse([]byte(in))
		d := time.Since(start)
		t.Logf("%s: %v, %d recipients", name, d, len(b.Recipients))
		if d > 5*time.Second {
			t.Errorf("%s: %v (%d recipients)", name, d, len(b.Recipients))
		}
		if len(b.Recipients) > maxRecipients {
			t.Errorf("%s: %d recipients, want at most %d", name, len(b.Recipients), maxRecipients)
		}
	}
}
