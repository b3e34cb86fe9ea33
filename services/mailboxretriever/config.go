package mailboxretriever

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
)

// Protocols, TLS modes and authentication mechanisms of a seed account.
const (
	ProtocolIMAP = "imap"
	ProtocolPOP3 = "pop3"

	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"

	AuthPlain   = "plain"
	AuthLogin   = "login"
	AuthXOAUTH2 = "xoauth2"
	AuthUser    = "user" // POP3 USER/PASS
)

// DefaultProbeCustomer is the customer the probe-sender signs probes for.
const DefaultProbeCustomer = "mailmon-probe"

// Config is the `mailbox_retriever` section.
type Config struct {
	// Deadline is how long after it was sent a probe may take to arrive
	// before it is reported missing; an account can override it.
	Deadline config.Duration `yaml:"deadline"`
	// CheckInterval is how often deadlines are checked.
	CheckInterval config.Duration `yaml:"check_interval"`
	// PollInterval is how often a folder is searched when IDLE is not used
	// (server without IDLE, poll_only, POP3).
	PollInterval config.Duration `yaml:"poll_interval"`
	// IdleRefresh re-issues IDLE this often, before servers (29 min by RFC
	// 2177, less behind some NATs) drop an idle connection.
	IdleRefresh config.Duration `yaml:"idle_refresh"`
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// attempts to reach an account that failed.
	ReconnectMin config.Duration `yaml:"reconnect_min"`
	ReconnectMax config.Duration `yaml:"reconnect_max"`
	// Timeout bounds one command (connect, login, search, fetch).
	Timeout config.Duration `yaml:"timeout"`
	// Lookback bounds the first search of a folder after a (re)start to
	// mail that arrived within this period.
	Lookback config.Duration `yaml:"lookback"`
	// Delete removes a probe from the mailbox once its event is published.
	Delete bool `yaml:"delete"`
	// AlertAfter raises an alert for an account that could not be read for
	// this long (it never makes probes count as missing).
	AlertAfter config.Duration `yaml:"alert_after"`
	// OrphanGrace is how long a verified probe whose probe.sent is not
	// known is kept waiting for it before it is dropped as unexpected.
	OrphanGrace config.Duration `yaml:"orphan_grace"`
	// ProbeCustomer is the customer in the tracking header of our probes;
	// other validly signed mail is ignored.
	ProbeCustomer string `yaml:"probe_customer"`
	// Accounts are the seed mailboxes.
	Accounts []Account `yaml:"accounts"`
	// AccountLease splits the accounts among copies when several
	// mailbox-retrievers run: one lease per account (KV bucket leases, key
	// mailbox-retriever.<account>); the copy holding it reads the account,
	// declares its probes missing and raises its alert. Copies balance the
	// accounts among them. A copy that dies is replaced within one TTL, one
	// that stops cleanly at once.
	AccountLease lease.Config `yaml:"account_lease"`
}

// Account is one seed mailbox.
type Account struct {
	// Name identifies the account in events and metrics.
	Name string `yaml:"name"`
	// Protocol is "imap" or "pop3".
	Protocol string `yaml:"protocol"`
	// Addr is host:port of the server.
	Addr string `yaml:"addr"`
	// TLS is "implicit" (default), "starttls", or "none" (loopback only).
	TLS string `yaml:"tls"`
	// TLSServerName overrides the name the certificate is checked against.
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCAFile adds a PEM CA bundle to trust.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSInsecureSkipVerify turns certificate verification off.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
	// Username logs in.
	Username string `yaml:"username"`
	// Auth is the mechanism: "plain" (default for IMAP), "login",
	// "xoauth2", or for POP3 "user" (USER/PASS, its default).
	Auth string `yaml:"auth"`
	// Password for plain, login and user.
	Password config.Secret `yaml:"password"`
	// TokenFile holds the OAuth2 access token for xoauth2; it is read
	// again at every login, so an external refresher can rewrite it.
	TokenFile string `yaml:"token_file"`
	// TokenCommand prints the access token for xoauth2 on stdout; it runs
	// at every login.
	TokenCommand []string `yaml:"token_command"`
	// Addresses are the seed addresses delivered to this account; probes
	// to them are expected here. Default: the username, if it is an
	// address.
	Addresses []string `yaml:"addresses"`
	// Deadline overrides the section's deadline for probes to this
	// account's addresses.
	Deadline config.Duration `yaml:"deadline"`
	// SpamFolders are tried in order when no folder has the SPECIAL-USE
	// \Junk attribute. Default: Junk, Spam, [Gmail]/Spam, Junk E-mail,
	// Bulk Mail, INBOX.Junk, INBOX.Spam.
	SpamFolders []string `yaml:"spam_folders"`
	// OtherFolders are watched as well; probes there are placement "other".
	OtherFolders []string `yaml:"other_folders"`
	// PollOnly searches every poll_interval instead of using IDLE.
	PollOnly bool `yaml:"poll_only"`
}

var defaultSpamFolders = []string{"Junk", "Spam", "[Gmail]/Spam", "Junk E-mail", "Bulk Mail", "INBOX.Junk", "INBOX.Spam"}

