package lab

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/mailmon/mailmon/schemas/tracking"
)

// TrafficOptions pace the lab's customers and its feedback loop.
type TrafficOptions struct {
	// Interval is the time between two messages of one customer; 0 is
	// 2 s (with three customers, 1.5 messages a second in all).
	Interval time.Duration
	// ComplaintEvery: one in this many of the spammer's delivered messages
	// is reported by the feedback loop; 0 is 3.
	ComplaintEvery int
	// ComplaintDelay is how long after sending a message its complaint
	// arrives (a recipient reads, then clicks "spam"); 0 is 5 s.
	ComplaintDelay time.Duration
	// UnknownEvery: one in this many messages goes to a recipient the
	// provider does not know, and bounces; 0 is 15.
	UnknownEvery int
	// ReportEvery is the period of gmail.lab's DMARC aggregate reports:
	// one per customer domain is mailed to the fbl-ingester at its end;
	// 0 is 1 min.
	ReportEvery time.Duration
}

func (o TrafficOptions) withDefaults() TrafficOptions {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.ComplaintEvery <= 0 {
		o.ComplaintEvery = 3
	}
	if o.ComplaintDelay <= 0 {
		o.ComplaintDelay = 5 * time.Second
	}
	if o.UnknownEvery <= 0 {
		o.UnknownEvery = 15
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Minute
	}
	return o
}

// smtpTimeout bounds one submission to our MTA or the fbl-ingester.
const smtpTimeout = 30 * time.Second

// runTraffic sends each customer's mail through our MTA until ctx ends.
// Each message carries the tracking header, signed here as the customer's
// sending application would sign it (schemas/tracking: the header is
// per message and HMAC-signed, which a static Postfix PREPEND cannot do).
// One in ComplaintEvery of the spammer's messages to providers that accept
// them is reported by the feedback-loop operator, ComplaintDelay later.
// Every ReportEvery, gmail.lab mails its DMARC aggregate reports of the
// mail it received (dmarc.go).
func runTraffic(ctx context.Context, w *World, opts TrafficOptions, log *slog.Logger) {
	opts = opts.withDefaults()
	keys, err := keyring(w)
	if err != nil {
		log.Error("lab traffic cannot sign the tracking header; no customer mail is sent", "error", err)
		return
	}
	type complaint struct {
		due time.Time
		msg sentMessage
	}
	var pending []complaint
	tick := time.NewTicker(opts.Interval / time.Duration(len(labCustomers)))
	defer tick.Stop()
	var n, spam int
	tally := newDMARCTally(time.Now().UTC().Truncate(time.Second))
	sent := map[string]int{} // per customer, so every customer's mail bounces now and then
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c := labCustomers[n%len(labCustomers)]
			n++
			sent[c.name]++
			unknown := sent[c.name]%opts.UnknownEvery == 0
			msg, err := buildCustomerMessage(keys, c, now, unknown)
			if err != nil {
				log.Error("lab traffic: building a message failed", "customer", c.name, "error", err)
				continue
			}
			if err := submit(w.SubmissionAddr(), "lab-traffic.mailmon.lab", msg.envelopeFrom, msg.rcpt, msg.data); err != nil {
				var se *smtp.SMTPError
				if errors.As(err, &se) && se.EnhancedCode == (smtp.EnhancedCode{5, 1, 1}) {
					// The policy service refused a recipient on the
					// customer's suppression list: the loop working.
					log.Info("lab traffic: our MTA refused a suppressed recipient", "customer", c.name, "rcpt", msg.rcpt)
					continue
				}
				log.Warn("lab traffic: our MTA did not take a customer message", "customer", c.name, "rcpt", msg.rcpt, "error", err)
				continue
			}
			tally.add(c, msg.rcpt)
			if c.spammer && !unknown && !strings.HasSuffix(msg.rcpt, "@outlook.lab") {
				spam++
				if spam%opts.ComplaintEvery == 0 {
					pending = append(pending, complaint{due: now.Add(opts.ComplaintDelay), msg: msg})
				}
			}
			for len(pending) > 0 && !pending[0].due.After(now) {
				report, err := buildComplaint(w.operatorKey, pending[0].msg, now)
				if err == nil {
					err = submit(w.Config.FBLIngester.SMTP.Listen, "mx.fbl.lab", operatorFrom, fblAddress, report)
				}
				if err != nil {
					log.Warn("lab feedback loop: the fbl-ingester did not take a report", "error", err)
				}
				pending = pending[1:]
			}
			if end := now.UTC().Truncate(time.Second); end.Sub(tally.begin) >= opts.ReportEvery {
				for _, report := range tally.reports(end.Add(-time.Second)) {
					if err := submit(w.Config.FBLIngester.SMTP.Listen, "mx.gmail.lab", dmarcReporterFrom, fblAddress, report); err != nil {
						log.Warn("lab DMARC reports: the fbl-ingester did not take a report", "error", err)
					}
				}
				tally = newDMARCTally(end)
			}
		}
	}
}

