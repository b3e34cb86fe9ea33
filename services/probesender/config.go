package probesender

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
)

// Kinds of source.
const (
	SourceSMTP     = "smtp"
	SourceSendmail = "sendmail"
)

// TLS modes of an SMTP source.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
)

// Content variants of a probe.
const (
	VariantPlain           = "plain"
	VariantHTML            = "html"
	VariantListUnsubscribe = "list_unsubscribe"
)

// DefaultCustomer is the customer written into the tracking header of every
// probe; the retriever accepts only probes signed for it.
const DefaultCustomer = "mailmon-probe"

// Config is the `probe_sender` section.
type Config struct {
	// Interval between rounds; each round sends one probe per (source,
	// target). Rounds start on multiples of interval (wall clock), the
	// first at start unless another copy already sent that slot's round.
	Interval config.Duration `yaml:"interval"`
	// Jitter spreads the probes of a round: each starts after a random delay
	// in [0, jitter). Must be shorter than interval.
	Jitter config.Duration `yaml:"jitter"`
	// From is the sender address of every probe (envelope and header); it
	// must be a real mailbox of a domain with SPF/DKIM/DMARC in place, or
	// providers judge the probe on that instead of on the path.
	From string `yaml:"from"`
	// FromName is the display name of the From header.
	FromName string `yaml:"from_name"`
	// Customer is the customer name signed into the tracking header.
	// The mailbox-retriever accepts only probes of this customer.
	Customer string `yaml:"customer"`
	// Concurrency bounds the submissions in flight at once.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one submission, connect to final reply.
	Timeout config.Duration `yaml:"timeout"`
	// DefaultRatePerMinute caps probes per provider per minute when the
	// provider is not in provider_rate_per_minute. 0 is no cap.
	DefaultRatePerMinute int `yaml:"default_rate_per_minute"`
	// ProviderRatePerMinute caps probes per minute for a provider, summed
	// over all sources.
	ProviderRatePerMinute map[string]int `yaml:"provider_rate_per_minute"`
	// ListUnsubscribeURL is the https URL of the list_unsubscribe variant
	// (RFC 8058 one-click); a mailto: to From's domain is always included.
	ListUnsubscribeURL string `yaml:"list_unsubscribe_url"`
	// DKIM signs every probe when domain is set.
	DKIM DKIMConfig `yaml:"dkim"`
	// Sources are our outgoing paths.
	Sources []Source `yaml:"sources"`
	// Targets are the seed addresses, one per provider mailbox; the
	// mailbox-retriever holds their credentials.
	Targets []Target `yaml:"targets"`
	// LeaderLease elects the one copy that sends when several probe-senders
	// run (KV bucket leases, key probe-sender); the others stand by and
	// take over within one TTL when it dies, at once when it stops cleanly.
	// Each round's slot is claimed too, so a takeover never sends a slot's
	// round twice.
	LeaderLease lease.Config `yaml:"leader_lease"`
}

// DKIMConfig is the optional DKIM signature.
type DKIMConfig struct {
	// Domain signs every probe when set (d=; relaxed/relaxed, the signature
	// covers the tracking header).
	Domain string `yaml:"domain"`
	// Selector names the key: <selector>._domainkey.<domain>.
	Selector string `yaml:"selector"`
	// PrivateKey is the PEM key (PKCS#1 or PKCS#8, RSA or Ed25519), inline
	// from the environment with ${env:NAME}; or PrivateKeyFile.
	PrivateKey     config.Secret `yaml:"private_key"`
	PrivateKeyFile string        `yaml:"private_key_file"`
}

