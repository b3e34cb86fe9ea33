package fblingester

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is the `fbl_ingester` section of the mailmon config.
type Config struct {
	// SMTP is the listener providers (or our own MX) deliver reports and
	// bounces to.
	SMTP SMTPConfig `yaml:"smtp"`
	// IMAP lists mailboxes that receive reports as ordinary mail; they are
	// read and cleaned on a schedule.
	IMAP IMAPConfig `yaml:"imap"`
	// Files lists directories (or maildirs) whose messages are imported.
	Files FilesConfig `yaml:"files"`
	// MaxMessageBytes is the largest message accepted from any input; the
	// SMTP listener announces it as its SIZE limit.
	MaxMessageBytes config.ByteSize `yaml:"max_message_bytes"`
	// CountFraud and CountVirus make fraud and virus reports count as
	// complaints; abuse reports always count, not-spam, opt-out and other
	// never do.
	CountFraud bool `yaml:"count_fraud"`
	CountVirus bool `yaml:"count_virus"`
	// Trace says how a report without a verified tracking header is tied
	// to a customer and a sending IP.
	Trace TraceConfig `yaml:"trace"`
	// Trust says which reports are evidence mailmon may act on: only a
	// complaint from a verified origin counts towards enforcement and the
	// unmatched alert. Everything else is stored with trusted=false.
	Trust TrustConfig `yaml:"trust"`
	// Providers maps domains (of the report's sender, its Reporting-MTA,
	// or a bounced recipient) to provider names, over the built-in table.
	// A domain also matches its subdomains.
	// The built-in table knows Yahoo, AOL, Outlook, Gmail and the other big
	// providers.
	Providers map[string]string `yaml:"providers"`
	// UnmatchedAlert raises an alert (mailmon.alert.raised, rule
	// unmatched_complaints) when more than threshold of the counted, trusted
	// complaints in window traced to nothing of ours.
	UnmatchedAlert UnmatchedAlertConfig `yaml:"unmatched_alert"`
	// PublishTimeout bounds the wait for JetStream to store one message's
	// events; past it the sender is told to retry (SMTP 451).
	PublishTimeout config.Duration `yaml:"publish_timeout"`
	// DrainTimeout bounds the shutdown: SMTP sessions in progress may
	// finish within it, then they are cut.
	DrainTimeout config.Duration `yaml:"drain_timeout"`
}