// DefaultConfig: 10 minute deadline, IDLE re-issued every 9 minutes,
// reconnects between 1 s and 5 min, probes deleted once reported.
func DefaultConfig() Config {
	return Config{
		Deadline:      config.Duration(10 * time.Minute),
		CheckInterval: config.Duration(5 * time.Second),
		PollInterval:  config.Duration(time.Minute),
		IdleRefresh:   config.Duration(9 * time.Minute),
		ReconnectMin:  config.Duration(time.Second),
		ReconnectMax:  config.Duration(5 * time.Minute),
		Timeout:       config.Duration(60 * time.Second),
		Lookback:      config.Duration(48 * time.Hour),
		Delete:        true,
		AlertAfter:    config.Duration(5 * time.Minute),
		OrphanGrace:   config.Duration(time.Hour),
		ProbeCustomer: DefaultProbeCustomer,
		AccountLease:  lease.DefaultConfig(),
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	for _, d := range []struct {
		key string
		v   config.Duration
	}{
		{"deadline", c.Deadline}, {"check_interval", c.CheckInterval}, {"poll_interval", c.PollInterval},
		{"idle_refresh", c.IdleRefresh}, {"reconnect_min", c.ReconnectMin}, {"reconnect_max", c.ReconnectMax},
		{"timeout", c.Timeout}, {"lookback", c.Lookback}, {"alert_after", c.AlertAfter}, {"orphan_grace", c.OrphanGrace},
	} {
		if d.v <= 0 {
			check.Addf(d.key, "must be positive")
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		check.Addf("reconnect_max", "must be at least reconnect_min")
	}
	check.Require("probe_customer", c.ProbeCustomer)
	names, addrs := map[string]bool{}, map[string]string{}
	for i, a := range c.Accounts {
		p := fmt.Sprintf("accounts[%d]", i)
		if a.Name == "" {
			check.Addf(p+".name", "is required")
		} else if names[a.Name] {
			check.Addf(p+".name", "%q is used twice", a.Name)
		}
		names[a.Name] = true
		check.Nest(p, a.validate())
		for _, addr := range a.seedAddresses() {
			if other, dup := addrs[addr]; dup {
				check.Addf(p+".addresses", "%s is also an address of account %s", addr, other)
			}
			addrs[addr] = a.Name
		}
	}
	check.Nest("account_lease", c.AccountLease.Validate())
	return check.Err()
}

func (a Account) validate() error {
	var check config.Check
	if a.Protocol != ProtocolIMAP && a.Protocol != ProtocolPOP3 {
		check.Addf("protocol", "%q is not imap or pop3", a.Protocol)
	}
	host, _, err := net.SplitHostPort(a.Addr)
	if err != nil || host == "" {
		check.Addf("addr", "must be host:port, got %q", a.Addr)
	}
	switch a.TLS {
	case "", TLSImplicit, TLSStartTLS:
	case TLSNone:
		if err == nil && !isLoopback(host) {
			check.Addf("tls", "none is allowed on loopback only (credentials would cross the network in clear)")
		}
	default:
		check.Addf("tls", "%q is not implicit, starttls or none", a.TLS)
	}
	check.Require("username", a.Username)
	a = a.withDefaults()
	switch a.Auth {
	case AuthPlain, AuthLogin, AuthUser:
		check.Require("password", a.Password)
		if a.Auth == AuthUser && a.Protocol != ProtocolPOP3 {
			check.Addf("auth", "user is for pop3")
		}
		if a.Auth == AuthLogin && a.Protocol == ProtocolPOP3 {
			check.Addf("auth", "login is not a POP3 mechanism; use user or plain")
		}
	case AuthXOAUTH2:
		if (a.TokenFile == "") == (len(a.TokenCommand) == 0) {
			check.Addf("token_file", "xoauth2 needs exactly one of token_file or token_command")
		}
	default:
		check.Addf("auth", "%q is not plain, login, xoauth2 or user", a.Auth)
	}
	if a.TLSCAFile != "" {
		if _, err := os.ReadFile(a.TLSCAFile); err != nil {
			check.Addf("tls_ca_file", "%v", err)
		}
	}
	if len(a.seedAddresses()) == 0 {
		check.Addf("addresses", "is required when the username is not an address")
	}
	for _, s := range a.Addresses {
		if m, err := mail.ParseAddress(s); err != nil || m.Address != s {
			check.Addf("addresses", "%q is not a plain address", s)
		}
	}
	if a.Deadline < 0 {
		check.Addf("deadline", "must not be negative")
	}
	if a.Protocol == ProtocolPOP3 && (len(a.SpamFolders) > 0 || len(a.OtherFolders) > 0) {
		check.Addf("spam_folders", "POP3 has no folders")
	}
	return check.Err()
}

// withDefaults fills what a list element leaves empty.
func (a Account) withDefaults() Account {
	if a.TLS == "" {
		a.TLS = TLSImplicit
	}
	if a.Auth == "" {
		a.Auth = AuthPlain
		if a.Protocol == ProtocolPOP3 {
			a.Auth = AuthUser
		}
	}
	if len(a.SpamFolders) == 0 && a.Protocol == ProtocolIMAP {
		a.SpamFolders = defaultSpamFolders
	}
	return a
}

// seedAddresses are the addresses in lower case.
func (a Account) seedAddresses() []string {
	var out []string
	for _, s := range a.Addresses {
		out = append(out, strings.ToLower(s))
	}
	if len(out) == 0 && strings.Contains(a.Username, "@") {
		out = append(out, strings.ToLower(a.Username))
	}
	return out
}

func (a Account) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(a.Addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: a.TLSInsecureSkipVerify} //nolint:gosec // off only when configured
	if a.TLSServerName != "" {
		cfg.ServerName = a.TLSServerName
	}
	if a.TLSCAFile != "" {
		data, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%s holds no PEM certificate", a.TLSCAFile)
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