// Source is one outgoing path.
type Source struct {
	// Name identifies the path in events (route) and metrics.
	Name string `yaml:"name"`
	// Type is "smtp" (a relay: one of our outgoing MTAs) or "sendmail" (the
	// local sendmail command).
	Type string `yaml:"type"`
	// Addr is the relay's host:port.
	Addr string `yaml:"addr"`
	// TLS is "starttls" (default), "implicit" or "none".
	TLS string `yaml:"tls"`
	// TLSServerName overrides the name the certificate is checked against
	// (default: the host of addr).
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCAFile adds a PEM CA bundle to trust (a private relay CA).
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSInsecureSkipVerify turns certificate verification off. Off by
	// default; use tls_ca_file for private CAs instead.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
	// Username and Password enable SMTP AUTH.
	// Empty username: no SMTP AUTH. With tls "none", AUTH is refused unless
	// the relay is on loopback.
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// AuthMechanism is "plain" (default) or "login".
	AuthMechanism string `yaml:"auth_mechanism"`
	// HeloName is the EHLO/HELO name (default: the host name).
	HeloName string `yaml:"helo_name"`
	// LocalAddr binds the connection to one of our IPs (an outgoing IP of
	// a multi-IP host).
	LocalAddr string `yaml:"local_addr"`
	// SourceIP is the sending IP recorded in events (default local_addr);
	// set it when the relay sends from a known IP.
	SourceIP string `yaml:"source_ip"`
	// SendmailCommand is the command of a sendmail source (default
	// [/usr/sbin/sendmail, -i]); "-f FROM -- RCPT" is appended.
	SendmailCommand []string `yaml:"sendmail_command"`
}

// Target is one seed mailbox.
type Target struct {
	// Name identifies the target in events.
	Name string `yaml:"name"`
	// Provider is the mailbox provider, e.g. "gmail"; rate caps apply per
	// provider.
	Provider string `yaml:"provider"`
	// Address is the seed address.
	Address string `yaml:"address"`
	// Variants are the content variants used in turn, one per round:
	// plain, html, list_unsubscribe. Default [plain].
	Variants []string `yaml:"variants"`
	// Headers are extra header fields added to every probe to this target.
	Headers map[string]string `yaml:"headers"`
}

// DefaultConfig has no sources or targets: the worker idles until some are
// configured.
func DefaultConfig() Config {
	return Config{
		Interval:             config.Duration(time.Minute),
		Jitter:               config.Duration(20 * time.Second),
		Customer:             DefaultCustomer,
		Concurrency:          4,
		Timeout:              config.Duration(60 * time.Second),
		DefaultRatePerMinute: 60,
		LeaderLease:          lease.DefaultConfig(),
	}
}

// reservedHeaders cannot be set through a target's headers.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "subject": true, "date": true, "message-id": true,
	"mime-version": true, "content-type": true, "content-transfer-encoding": true,
	"x-mailmon-track": true, "dkim-signature": true,
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	if c.Interval <= 0 {
		check.Addf("interval", "must be positive")
	}
	if c.Jitter < 0 || c.Jitter >= c.Interval {
		check.Addf("jitter", "must be at least 0 and shorter than interval (%s)", c.Interval)
	}
	if c.Concurrency < 1 {
		check.Addf("concurrency", "must be at least 1")
	}
	if c.Timeout <= 0 {
		check.Addf("timeout", "must be positive")
	}
	if c.DefaultRatePerMinute < 0 {
		check.Addf("default_rate_per_minute", "must not be negative")
	}
	for p, n := range c.ProviderRatePerMinute {
		if n < 0 {
			check.Addf("provider_rate_per_minute."+p, "must not be negative")
		}
	}
	if c.Customer == "" {
		check.Addf("customer", "is required")
	}
	if len(c.Sources) > 0 || len(c.Targets) > 0 {
		if _, err := mail.ParseAddress(c.From); err != nil || !strings.Contains(c.From, "@") || strings.ContainsAny(c.From, "<> ") {
			check.Addf("from", "must be a plain address like probe@example.net, got %q", c.From)
		}
	}
	if c.ListUnsubscribeURL != "" && !strings.HasPrefix(c.ListUnsubscribeURL, "https://") {
		check.Addf("list_unsubscribe_url", "must be an https URL")
	}
	check.Nest("dkim", c.DKIM.validate())
	names := map[string]bool{}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		if s.Name == "" {
			check.Addf(p+".name", "is required")
		} else if names[s.Name] {
			check.Addf(p+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
		check.Nest(p, s.validate())
	}
	tnames := map[string]bool{}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if t.Name == "" {
			check.Addf(p+".name", "is required")
		} else if tnames[t.Name] {
			check.Addf(p+".name", "%q is used twice", t.Name)
		}
		tnames[t.Name] = true
		check.Require(p+".provider", t.Provider)
		if a, err := mail.ParseAddress(t.Address); err != nil || a.Address != t.Address {
			check.Addf(p+".address", "must be a plain address, got %q", t.Address)
		}
		for _, v := range t.Variants {
			if v != VariantPlain && v != VariantHTML && v != VariantListUnsubscribe {
				check.Addf(p+".variants", "%q is not plain, html or list_unsubscribe", v)
			}
		}
		for k, v := range t.Headers {
			if !validHeaderName(k) || reservedHeaders[strings.ToLower(k)] {
				check.Addf(p+".headers", "%q cannot be set", k)
			}
			if strings.ContainsAny(v, "\r\n") {
				check.Addf(p+".headers", "the value of %q has a line break", k)
			}
		}
	}
	check.Nest("leader_lease", c.LeaderLease.Validate())
	return check.Err()
}

