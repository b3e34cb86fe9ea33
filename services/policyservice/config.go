package policyservice

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is the `policy_service` section of the mailmon config.
type Config struct {
	// Listen is the address Postfix's check_policy_service inet:HOST:PORT
	// points at.
	Listen string `yaml:"listen"`
	// CutoffAction overrides the Postfix action of a cut-off: "REJECT",
	// "DEFER_IF_PERMIT" or "HOLD" (accept and park in the hold queue).
	// Empty answers what the decision says (the complaint-evaluator's
	// decisions.cutoff_action).
	CutoffAction string `yaml:"cutoff_action"`
	// CutoffText overrides the text of a cut-off's answer; empty uses the
	// decision's. The enhanced status code in front is made to match the
	// action's class (4.x.x defers, 5.x.x rejects).
	CutoffText string `yaml:"cutoff_text"`
	// RerouteNexthop is the next hop of the FILTER answer of a reroute:
	// "FILTER <transport>:<nexthop>". Empty lets Postfix pick it
	// (default_filter_nexthop, else the recipient domain).
	RerouteNexthop string `yaml:"reroute_nexthop"`
	// AnswerTimeout bounds the time to answer a request: a request that
	// would wait longer for the decisions (not loaded yet) is answered
	// DUNNO. Keep it well under Postfix's smtpd_policy_service_timeout.
	AnswerTimeout config.Duration `yaml:"answer_timeout"`
	// IdleTimeout closes a connection that sent nothing for this long.
	// Postfix closes its own after smtpd_policy_service_max_idle (300s).
	IdleTimeout config.Duration `yaml:"idle_timeout"`
	// MaxConnections caps concurrent client connections.
	MaxConnections int `yaml:"max_connections"`
	// MaxAttributes and MaxLineBytes bound one request.
	MaxAttributes int `yaml:"max_attributes"`
	MaxLineBytes  int `yaml:"max_line_bytes"`
	// StaleAfter: while NATS is unreachable the last known decisions are
	// still enforced for this long; after that the service fails open
	// (DUNNO plus an alert).
	StaleAfter config.Duration `yaml:"stale_after"`
	// AlertInterval is the least time between two "state unavailable"
	// alerts.
	AlertInterval config.Duration `yaml:"alert_interval"`
	// Customers says how a request names its customer.
	Customers Identity `yaml:"customers"`
	// Providers maps a provider name to more recipient domains (and their
	// subdomains), for customer × provider decisions, on top of the
	// built-in table the other workers use too.
	Providers map[string][]string `yaml:"providers"`
	// IPAttributes are the request attributes matched against ip:
	// decisions, e.g. client_address (the customer's server relaying
	// through us) or server_address (our listening, i.e. sending, address).
	IPAttributes []string `yaml:"ip_attributes"`
}

// Identity maps request attributes to customer names. The policy protocol
// carries no message headers, so the customer is known from the SMTP AUTH
// name, the envelope sender's domain, or the client's address.
type Identity struct {
	// SASLUsername: an authenticated client's sasl_username is the
	// customer name, unless SASLUsernames maps it.
	SASLUsername  bool              `yaml:"sasl_username"`
	SASLUsernames map[string]string `yaml:"sasl_usernames"`
	// SenderDomain: the sender's domain is the customer name, unless
	// SenderDomains maps it (a mapped domain counts even when false).
	SenderDomain  bool              `yaml:"sender_domain"`
	SenderDomains map[string]string `yaml:"sender_domains"`
	// ClientAddresses maps client IPs or CIDRs to customers.
	ClientAddresses map[string]string `yaml:"client_addresses"`
}

// DefaultConfig listens on loopback port 10040 and fails open after 30 s
// without NATS.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:10040",
		AnswerTimeout:  config.Duration(200 * time.Millisecond),
		IdleTimeout:    config.Duration(330 * time.Second),
		MaxConnections: 1000,
		MaxAttributes:  100,
		MaxLineBytes:   4096,
		StaleAfter:     config.Duration(30 * time.Second),
		AlertInterval:  config.Duration(5 * time.Minute),
		Customers:      Identity{SASLUsername: true},
		IPAttributes:   []string{"client_address"},
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		check.Addf("listen", "%q is not host:port", c.Listen)
	}
	switch c.CutoffAction {
	case "", "REJECT", "DEFER_IF_PERMIT", "HOLD":
	default:
		check.Addf("cutoff_action", "must be empty, REJECT, DEFER_IF_PERMIT or HOLD, got %q", c.CutoffAction)
	}
	if strings.ContainsAny(c.CutoffText, "\r\n") {
		check.Addf("cutoff_text", "must be one line")
	}
	if strings.ContainsAny(c.RerouteNexthop, " \t\r\n") {
		check.Addf("reroute_nexthop", "must not contain spaces, got %q", c.RerouteNexthop)
	}
	for _, d := range []struct {
		key string
		v   config.Duration
	}{{"answer_timeout", c.AnswerTimeout}, {"idle_timeout", c.IdleTimeout}, {"stale_after", c.StaleAfter}, {"alert_interval", c.AlertInterval}} {
		if d.v <= 0 {
			check.Addf(d.key, "must be positive")
		}
	}
	if c.MaxConnections < 1 {
		check.Addf("max_connections", "must be at least 1")
	}
	if c.MaxAttributes < 10 {
		check.Addf("max_attributes", "must be at least 10 (Postfix sends about 30)")
	}
	if c.MaxLineBytes < 256 {
		check.Addf("max_line_bytes", "must be at least 256")
	}
	for cidr := range c.Customers.ClientAddresses {
		if _, err := parsePrefix(cidr); err != nil {
			check.Addf("customers.client_addresses."+cidr, "%v", err)
		}
	}
	for name, domains := range c.Providers {
		if len(domains) == 0 {
			check.Addf("providers."+name, "needs at least one domain")
		}
	}
	for i, a := range c.IPAttributes {
		if a != "client_address" && a != "server_address" {
			check.Addf(fmt.Sprintf("ip_attributes[%d]", i), "must be client_address or server_address, got %q", a)
		}
	}
	return check.Err()
}

// parsePrefix reads an IP (as a /32 or /128) or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
