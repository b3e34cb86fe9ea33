package fblingester

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
)

// dnsServer is a real DNS server (miekg/dns) on loopback serving TXT
// records, the DKIM keys of the test domains.
type dnsServer struct {
	addr     string
	mu       sync.Mutex
	txt      map[string]string // fqdn → TXT
	servfail map[string]bool
	queries  map[string]int
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{txt: map[string]string{}, servfail: map[string]bool{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *dnsServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	if len(q.Question) == 1 {
		name := strings.ToLower(q.Question[0].Name)
		s.mu.Lock()
		s.queries[strings.TrimSuffix(name, ".")]++
		txt, ok := s.txt[name]
		fail := s.servfail[name]
		s.mu.Unlock()
		switch {
		case fail:
			m.Rcode = dns.RcodeServerFailure
		case ok && q.Question[0].Qtype == dns.TypeTXT:
			var parts []string
			for len(txt) > 255 {
				parts, txt = append(parts, txt[:255]), txt[255:]
			}
			parts = append(parts, txt)
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: parts})
		case !ok:
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

// queried says how often a name was asked for.
func (s *dnsServer) queried(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[name]
}

// signer is a DKIM key of one domain, published in the test DNS.
type signer struct {
	domain, selector string
	key              ed25519.PrivateKey
}

func (s *dnsServer) newSigner(t *testing.T, domain string) *signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sg := &signer{domain: domain, selector: "s2026", key: priv}
	s.mu.Lock()
	s.txt[sg.selector+"._domainkey."+domain+"."] = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	s.mu.Unlock()
	return sg
}

func (s *dnsServer) failFor(sg *signer) {
	s.mu.Lock()
	s.servfail[sg.selector+"._domainkey."+sg.domain+"."] = true
	s.mu.Unlock()
}

// sign returns msg with a DKIM-Signature of the signer's domain on top.
func (sg *signer) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: sg.domain, Selector: sg.selector, Signer: sg.key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// reportSpec describes a feedback report for the trust tests.
type reportSpec struct {
	reportID string    // the report's own Message-ID (local part)
	from     string    // the report's From address
	sourceIP string    // Source-IP
	track    string    // X-Mailmon-Track of the original ("" for none)
	origID   string    // the original's Message-ID
	rcpt     string    // Original-Rcpt-To
	origDKIM string    // a DKIM-Signature line for the original ("" none)
	origFull []byte    // the whole original (signed); else a header is built
	headers  bool      // return only the original's header (text/rfc822-headers)
	arrival  time.Time // Arrival-Date; zero: now
}

func (r reportSpec) build() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	arrival := r.arrival
	if arrival.IsZero() {
		arrival = time.Now().Add(-time.Hour)
	}
	from := r.from
	if from == "" {
		from = "feedback@fbl.provider.test"
	}
	w("From: Feedback Loop <%s>", from)
	w("To: fbl@sender.example")
	w("Subject: complaint about message from %s", r.sourceIP)
	w("Date: %s", time.Now().UTC().Format(time.RFC1123Z))
	w("Message-ID: <%s@fbl.provider.test>", r.reportID)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=feedback-report; boundary=\"BOUND\"")
	w("")
	w("--BOUND")
	w("Content-Type: text/plain")
	w("")
	w("This is an email abuse report for an email message received from IP %s.", r.sourceIP)
	w("")
	w("--BOUND")
	w("Content-Type: message/feedback-report")
	w("")
	w("Feedback-Type: abuse")
	w("User-Agent: ProviderFBL/1.0")
	w("Version: 1")
	w("Original-Mail-From: <bounce-1@sender.example>")
	w("Original-Rcpt-To: <%s>", r.rcpt)
	w("Arrival-Date: %s", arrival.UTC().Format(time.RFC1123Z))
	w("Reporting-MTA: dns; mx.provider.test")
	w("Source-IP: %s", r.sourceIP)
	w("")
	w("--BOUND")
	if r.origFull != nil {
		w("Content-Type: message/rfc822")
		w("")
		b.Write(r.origFull)
		w("")
	} else {
		if r.headers {
			w("Content-Type: text/rfc822-headers")
		} else {
			w("Content-Type: message/rfc822")
		}
		w("")
		b.WriteString(r.originalHeader())
		if !r.headers {
			w("")
			w("Everything must go.")
		}
	}
	w("--BOUND--")
	return []byte(b.String())
}

func (r reportSpec) originalHeader() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("Received: from out1.sender.example ([%s]) by mx.provider.test; Mon, 7 Dec 2026 11:58:12 +0000", r.sourceIP)
	if r.origDKIM != "" {
		w("%s", r.origDKIM)
	}
	if r.track != "" {
		w("X-Mailmon-Track: %s", r.track)
	}
	w("From: \"Acme Shop\" <news@sender.example>")
	w("To: %s", r.rcpt)
	w("Subject: Winter sale")
	w("Message-ID: <%s>", r.origID)
	return b.String()
}

// original is a whole message from one of our customers, to be signed
// and returned in a report.
func original(origID, rcpt string) []byte {
	return []byte("From: \"Acme Shop\" <news@sender.example>\r\nTo: " + rcpt + "\r\nSubject: Winter sale\r\n" +
		"Date: " + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + origID + ">\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nEverything must go.\r\n")
}
