package lab

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
)

// The lab config as shipped is complete for the lab: it validates after
// Prepare, the tailer follows the lab MTA's log, and the MTA's and the
// providers' settings derive from it (one IMAP port and password for the
// seeds, the e-mail route's relay as the providers' MX, a probe listener
// per source routed through that source's pool).
func TestLabConfigDrivesTheWorld(t *testing.T) {
	cfg, err := app.Load(labConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := Prepare(&cfg); err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.DataDir) {
		t.Errorf("data_dir %q is not absolute after Prepare", cfg.DataDir)
	}
	if got, want := cfg.MTALogTailer.Files[0].Path, filepath.Join(cfg.DataDir, "mta", "maillog"); len(cfg.MTALogTailer.Files) != 1 || got != want {
		t.Errorf("tailer follows %v, want only %s", cfg.MTALogTailer.Files, want)
	}
	if _, port, err := seedAccounts(cfg); err != nil || port != 2143 {
		t.Errorf("seed accounts: port %d, %v", port, err)
	}
	mx, err := mxPort(cfg)
	if err != nil || mx != 2625 {
		t.Fatalf("providers' MX port %d, %v", mx, err)
	}
	mta, err := mtaConfig(cfg, t.TempDir(), DefaultSubmissionPort, mx)
	if err != nil {
		t.Fatal(err)
	}
	master := strings.Join(mta.Master, "\n")
	for _, want := range []string{
		"127.0.0.1:2602 inet n - n - - smtpd -o content_filter=out2:",
		"127.0.0.1:2603 inet n - n - - smtpd -o content_filter=out3:",
		"smtp_bind_address=127.0.0.4", "syslog_name=postfix/ndr",
	} {
		if !strings.Contains(master, want) {
			t.Errorf("master.cf lacks %q:\n%s", want, master)
		}
	}
	if got := mta.Main["smtpd_recipient_restrictions"]; !strings.HasPrefix(got, "check_policy_service inet:127.0.0.1:10040,") {
		t.Errorf("the policy service is not asked first: %q", got)
	}
	if got := mta.Files["transport"]; !strings.Contains(got, "shop.lab smtp:[127.0.0.1]:2626") {
		t.Errorf("return paths do not go to the fbl-ingester:\n%s", got)
	}

	// A config without lab: true is refused.
	cfg.Lab = false
	if err := Prepare(&cfg); err == nil {
		t.Error("Prepare accepted a config without lab: true")
	}
}

// gmail.lab's greylisting answers 450 (DEFER_IF_PERMIT) to the first
// attempt of a client, sender and recipient, then DUNNO; another triplet
// is greylisted again.
func TestGreylistDefersTheFirstAttempt(t *testing.T) {
	g, err := startGreylist()
	if err != nil {
		t.Fatal(err)
	}
	defer g.stop()
	c, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func(client, rcpt string) string {
		fmt.Fprintf(c, "request=smtpd_access_policy\nclient_address=%s\nsender=a@shop.lab\nrecipient=%s\n\n", client, rcpt)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if blank, _ := r.ReadString('\n'); blank != "\n" {
			t.Fatalf("answer not ended by an empty line: %q", blank)
		}
		return strings.TrimSpace(line)
	}
	for _, step := range []struct{ client, rcpt, want string }{
		{"127.0.0.2", "user1@gmail.lab", "action=DEFER_IF_PERMIT"},
		{"127.0.0.2", "user1@gmail.lab", "action=DUNNO"},
		{"127.0.0.3", "user1@gmail.lab", "action=DEFER_IF_PERMIT"},
		{"127.0.0.2", "USER1@gmail.lab", "action=DUNNO"},
	} {
		if got := ask(step.client, step.rcpt); !strings.HasPrefix(got, step.want) {
			t.Errorf("%s → %s: %q, want %s…", step.client, step.rcpt, got, step.want)
		}
	}
}

// The lab DNS answers what the audit and the DKIM verifier ask: forward
// confirmed PTRs of the three pools, SPF authorising them, DMARC, the
// sending domains' and the operator's DKIM keys; unknown names are
// NXDOMAIN, known names without the type NOERROR and empty.
func TestLabDNSAnswers(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	records, err := zoneData(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startDNS("127.0.0.1:0", records)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ask := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, s.Addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return resp
	}
	text := func(resp *dns.Msg) string {
		var out []string
		for _, rr := range resp.Answer {
			out = append(out, rr.String())
		}
		return strings.Join(out, "\n")
	}
	for _, ip := range []string{ipOut2, ipOut3, ipNDR} {
		rev, _ := dns.ReverseAddr(ip)
		ptr := ask(rev, dns.TypePTR)
		if len(ptr.Answer) != 1 {
			t.Fatalf("PTR %s: %s", ip, text(ptr))
		}
		host := ptr.Answer[0].(*dns.PTR).Ptr
		if a := ask(host, dns.TypeA); len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != ip {
			t.Errorf("%s → %s → %s: not forward-confirmed", ip, host, text(a))
		}
	}
	for _, d := range sendingDomains() {
		if got := text(ask(d, dns.TypeTXT)); !strings.Contains(got, "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 ip4:127.0.0.4 -all") {
			t.Errorf("SPF of %s: %s", d, got)
		}
		if got := text(ask("_dmarc."+d, dns.TypeTXT)); !strings.Contains(got, "v=DMARC1") {
			t.Errorf("DMARC of %s: %s", d, got)
		}
		if got := text(ask(dkimSelector+"._domainkey."+d, dns.TypeTXT)); !strings.Contains(got, "k=ed25519") {
			t.Errorf("DKIM of %s: %s", d, got)
		}
		if mx := ask(d, dns.TypeMX); len(mx.Answer) != 1 {
			t.Errorf("MX of %s: %s", d, text(mx))
		}
	}
	if got := text(ask(operatorSelector+"._domainkey."+operatorDomain, dns.TypeTXT)); !strings.Contains(got, "k=ed25519") {
		t.Errorf("operator key: %s", got)
	}
	if resp := ask("nowhere.lab", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: rcode %d, want NXDOMAIN", resp.Rcode)
	}
	if resp := ask("shop.lab", dns.TypeAAAA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("known name, other type: rcode %d, %d answers", resp.Rcode, len(resp.Answer))
	}
}
