package probesender

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailmon/mailmon/schemas/tracking"
)

// probeMessage is what buildMessage needs to know about one probe.
type probeMessage struct {
	ProbeID   string
	From      string
	FromName  string
	To        string
	Date      time.Time
	Tracking  string // signed X-Mailmon-Track value
	Variant   string
	Route     string
	Headers   map[string]string
	UnsubURL  string
	MessageID string // without angle brackets
}

// dkimHeaderKeys are the header fields our DKIM signature covers (RFC 6376
// 5.4.1), plus the tracking header so it cannot be altered in transit.
var dkimHeaderKeys = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post", tracking.HeaderName}

// buildMessage writes a well-formed RFC 5322 message with CRLF line ends.
func buildMessage(p probeMessage) []byte {
	var b bytes.Buffer
	h := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	h("Date", p.Date.Format(time.RFC1123Z))
	if p.FromName != "" {
		h("From", mime.QEncoding.Encode("utf-8", p.FromName)+" <"+p.From+">")
	} else {
		h("From", "<"+p.From+">")
	}
	h("To", "<"+p.To+">")
	h("Subject", "mailmon probe "+p.ProbeID)
	h("Message-ID", "<"+p.MessageID+">")
	h("MIME-Version", "1.0")
	b.WriteString(trackingHeader(p.Tracking))
	if p.Variant == VariantListUnsubscribe {
		unsub := "<mailto:" + mailtoAddress(p.From) + "?subject=unsubscribe%20" + p.ProbeID + ">"
		if p.UnsubURL != "" {
			sep := "?"
			if strings.Contains(p.UnsubURL, "?") {
				sep = "&"
			}
			unsub = "<" + p.UnsubURL + sep + "probe=" + p.ProbeID + ">, " + unsub
			h("List-Unsubscribe", unsub)
			h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		} else {
			h("List-Unsubscribe", unsub)
		}
	}
	keys := make([]string, 0, len(p.Headers))
	for k := range p.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h(k, p.Headers[k])
	}
	text := fmt.Sprintf("This is a deliverability probe sent by mailmon.\r\n\r\nProbe: %s\r\nRoute: %s\r\nSent: %s\r\n\r\nIt is read back automatically; no one needs to answer it.\r\n",
		p.ProbeID, p.Route, p.Date.UTC().Format(time.RFC3339))
	if p.Variant != VariantHTML {
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n")
		b.WriteString(text)
		return b.Bytes()
	}
	boundary := "mailmon-" + p.ProbeID
	h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	b.WriteString(text)
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(&b, "<!DOCTYPE html>\r\n<html><body>\r\n<p>This is a deliverability probe sent by <b>mailmon</b>.</p>\r\n"+
		"<table><tr><td>Probe</td><td>%s</td></tr><tr><td>Route</td><td>%s</td></tr><tr><td>Sent</td><td>%s</td></tr></table>\r\n"+
		"<p>It is read back automatically; no one needs to answer it.</p>\r\n</body></html>\r\n",
		htmlEscape(p.ProbeID), htmlEscape(p.Route), p.Date.UTC().Format(time.RFC3339))
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}

// trackingHeader writes the tracking header on one line. It is not folded
// at 78 characters (RFC 5322's SHOULD; lines up to 998 are allowed): the
// MTA log tailer reads it from Postfix's header_checks log line, where
// cleanup writes a fold's line break as "?", which no verifier can take
// for whitespace.
func trackingHeader(value string) string {
	return tracking.HeaderName + ": " + value + "\r\n"
}

func mailtoAddress(from string) string {
	_, domain, _ := strings.Cut(from, "@")
	return "unsubscribe@" + domain
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// signDKIM returns msg with a DKIM-Signature header prepended.
func signDKIM(msg []byte, c DKIMConfig, signer crypto.Signer) ([]byte, error) {
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:                 c.Domain,
		Selector:               c.Selector,
		Signer:                 signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             presentKeys(msg, dkimHeaderKeys),
	})
	if err != nil {
		return nil, fmt.Errorf("dkim sign: %w", err)
	}
	return out.Bytes(), nil
}

// presentKeys keeps the keys that msg's header has, so the signature does
// not claim the absence of optional fields.
func presentKeys(msg []byte, keys []string) []string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lower := strings.ToLower("\r\n" + string(head))
	var out []string
	for _, k := range keys {
		if strings.Contains(lower, "\r\n"+strings.ToLower(k)+":") {
			out = append(out, k)
		}
	}
	return out
}

// signer parses the configured private key. Errors never quote the key.
func (c DKIMConfig) signer() (crypto.Signer, error) {
	data := []byte(c.PrivateKey.Reveal())
	if c.PrivateKeyFile != "" {
		var err error
		if data, err = os.ReadFile(c.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("read private_key_file: %w", err)
		}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the DKIM key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("the DKIM key is neither PKCS#1 nor PKCS#8")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("DKIM key type %T is not RSA or Ed25519", k)
	}
}

func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
