package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/peers"
)

// outlookBlockReply is how outlook.lab refuses 127.0.0.3: Outlook.com's
// own wording for a sending network on its block list, error S3150, as
// listed in Microsoft's sender troubleshooting page
// (https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx,
// "550 SC-001 … S3150"). mailmon's reply classifier knows it as a
// blocklist refusal (bounceclass rule outlook-network-blocklist).
const outlookBlockReply = "550 5.7.1 Unfortunately, messages from [127.0.0.3] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors."

// mxConfig is the providers' receiving Postfix: one instance answers for
// gmail.lab, yahoo.lab, outlook.lab and ops.lab and delivers to the lab's
// Dovecot over LMTP, each provider judging our IPs its own way through a
// restriction class picked by recipient domain:
//   - gmail.lab greylists: the first attempt of each client, sender and
//     recipient is answered 450 4.7.1 (the lab's greylisting policy);
//   - yahoo.lab files mail from 127.0.0.3 into spam (it prepends
//     X-Spam-Flag: YES, which Dovecot's sieve files into Junk);
//   - outlook.lab refuses 127.0.0.3 with Outlook's S3150 reply.
//
// Unknown recipients are refused at RCPT (550 5.1.1), so our MTA bounces
// them to the customer's return path.
func mxConfig(dir string, port int, dv *peers.Dovecot, greylistAddr string) peers.PostfixConfig {
	var known []string
	for _, m := range append(mailboxes(), AbuseAddress) {
		known = append(known, m+" ok")
	}
	return peers.PostfixConfig{
		Dir:      dir,
		SMTPPort: port,
		Main: map[string]string{
			"myhostname":                "mx.lab",
			"mydomain":                  "lab",
			"mynetworks":                "127.0.0.1/32",
			"virtual_mailbox_domains":   "gmail.lab yahoo.lab outlook.lab ops.lab",
			"virtual_mailbox_maps":      "texthash:$config_directory/mailboxes",
			"virtual_transport":         fmt.Sprintf("lmtp:inet:127.0.0.1:%d", dv.LMTP),
			"smtpd_restriction_classes": "gmail_lab, yahoo_lab, outlook_lab",
			"gmail_lab":                 "check_policy_service inet:" + greylistAddr,
			"yahoo_lab":                 "check_client_access cidr:$config_directory/yahoo_spam",
			"outlook_lab":               "check_client_access cidr:$config_directory/outlook_reputation",
			"smtpd_recipient_restrictions": "reject_unauth_destination, " +
				"check_recipient_access texthash:$config_directory/provider_policy",
		},
		Files: map[string]string{
			"mailboxes":          joinLines(known...),
			"provider_policy":    joinLines("gmail.lab gmail_lab", "yahoo.lab yahoo_lab", "outlook.lab outlook_lab"),
			"yahoo_spam":         joinLines(ipOut3 + "/32 PREPEND X-Spam-Flag: YES"),
			"outlook_reputation": joinLines(ipOut3 + "/32 " + outlookBlockReply),
		},
	}
}

