package dsn

import (
	"bytes"
	"fmt"
	"testing"
)

// stageDSN is a Postfix-style delivery status notification for one
// recipient: the human-readable part says what the remote server replied
// and to which command, the delivery-status part gives status and
// diagnostic without the command.
func stageDSN(human, status, diagnostic string) []byte {
	return fmt.Appendf(nil, `From: MAILER-DAEMON@out.sender.example
To: bounces@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<rcpt@remote.example>: host mx.remote.example[192.0.2.7] said: %s

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; out.sender.example

Final-Recipient: rfc822; rcpt@remote.example
Action: failed
Status: %s
Diagnostic-Code: smtp; %s

--B--
`, human, status, diagnostic)
}

// TestStageDecides checks that the SMTP command named in the
// human-readable part reaches the classifier: an unknown-user reply that
// answered the end of DATA is a content filter unless the status names the
// mailbox (RFC 3463 X.1.1), and the same reply to MAIL FROM refuses the
// sender.
func TestStageDecides(t *testing.T) {
	tests := []struct {
		human, status, diag string
		command, reason     string
	}{
		{"550 User unknown (in reply to end of DATA command)", "5.0.0", "550 User unknown", "DATA", "filtered"},
		{"550 5.1.1 User unknown (in reply to end of DATA command)", "5.1.1", "550 5.1.1 User unknown", "DATA", "userunknown"},
		{"550 User unknown (in reply to RCPT TO command)", "5.0.0", "550 User unknown", "RCPT", "userunknown"},
		{"550 User unknown (in reply to MAIL FROM command)", "5.0.0", "550 User unknown", "MAIL", "rejected"},
		{"SMTP error from remote mail server after end of data: 550 User unknown", "5.0.0", "550 User unknown", "DATA", "filtered"},
		{"192.0.2.7 failed after I sent the message. Remote host said: 550 User unknown", "5.0.0", "550 User unknown", "DATA", "filtered"},
	}
	for _, tt := range tests {
		b, err := Parse(stageDSN(tt.human, tt.status, tt.diag))
		if err != nil {
			t.Fatalf("%q: %v", tt.human, err)
		}
		failed := b.Failed()
		if len(failed) != 1 {
			t.Fatalf("%q: %d failed recipients, want 1", tt.human, len(failed))
		}
		r := failed[0]
		if r.Command != tt.command || r.Reason != tt.reason {
			t.Errorf("%q: command, reason = %q, %q; want %q, %q", tt.human, r.Command, r.Reason, tt.command, tt.reason)
		}
	}
}

// TestGaveUpOnNetwork checks that a recipient that failed with a transient
// network status (RFC 3463 X.4.x) after the queue lifetime is reported as
// expired, while a delayed one keeps the network error it is retrying.
func TestGaveUpOnNetwork(t *testing.T) {
	const human = "connect to mx.remote.example[192.0.2.7]:25: Connection timed out. Giving up: the message has been in the queue too long"
	for action, want := range map[string]string{"failed": "expired", "delayed": "networkerror"} {
		raw := bytes.Replace(stageDSN(human, "4.4.1", "connect to mx.remote.example[192.0.2.7]:25: Connection refused"), []byte("Action: failed"), []byte("Action: "+action), 1)
		b, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Recipients) != 1 || b.Recipients[0].Reason != want {
			t.Errorf("Action %s: %+v, want reason %s", action, b.Recipients, want)
		}
	}
}
