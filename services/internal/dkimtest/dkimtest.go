// Package dkimtest publishes DKIM keys for tests: a real DNS server
// (miekg/dns) on loopback answers the TXT queries of the verifier under
// test, and Signers sign messages with those keys (Ed25519, RFC 8463).
package dkimtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
)

// Selector is the selector of every key a Server publishes.
const Selector = "s2026"

// Server is a DNS server on loopback serving the published keys' TXT
// records; other names are NXDOMAIN.
type Server struct {
	// Addr is host:port of the server (UDP), for a resolver setting.
	Addr     string
	mu       sync.Mutex
	txt      map[string]string // fqdn → TXT
	servfail map[string]bool
	queries  map[string]int
}

// Start runs a Server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{txt: map[string]string{}, servfail: map[string]bool{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
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
			// A TXT record is character-strings of at most 255 bytes.
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

// Queried says how often a name (without the final dot) was asked for.
func (s *Server) Queried(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[name]
}

// Signer is a DKIM key of one domain.
type Signer struct {
	Domain, Selector string
	Key              ed25519.PrivateKey
}

// NewSigner makes a key for domain and publishes it.
func (s *Server) NewSigner(t testing.TB, domain string) *Signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sg := &Signer{Domain: domain, Selector: Selector, Key: priv}
	s.mu.Lock()
	s.txt[sg.Selector+"._domainkey."+domain+"."] = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	s.mu.Unlock()
	return sg
}

// FailFor makes the server answer SERVFAIL for sg's key from now on.
func (s *Server) FailFor(sg *Signer) {
	s.mu.Lock()
	s.servfail[sg.Selector+"._domainkey."+sg.Domain+"."] = true
	s.mu.Unlock()
}

// Sign returns msg with a DKIM-Signature of the signer's domain on top
// (relaxed/relaxed, over the header fields a report carries).
func (sg *Signer) Sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: sg.Domain, Selector: sg.Selector, Signer: sg.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