// SMTPConfig is the listener.
type SMTPConfig struct {
	// Listen is host:port; empty disables the listener. The listener also
	// stays off while no address or domain is configured.
	// Put it behind the MX, or expose it deliberately.
	Listen string `yaml:"listen"`
	// Hostname is the name in the greeting and EHLO answer.
	Hostname string `yaml:"hostname"`
	// Addresses are the recipient addresses accepted (e.g. fbl@example.net).
	Addresses []string `yaml:"addresses"`
	// Domains accept every recipient at these domains (e.g. the domain of
	// our bounce return path). Any other recipient is refused with 550
	// 5.7.1: no relaying.
	Domains []string `yaml:"domains"`
	// MaxRecipients per message; more are refused with 452.
	MaxRecipients int `yaml:"max_recipients"`
	// MaxConnections open at once; another connection is answered 421 and
	// closed.
	MaxConnections int `yaml:"max_connections"`
	// ReadTimeout and WriteTimeout bound each read and write on a
	// connection.
	ReadTimeout  config.Duration `yaml:"read_timeout"`
	WriteTimeout config.Duration `yaml:"write_timeout"`
	// SessionTimeout bounds a whole connection, however busy: past it the
	// connection is closed, so a client cannot hold a slot forever with a
	// command (a NOOP) just inside read_timeout.
	SessionTimeout config.Duration `yaml:"session_timeout"`
	// TLSCertFile and TLSKeyFile (PEM) enable STARTTLS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// IMAPConfig is the mailbox pull.
type IMAPConfig struct {
	// Interval is the time between two pulls of an account.
	Interval config.Duration `yaml:"interval"`
	// Timeout bounds connecting, logging in and each command.
	Timeout config.Duration `yaml:"timeout"`
	// Accounts are the mailboxes to read.
	Accounts []IMAPAccount `yaml:"accounts"`
}

// IMAPAccount is one mailbox that receives reports.
type IMAPAccount struct {
	// Name identifies the account in logs and metrics.
	Name string `yaml:"name"`
	// Addr is the server's host:port.
	Addr string `yaml:"addr"`
	// TLS is "implicit" (default), "starttls" or "none" (loopback only).
	TLS string `yaml:"tls"`
	// Username and Password log in (IMAP LOGIN).
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// Folders are read in turn; default INBOX.
	Folders []string `yaml:"folders"`
	// MoveTo is the folder a message is moved to once its events are
	// stored; empty deletes it.
	MoveTo string `yaml:"move_to"`
	// Trusted makes every report read from this mailbox evidence, as if
	// signed by an operator. Off by default: a mailbox whose address is
	// known takes mail from anyone on the internet, and one forged report
	// in it would count. Turn it on only for a mailbox that receives
	// nothing but what feedback-loop operators send (filtered upstream).
	Trusted bool `yaml:"trusted"`
}

// FilesConfig is the directory import.
type FilesConfig struct {
	// Dirs are scanned on every interval. A maildir (with new/ and cur/)
	// is read from both; any other directory from its own files. Each
	// imported file is moved to the "done" folder inside the directory, so
	// a restart does not import it again.
	Dirs []string `yaml:"dirs"`
	// TrustedDirs are scanned like Dirs, and every report read from them
	// is evidence (as if signed by an operator): only for directories that
	// nothing but the operator's own tooling writes to.
	TrustedDirs []string `yaml:"trusted_dirs"`
	// Interval is the time between two scans.
	Interval config.Duration `yaml:"interval"`
}

// TraceConfig ties a report without a verified tracking header to one of
// our customers and IPs.
type TraceConfig struct {
	// DKIMDomains maps the d= of the original's DKIM signature (and its
	// subdomains) to the customer who signs with it.
	DKIMDomains map[string]string `yaml:"dkim_domains"`
	// MessageIDDomains maps the domain part of the original's Message-ID
	// (and its subdomains) to the customer whose mail carries it.
	MessageIDDomains map[string]string `yaml:"message_id_domains"`
	// FromDomains maps a header From domain (and its subdomains) to the
	// customer who sends as it, for DMARC aggregate reports, which name
	// only the From domain. A domain not listed is looked up in
	// dkim_domains: a customer's aligned signing domain is its From domain.
	FromDomains map[string]string `yaml:"from_domains"`
	// SourceNetworks are our sending networks (addresses or CIDR
	// prefixes). A reported Source-IP inside one traces the report to that
	// IP. Empty: any reported Source-IP is taken as ours, since the
	// provider sent the report to us for it.
	SourceNetworks []string `yaml:"source_networks"`
}

// TrustConfig says which reports are evidence. A report is trusted when it
// carries a DKIM signature that verifies, made by a configured operator
// (with the report's From among its senders when they are listed); or when
// it arrived over SMTP from a reporter network or an authenticated user; or
// when it was read from a mailbox or directory marked trusted (or imported
// with `mailmon fbl import -trusted`).
type TrustConfig struct {
	// Operators are the feedback-loop operators whose DKIM signature on a
	// report makes it evidence.
	Operators []Operator `yaml:"operators"`
	// ReporterNetworks are addresses or CIDR prefixes whose SMTP
	// connections deliver trusted reports (e.g. our own MX that receives
	// them from providers and filters them).
	ReporterNetworks []string `yaml:"reporter_networks"`
	// SMTPUsers may authenticate (AUTH PLAIN) to the listener; what they
	// deliver is trusted. AUTH is offered over TLS only, or on a loopback
	// listener.
	// Without smtp.tls_cert_file they work only on a loopback listener.
	SMTPUsers []SMTPUser `yaml:"smtp_users"`
	// Resolver is the DNS server (host:port) asked for DKIM keys; empty
	// uses the system's resolvers. A local validating resolver is best.
	Resolver string `yaml:"resolver"`
	// DNSTimeout bounds one DKIM key lookup. A lookup that times out is a
	// temporary failure: the report is retried (SMTP 451, kept in the
	// mailbox or directory), not stored untrusted.
	DNSTimeout config.Duration `yaml:"dns_timeout"`
}

// Operator is one feedback-loop operator.
type Operator struct {
	// DKIMDomain is the d= its reports are signed with. It must match
	// exactly: a subdomain may be run (and signed) by someone else.
	DKIMDomain string `yaml:"dkim_domain"`
	// Senders, when set, are the report From addresses (or "@domain" for
	// any address at that domain) that must come with the signature.
	// Needed when DKIMDomain also signs ordinary users' mail (a mailbox
	// provider's own domain): any of its users could sign a forged report.
	Senders []string `yaml:"senders"`
}

// SMTPUser is one account of the listener's AUTH PLAIN.
type SMTPUser struct {
	// Username and Password are the AUTH PLAIN credentials; the password is
	// a secret, never logged.
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
}

// UnmatchedAlertConfig is the alert on untraceable complaints.
type UnmatchedAlertConfig struct {
	// Window is how far back complaints are looked at.
	Window config.Duration `yaml:"window"`
	// Threshold is the share (0..1) of counted complaints in the window
	// that matched nothing, above which the alert fires.
	Threshold float64 `yaml:"threshold"`
	// MinComplaints in the window before the share means anything.
	MinComplaints int `yaml:"min_complaints"`
}

// DefaultConfig listens on loopback with no recipients (so the listener
// stays off until some are configured), reads no mailbox and no directory.
func DefaultConfig() Config {
	return Config{
		SMTP: SMTPConfig{
			Listen:         "127.0.0.1:2525",
			Hostname:       "localhost",
			MaxRecipients:  50,
			MaxConnections: 100,
			ReadTimeout:    config.Duration(60 * time.Second),
			WriteTimeout:   config.Duration(60 * time.Second),
			SessionTimeout: config.Duration(10 * time.Minute),
		},
		Trust:           TrustConfig{DNSTimeout: config.Duration(5 * time.Second)},
		IMAP:            IMAPConfig{Interval: config.Duration(time.Minute), Timeout: config.Duration(30 * time.Second)},
		Files:           FilesConfig{Interval: config.Duration(30 * time.Second)},
		MaxMessageBytes: config.ByteSize(10 << 20),
		UnmatchedAlert: UnmatchedAlertConfig{
			Window:        config.Duration(time.Hour),
			Threshold:     0.5,
			MinComplaints: 20,
		},
		PublishTimeout: config.Duration(10 * time.Second),
		DrainTimeout:   config.Duration(15 * time.Second),
	}
}

// Validate reports every problem at once, with paths relative to the
// section.
func (c Config) Validate() error {
	var check config.Check
	if c.MaxMessageBytes <= 0 {
		check.Addf("max_message_bytes", "must be positive")
	}
	if c.PublishTimeout <= 0 {
		check.Addf("publish_timeout", "must be positive")
	}
	if c.DrainTimeout <= 0 {
		check.Addf("drain_timeout", "must be positive")
	}
	check.Nest("smtp", c.SMTP.validate())
	check.Nest("imap", c.IMAP.validate())
	if len(c.Files.Dirs)+len(c.Files.TrustedDirs) > 0 && c.Files.Interval <= 0 {
		check.Addf("files.interval", "must be positive")
	}
	for i, d := range c.Files.Dirs {
		if strings.TrimSpace(d) == "" {
			check.Addf(fmt.Sprintf("files.dirs[%d]", i), "is empty")
		}
	}
	for i, d := range c.Files.TrustedDirs {
		if strings.TrimSpace(d) == "" {
			check.Addf(fmt.Sprintf("files.trusted_dirs[%d]", i), "is empty")
		}
		for _, o := range c.Files.Dirs {
			if filepath.Clean(o) == filepath.Clean(d) {
				check.Addf(fmt.Sprintf("files.trusted_dirs[%d]", i), "%q is also in files.dirs", d)
			}
		}
	}
	check.Nest("trust", c.Trust.validate(c.SMTP))
	for i, n := range c.Trace.SourceNetworks {
		if _, err := parseNetwork(n); err != nil {
			check.Addf(fmt.Sprintf("trace.source_networks[%d]", i), "%v", err)
		}
	}
	u := c.UnmatchedAlert
	if u.Window <= 0 {
		check.Addf("unmatched_alert.window", "must be positive")
	}
	if u.Threshold <= 0 || u.Threshold > 1 {
		check.Addf("unmatched_alert.threshold", "must be in (0, 1], not %v", u.Threshold)
	}
	if u.MinComplaints < 1 {
		check.Addf("unmatched_alert.min_complaints", "must be at least 1")
	}
	return check.Err()
}

func (s SMTPConfig) validate() error {
	var check config.Check
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			check.Addf("listen", "%q is not host:port", s.Listen)
		}
	}
	for i, a := range s.Addresses {
		if _, dom, ok := strings.Cut(a, "@"); !ok || dom == "" || strings.ContainsAny(a, " <>") {
			check.Addf(fmt.Sprintf("addresses[%d]", i), "%q is not a plain address", a)
		}
	}
	for i, d := range s.Domains {
		if d == "" || strings.ContainsAny(d, "@ <>") {
			check.Addf(fmt.Sprintf("domains[%d]", i), "%q is not a domain", d)
		}
	}
	if s.MaxRecipients < 1 {
		check.Addf("max_recipients", "must be at least 1")
	}
	if s.MaxConnections < 1 {
		check.Addf("max_connections", "must be at least 1")
	}
	if s.ReadTimeout <= 0 {
		check.Addf("read_timeout", "must be positive")
	}
	if s.WriteTimeout <= 0 {
		check.Addf("write_timeout", "must be positive")
	}
	if s.SessionTimeout <= 0 {
		check.Addf("session_timeout", "must be positive")
	} else if s.SessionTimeout < s.ReadTimeout {
		check.Addf("session_timeout", "must be at least read_timeout")
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		check.Addf("tls_key_file", "tls_cert_file and tls_key_file go together")
	}
	for _, f := range []struct{ key, path string }{{"tls_cert_file", s.TLSCertFile}, {"tls_key_file", s.TLSKeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				check.Addf(f.key, "%v", err)
			}
		}
	}
	return check.Err()
}