// keyring is the lab config's tracking keyring.
func keyring(w *World) (tracking.Keyring, error) {
	ring := tracking.Keyring{Current: tracking.Key{ID: w.Config.Tracking.Key.ID, Secret: []byte(w.Config.Tracking.Key.Secret.Reveal())}}
	return ring, ring.Validate()
}

// sentMessage is one customer message as submitted.
type sentMessage struct {
	customer     labCustomer
	envelopeFrom string
	rcpt         string
	data         []byte
	sentAt       time.Time
}

var subjects = map[string][]string{
	"shop":      {"Your order has shipped", "Your receipt", "Items back in stock"},
	"travel":    {"Your booking confirmation", "Check-in opens tomorrow", "Your itinerary changed"},
	"bulkdeals": {"YOU WON a FREE cruise!!!", "Last chance: 90% off pills", "Claim your prize now"},
}

// buildCustomerMessage writes one message of customer c to a random
// mailbox of a random provider, or to an unknown one.
func buildCustomerMessage(keys tracking.Keyring, c labCustomer, now time.Time, unknown bool) (sentMessage, error) {
	p := labProviders[rand.IntN(len(labProviders))]
	rcpt := fmt.Sprintf("user%d@%s", 1+rand.IntN(recipientsPerProvider), p.domain)
	if unknown {
		rcpt = fmt.Sprintf("gone%d@%s", rand.IntN(1000), p.domain)
	}
	id := uuid.NewString()
	track, err := keys.Sign(tracking.Fields{Customer: c.name, Source: c.ip, MessageID: id, Time: now})
	if err != nil {
		return sentMessage{}, err
	}
	list := subjects[c.name]
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s <news@%s>\r\n", c.name, c.domain)
	fmt.Fprintf(&b, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&b, "Subject: %s\r\n", list[rand.IntN(len(list))])
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", id, c.domain)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "X-Mailmon-Track: %s\r\n\r\n", track)
	fmt.Fprintf(&b, "Hello,\r\n\r\nthis is %s's mail, sent by the mailmon lab's traffic generator.\r\n", c.name)
	return sentMessage{customer: c, envelopeFrom: "bounces@" + c.domain, rcpt: rcpt, data: b.Bytes(), sentAt: now}, nil
}

// buildComplaint is the feedback-loop operator's ARF report (RFC 5965)
// about msg, DKIM-signed with the operator's key (fbl_ingester.trust).
func buildComplaint(key ed25519.PrivateKey, msg sentMessage, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	boundary := "lab-arf-" + uuid.NewString()
	fmt.Fprintf(&b, "From: fbl.lab feedback loop <%s>\r\n", operatorFrom)
	fmt.Fprintf(&b, "To: <%s>\r\n", fblAddress)
	fmt.Fprintf(&b, "Subject: complaint about a message from %s\r\n", msg.customer.domain)
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@fbl.lab>\r\n", uuid.NewString())
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=feedback-report; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary)
	fmt.Fprintf(&b, "A recipient marked this message from %s as spam.\r\n\r\n", msg.customer.ip)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/feedback-report\r\n\r\n", boundary)
	fmt.Fprintf(&b, "Feedback-Type: abuse\r\nUser-Agent: mailmon-lab-fbl/1.0\r\nVersion: 1\r\n")
	fmt.Fprintf(&b, "Original-Mail-From: <%s>\r\n", msg.envelopeFrom)
	fmt.Fprintf(&b, "Original-Rcpt-To: <%s>\r\n", msg.rcpt)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", msg.sentAt.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Source-IP: %s\r\n", msg.customer.ip)
	fmt.Fprintf(&b, "Reported-Domain: %s\r\n\r\n", msg.customer.domain)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/rfc822\r\n\r\n", boundary)
	b.Write(msg.data)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	var signed bytes.Buffer
	err := dkim.Sign(&signed, &b, &dkim.SignOptions{
		Domain: operatorDomain, Selector: operatorSelector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"},
	})
	return signed.Bytes(), err
}

// submit sends one message over plain SMTP on loopback.
func submit(addr, helo, from, rcpt string, data []byte) error {
	conn, err := net.DialTimeout("tcp", addr, smtpTimeout)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = smtpTimeout, smtpTimeout
	if err := c.Hello(helo); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(data); err != nil {
		wc.Close()
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}