func (c DKIMConfig) validate() error {
	var check config.Check
	if c.Domain == "" && c.Selector == "" && c.PrivateKey == "" && c.PrivateKeyFile == "" {
		return nil
	}
	check.Require("domain", c.Domain)
	check.Require("selector", c.Selector)
	switch {
	case c.PrivateKey == "" && c.PrivateKeyFile == "":
		check.Addf("private_key", "private_key or private_key_file is required")
	case c.PrivateKey != "" && c.PrivateKeyFile != "":
		check.Addf("private_key", "set private_key or private_key_file, not both")
	default:
		if _, err := c.signer(); err != nil {
			check.Addf("private_key", "%v", err)
		}
	}
	return check.Err()
}

func (s Source) validate() error {
	var check config.Check
	switch s.Type {
	case SourceSMTP:
		host, _, err := net.SplitHostPort(s.Addr)
		if err != nil || host == "" {
			check.Addf("addr", "must be host:port, got %q", s.Addr)
		}
		switch s.TLS {
		case "", TLSNone, TLSStartTLS, TLSImplicit:
		default:
			check.Addf("tls", "%q is not starttls, implicit or none", s.TLS)
		}
		if s.Username != "" || s.Password != "" {
			check.Require("username", s.Username)
			check.Require("password", s.Password)
			if s.TLS == TLSNone && err == nil && !isLoopback(host) {
				check.Addf("tls", "AUTH sends the password in clear with tls: none; use starttls or implicit (plaintext AUTH is allowed on loopback only)")
			}
		}
		if s.AuthMechanism != "" && s.AuthMechanism != "plain" && s.AuthMechanism != "login" {
			check.Addf("auth_mechanism", "%q is not plain or login", s.AuthMechanism)
		}
		if s.TLSCAFile != "" {
			if _, err := os.ReadFile(s.TLSCAFile); err != nil {
				check.Addf("tls_ca_file", "%v", err)
			}
		}
		if len(s.SendmailCommand) > 0 {
			check.Addf("sendmail_command", "only for type sendmail")
		}
	case SourceSendmail:
		if s.Addr != "" || s.Username != "" {
			check.Addf("addr", "a sendmail source has no addr or credentials")
		}
	default:
		check.Addf("type", "%q is not smtp or sendmail", s.Type)
	}
	if s.LocalAddr != "" && net.ParseIP(s.LocalAddr) == nil {
		check.Addf("local_addr", "%q is not an IP address", s.LocalAddr)
	}
	if s.SourceIP != "" && net.ParseIP(s.SourceIP) == nil {
		check.Addf("source_ip", "%q is not an IP address", s.SourceIP)
	}
	if s.HeloName != "" && !validHostname(s.HeloName) {
		check.Addf("helo_name", "%q is not a host name", s.HeloName)
	}
	return check.Err()
}

// withDefaults fills the keys a list element leaves empty.
func (s Source) withDefaults() Source {
	if s.TLS == "" {
		s.TLS = TLSStartTLS
	}
	if s.AuthMechanism == "" {
		s.AuthMechanism = "plain"
	}
	if s.Type == SourceSendmail && len(s.SendmailCommand) == 0 {
		s.SendmailCommand = []string{"/usr/sbin/sendmail", "-i"}
	}
	return s
}

// sourceIP is the IP recorded in events for this source.
func (s Source) sourceIP() string {
	if s.SourceIP != "" {
		return s.SourceIP
	}
	return s.LocalAddr
}

func (s Source) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.Addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSInsecureSkipVerify} //nolint:gosec // off only when configured
	if s.TLSServerName != "" {
		cfg.ServerName = s.TLSServerName
	}
	if s.TLSCAFile != "" {
		pool, err := loadCAFile(s.TLSCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 127 || c == ':' {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") { // address literal
		return net.ParseIP(strings.TrimPrefix(s[1:len(s)-1], "IPv6:")) != nil
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