func (c IMAPConfig) validate() error {
	var check config.Check
	if len(c.Accounts) == 0 {
		return nil
	}
	if c.Interval <= 0 {
		check.Addf("interval", "must be positive")
	}
	if c.Timeout <= 0 {
		check.Addf("timeout", "must be positive")
	}
	names := map[string]bool{}
	for i, a := range c.Accounts {
		p := fmt.Sprintf("accounts[%d]", i)
		if a.Name == "" {
			check.Addf(p+".name", "is required")
		} else if names[a.Name] {
			check.Addf(p+".name", "%q is used twice", a.Name)
		}
		names[a.Name] = true
		host, _, err := net.SplitHostPort(a.Addr)
		if err != nil || host == "" {
			check.Addf(p+".addr", "must be host:port, got %q", a.Addr)
		}
		switch a.TLS {
		case "", tlsImplicit, tlsStartTLS:
		case tlsNone:
			if err == nil && !isLoopback(host) {
				check.Addf(p+".tls", "none is allowed on loopback only (the password would cross the network in clear)")
			}
		default:
			check.Addf(p+".tls", "%q is not implicit, starttls or none", a.TLS)
		}
		check.Require(p+".username", a.Username)
		check.Require(p+".password", a.Password)
	}
	return check.Err()
}