// mtaConfig is our MTA, the Postfix mailmon watches:
//   - customers submit on the main smtpd; sender_dependent_default_transport_maps
//     sends each customer's mail from its pool (transports out2 and out3,
//     each with its smtp_bind_address and its own syslog_name, which the
//     log tailer maps to the IP);
//   - probes come in on one smtpd per probe source (probe_sender.sources),
//     whose content_filter sends them through that source's transport;
//   - every recipient is checked with the policy service
//     (policy_service.listen); a reroute answers FILTER ndr:, and ndr
//     sends from 127.0.0.4 to default_filter_nexthop, the providers' MX;
//   - header_checks logs the tracking header (mta_log_tailer);
//   - mail to our own domains (return paths, the FBL address) goes to the
//     fbl-ingester's listener.
func mtaConfig(cfg app.Config, dir string, submission, mxPort int) (peers.PostfixConfig, error) {
	if _, err := loopbackPort(cfg.PolicyService.Listen); err != nil {
		return peers.PostfixConfig{}, fmt.Errorf("policy_service.listen: %w", err)
	}
	fblPort, err := loopbackPort(cfg.FBLIngester.SMTP.Listen)
	if err != nil {
		return peers.PostfixConfig{}, fmt.Errorf("fbl_ingester.smtp.listen: %w", err)
	}
	mx := fmt.Sprintf("[127.0.0.1]:%d", mxPort)
	// Each pool's smtp client logs under syslog_name postfix/<pool>, as
	// Postfix's own master.cf names its relay service: the log tailer maps
	// the name to the pool's IP (mta_log_tailer.source_ips), and every
	// line stays in the one instance "postfix", so a delivery still finds
	// its message's tracking header.
	master := []string{
		"out2 unix - - n - - smtp -o smtp_bind_address=" + ipOut2 + " -o smtp_helo_name=out2.mailmon.lab -o syslog_name=postfix/out2",
		"out3 unix - - n - - smtp -o smtp_bind_address=" + ipOut3 + " -o smtp_helo_name=out3.mailmon.lab -o syslog_name=postfix/out3",
		"ndr unix - - n - - smtp -o smtp_bind_address=" + ipNDR + " -o smtp_helo_name=ndr.mailmon.lab -o syslog_name=postfix/ndr",
	}
	transportOf := map[string]string{ipOut2: "out2", ipOut3: "out3"}
	for i, s := range cfg.ProbeSender.Sources {
		if s.Type != "smtp" {
			continue
		}
		port, err := loopbackPort(s.Addr)
		if err != nil {
			return peers.PostfixConfig{}, fmt.Errorf("probe_sender.sources[%d].addr: %w", i, err)
		}
		t, ok := transportOf[s.SourceIP]
		if !ok {
			return peers.PostfixConfig{}, fmt.Errorf("probe_sender.sources[%d].source_ip: the lab's MTA sends from %s or %s, not %q", i, ipOut2, ipOut3, s.SourceIP)
		}
		master = append(master, fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd -o content_filter=%s:", port, t))
	}
	var senders, transports []string
	for _, c := range labCustomers {
		senders = append(senders, "@"+c.domain+" "+c.transport+":")
	}
	for _, d := range cfg.FBLIngester.SMTP.Domains {
		transports = append(transports, fmt.Sprintf("%s smtp:[127.0.0.1]:%d", d, fblPort))
	}
	if len(transports) == 0 {
		return peers.PostfixConfig{}, errors.New("fbl_ingester.smtp.domains: the return-path domains are missing")
	}
	return peers.PostfixConfig{
		Dir:      dir,
		SMTPPort: submission,
		Main: map[string]string{
			"myhostname":             "mta.mailmon.lab",
			"mydomain":               "mailmon.lab",
			"relayhost":              mx,
			"default_transport":      "out2",
			"default_filter_nexthop": mx,
			"sender_dependent_default_transport_maps": "texthash:$config_directory/sender_transport",
			"transport_maps": "texthash:$config_directory/transport",
			"smtpd_recipient_restrictions": "check_policy_service inet:" + cfg.PolicyService.Listen +
				", permit_mynetworks, reject_unauth_destination",
			// Paired with policy_service.on_stale: enforce_unexpired.
			"smtpd_policy_service_default_action": "DEFER_IF_PERMIT",
			"smtpd_policy_service_try_limit":      "5",
			"header_checks":                       "regexp:$config_directory/header_checks",
		},
		Master: master,
		Files: map[string]string{
			"sender_transport": joinLines(senders...),
			"transport":        joinLines(transports...),
			"header_checks":    joinLines("/^X-Mailmon-Track:/ WARN"),
		},
	}, nil
}

// greylist is gmail.lab's greylisting: a Postfix policy server that
// answers DEFER_IF_PERMIT (450 4.7.1) to the first attempt of each client
// address, sender and recipient, and DUNNO from then on.
type greylist struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	seen  map[string]bool
	conns map[net.Conn]bool
}

// greylistMaxEntries bounds the memory of triplets; past it they are
// forgotten and greylisted again.
const greylistMaxEntries = 100000

func startGreylist() (*greylist, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab greylisting policy: %w", err)
	}
	g := &greylist{ln: ln, seen: map[string]bool{}, conns: map[net.Conn]bool{}}
	g.wg.Go(g.serve)
	return g, nil
}

func (g *greylist) addr() string { return g.ln.Addr().String() }

func (g *greylist) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns[c] = true
		g.mu.Unlock()
		g.wg.Go(func() {
			g.session(c)
			g.mu.Lock()
			delete(g.conns, c)
			g.mu.Unlock()
		})
	}
}

// session answers requests (name=value lines ending in an empty line)
// until the client closes, bounded in size and time: only the MX talks to
// it, but a broken request must not hold a goroutine.
func (g *greylist) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	attrs := map[string]string{}
	for {
		_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l != "" {
			if len(attrs) > 100 {
				return
			}
			k, v, _ := strings.Cut(l, "=")
			attrs[k] = v
			continue
		}
		key := attrs["client_address"] + "|" + strings.ToLower(attrs["sender"]) + "|" + strings.ToLower(attrs["recipient"])
		clear(attrs)
		g.mu.Lock()
		passed := g.seen[key]
		if !passed {
			if len(g.seen) >= greylistMaxEntries {
				clear(g.seen)
			}
			g.seen[key] = true
		}
		g.mu.Unlock()
		answer := "action=DUNNO\n\n"
		if !passed {
			answer = "action=DEFER_IF_PERMIT Greylisted, please try again later (gmail.lab greylists every first attempt)\n\n"
		}
		if _, err := c.Write([]byte(answer)); err != nil {
			return
		}
	}
}

func (g *greylist) stop() {
	g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}
