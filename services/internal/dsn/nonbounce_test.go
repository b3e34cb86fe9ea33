package dsn

import (
	"strings"
	"testing"
)

// nonBounces are messages that come back to a return path without being
// bounces, each written here from the standard or the documented template
// it follows.
var nonBounces = []struct {
	name, kind, raw string
}{
	{"rfc3834 auto-replied", KindAutoReply, `From: someone@example.org
To: sender@example.com
Subject: Re: offer
Auto-Submitted: auto-replied
Content-Type: text/plain

I am travelling and will read mail after the 20th. Delivery of your message was not affected.
`},
	{"outlook automatic reply, localised", KindAutoReply, `From: someone@example.se
To: sender@example.com
Subject: Automatiskt svar: offer
Content-Type: text/plain

Jag är ledig till den 20:e.
`},
	{"x-autoreply", KindAutoReply, `From: someone@example.org
To: sender@example.com
Subject: Re: offer
X-Autoreply: yes
Content-Type: text/plain

Thanks, your message could not be answered today.
`},
	{"precedence auto_reply", KindAutoReply, `From: someone@example.org
To: sender@example.com
Subject: Re: offer
Precedence: auto_reply
Content-Type: text/plain

Away.
`},
	{"challenge-response, TMDA header", KindAutoReply, `From: someone@example.org
To: sender@example.com
Subject: Please confirm your message
X-Delivery-Agent: TMDA/1.1.12
Content-Type: text/plain

This message was created automatically by mail delivery software.
Your message is being held until you confirm it.
`},
	{"challenge-response, subject and request", KindAutoReply, `From: verify@filter.example.net
To: sender@example.com
Subject: Sender verification required
Content-Type: text/plain

Your message to someone@example.org could not be delivered yet: it is being held
because your address has not been verified. Please confirm by replying.
`},
	{"feedback report", KindFeedback, `From: fbl@isp.example
To: fbl@example.com
Subject: FW: offer
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report: the message below was not delivered as wanted by the user.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: isp-fbl/1.0
Version: 1

--F
Content-Type: text/rfc822-headers

From: sender@example.com
To: user@isp.example
Subject: offer

--F--
`},
	{"delivered and relayed only", KindDelivered, `From: MAILER-DAEMON@out.example.com
To: sender@example.com
Subject: Successful Mail Delivery Report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="D"

--D
Content-Type: text/plain

Your message was successfully delivered.

--D
Content-Type: message/delivery-status

Reporting-MTA: dns; out.example.com

Final-Recipient: rfc822; a@example.org
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; b@example.org
Action: relayed
Status: 2.0.0

--D--
`},
}

// TestNonBounces checks that auto-replies, challenge-response requests,
// feedback reports and delivery notifications are recognised and give no
// failed recipient, even when their text speaks of delivery.
func TestNonBounces(t *testing.T) {
	for _, tt := range nonBounces {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(strings.ReplaceAll(tt.raw, "\n", "\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", b.Kind, tt.kind)
			}
			if f := b.Failed(); len(f) != 0 {
				t.Errorf("%d failed recipients, want none: %+v", len(f), f)
			}
			if v := b.Views(); len(v) != 0 {
				t.Errorf("%d views, want none", len(v))
			}
		})
	}
}

// TestChallengeNeedsBoth checks that a challenge subject alone, on a
// daemon's failure notice, does not hide a bounce.
func TestChallengeNeedsBoth(t *testing.T) {
	raw := `From: MAILER-DAEMON@out.example.com
To: sender@example.com
Subject: Undelivered Mail Returned to Sender (sender verification)
X-Failed-Recipients: gone@example.org
Content-Type: text/plain

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.org
    SMTP error from remote mail server after RCPT TO:<gone@example.org>:
    550 5.1.1 User unknown
`
	b, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != KindBounce || len(b.Failed()) != 1 || b.Failed()[0].Reason != "userunknown" {
		t.Errorf("Kind %q, failed %+v; want one userunknown bounce", b.Kind, b.Failed())
	}
}
