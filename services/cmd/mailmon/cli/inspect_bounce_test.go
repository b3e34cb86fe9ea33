package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestInspectBounceNonBounces checks that `mailmon inspect bounce` prints
// nothing, and succeeds, for the automatic mail that comes back the bounce
// way without being a bounce: a challenge-response request, a feedback
// report, a localised automatic reply.
func TestInspectBounceNonBounces(t *testing.T) {
	dir := t.TempDir()
	msgs := map[string]string{
		"challenge.eml": "From: verify@filter.example.net\r\nTo: sender@example.com\r\n" +
			"Subject: Sender verification required\r\nContent-Type: text/plain\r\n\r\n" +
			"Your message to someone@example.org could not be delivered yet: it is being held\r\n" +
			"because your address has not been verified. Please confirm by replying.\r\n",
		"feedback.eml": "From: fbl@isp.example\r\nTo: fbl@example.com\r\nSubject: report\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n" +
			"--F\r\nContent-Type: text/plain\r\n\r\nThis message could not be delivered as wanted: abuse report.\r\n" +
			"--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n" +
			"--F\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: sender@example.com\r\nTo: user@isp.example\r\n\r\n--F--\r\n",
		"autoreply.eml": "From: someone@example.fi\r\nTo: sender@example.com\r\n" +
			"Subject: Automaattinen vastaus: offer\r\nContent-Type: text/plain\r\n\r\nLomalla.\r\n",
	}
	for name, raw := range msgs {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"inspect", "bounce", path}, &out, &errOut); code != exitOK {
			t.Fatalf("%s: exit %d: %s", name, code, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q, want nothing", name, out.String())
		}
	}
}