func (t TrustConfig) validate(smtp SMTPConfig) error {
	var check config.Check
	seen := map[string]bool{}
	for i, o := range t.Operators {
		p := fmt.Sprintf("operators[%d]", i)
		d := normDomain(o.DKIMDomain)
		if d == "" || strings.ContainsAny(d, "@ <>/") {
			check.Addf(p+".dkim_domain", "%q is not a domain", o.DKIMDomain)
		} else if seen[d] {
			check.Addf(p+".dkim_domain", "%q is listed twice", d)
		}
		seen[d] = true
		for j, s := range o.Senders {
			_, dom, ok := strings.Cut(strings.TrimSpace(s), "@")
			if !ok || dom == "" || strings.ContainsAny(s, " <>") || strings.Contains(dom, "@") {
				check.Addf(fmt.Sprintf("%s.senders[%d]", p, j), "%q is neither an address nor @domain", s)
			}
		}
	}
	for i, n := range t.ReporterNetworks {
		if _, err := parseNetwork(n); err != nil {
			check.Addf(fmt.Sprintf("reporter_networks[%d]", i), "%v", err)
		}
	}
	users := map[string]bool{}
	for i, u := range t.SMTPUsers {
		p := fmt.Sprintf("smtp_users[%d]", i)
		check.Require(p+".username", u.Username)
		check.Require(p+".password", u.Password)
		if users[u.Username] {
			check.Addf(p+".username", "%q is listed twice", u.Username)
		}
		users[u.Username] = true
	}
	if len(t.SMTPUsers) > 0 && smtp.TLSCertFile == "" && !listensOnLoopback(smtp.Listen) {
		check.Addf("smtp_users", "need smtp.tls_cert_file (AUTH is offered over TLS only, unless the listener is on loopback: the password would cross the network in clear)")
	}
	if t.Resolver != "" {
		if _, _, err := net.SplitHostPort(t.Resolver); err != nil {
			check.Addf("resolver", "%q is not host:port", t.Resolver)
		}
	}
	if t.DNSTimeout <= 0 {
		check.Addf("dns_timeout", "must be positive")
	}
	return check.Err()
}

// listensOnLoopback says whether a listen address is a loopback one.
func listensOnLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && isLoopback(host)
}

func normDomain(d string) string {
	return strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
}

const (
	tlsImplicit = "implicit"
	tlsStartTLS = "starttls"
	tlsNone     = "none"
)

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseNetwork reads an address or a CIDR prefix.
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
