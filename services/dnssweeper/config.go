package dnssweeper

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/internal/lease"
)

// Config is the `dns_sweeper` section of the mailmon config.
type Config struct {
	// Resolver is the DNS server every query goes to, host:port: your own
	// recursive resolver (public ones are refused by Spamhaus and others),
	// or a blocklist's server when all zones live there.
	// Spamhaus and Barracuda refuse public resolvers such as 8.8.8.8 and
	// 1.1.1.1.
	Resolver string `yaml:"resolver"`
	// Zones names the catalogue zones to sweep; empty sweeps the default
	// ones (see services/internal/dnsbl/zones.yaml).
	// The default ones are Spamhaus ZEN and DBL, Barracuda, SpamCop,
	// Mailspike, PSBL and UCEPROTECT levels 1-3. A retired zone (SORBS, shut
	// down in 2024) is swept only if named here, with a warning at start; so
	// is a public resolver combined with zones that refuse one.
	Zones []string `yaml:"zones"`
	// CustomZones adds zones to the catalogue, or replaces built-in ones of
	// the same name (a zone here is swept only if Zones names it, or Zones
	// is empty and it is marked default).
	CustomZones []dnsbl.Zone `yaml:"custom_zones"`
	// DQSKey is a Spamhaus Data Query Service key; zones with a dqs_zone
	// are then asked as <key>.<dqs_zone>, which works from any resolver.
	// With a key, Spamhaus ZEN and DBL are asked as <key>.zen.dq.spamhaus.net
	// and <key>.dbl.dq.spamhaus.net. Never logged.
	DQSKey config.Secret `yaml:"dqs_key"`

	// IPs, CIDRs and Domains are the targets: our sending IPs, our IP
	// blocks (every address is swept), and our sending domains.
	// IPv6 addresses are asked as nibbles; domains are checked on domain zones
	// and audited.
	IPs     []string `yaml:"ips"`
	CIDRs   []string `yaml:"cidrs"`
	Domains []string `yaml:"domains"`
	// MaxTargets bounds the targets of one sweep (CIDRs expanded, seen IPs
	// included), so a /8 typed for a /28 cannot start a runaway sweep.
	MaxTargets int `yaml:"max_targets"`
	// SeenIPs adds the sending IPs found in delivery attempts.
	SeenIPs SeenIPsConfig `yaml:"seen_ips"`

	// Interval is the time from the start of one sweep to the next.
	// The first sweep runs at start, unless the last complete one (by any
	// copy) started less than an interval ago.
	Interval config.Duration `yaml:"interval"`
	// Concurrency is the number of queries in flight.
	Concurrency int `yaml:"concurrency"`
	// ZoneRate caps the queries per second sent about each zone; 0 means
	// unlimited (for your own rbldnsd or a local mirror).
	// Public lists throttle heavy users (Spamhaus then answers
	// 127.255.255.255).
	ZoneRate float64 `yaml:"zone_rate"`
	// Timeout bounds one query attempt; Retries are extra attempts after a
	// timeout, a network error or SERVFAIL.
	Timeout config.Duration `yaml:"timeout"`
	Retries int             `yaml:"retries"`
	// TCPFallback repeats a query over TCP when the UDP reply is truncated;
	// without it a truncated reply is an error (rbldnsd serves UDP only,
	// but its replies to A queries are never truncated).
	TCPFallback bool `yaml:"tcp_fallback"`
	// FetchTXT asks for the TXT reason of every listing.
	FetchTXT bool `yaml:"fetch_txt"`

	// Audit is the DNS hygiene audit of our sending IPs and domains.
	Audit AuditConfig `yaml:"audit"`

	// LeaderLease elects the one copy that sweeps and audits when several
	// dns-sweepers run (KV bucket leases, key dns-sweeper): the others
	// stand by, learn sending IPs from deliveries, and take over within
	// one TTL when the leader dies, at once when it stops cleanly.
	LeaderLease lease.Config `yaml:"leader_lease"`
}

// SeenIPsConfig controls targets learnt from delivery events.
type SeenIPsConfig struct {
	// Enabled consumes mailmon.delivery.attempted (durable dns-sweeper on
	// the DELIVERY stream) and sweeps every source_ip found there.
	Enabled bool `yaml:"enabled"`
	// MaxAge forgets an IP not seen in a delivery for this long.
	MaxAge config.Duration `yaml:"max_age"`
}

// AuditConfig controls the `dns.audit` pass.
type AuditConfig struct {
	// Enabled publishes dns.audit for our sending IPs (PTR, forward-confirmed
	// rDNS) and domains (SPF present, valid, authorising each sending IP;
	// DKIM keys; DMARC policy; MX), each finding with a severity.
	Enabled bool `yaml:"enabled"`
	// Interval is the time between audit passes; the first runs at start.
	Interval config.Duration `yaml:"interval"`
	// Resolver is the recursive resolver for audit lookups (PTR, A, TXT,
	// MX); empty uses dns_sweeper.resolver.
	Resolver string `yaml:"resolver"`
	// DKIMSelectors are checked under every domain:
	// <selector>._domainkey.<domain>.
	DKIMSelectors []string `yaml:"dkim_selectors"`
}

// DefaultConfig sweeps the default zones hourly through a resolver on
// localhost, 16 queries in flight, at most 20 queries per second per zone,
// audits every 6 hours, and elects its leader with a 15 s lease.
func DefaultConfig() Config {
	return Config{
		Resolver:    "127.0.0.1:53",
		MaxTargets:  65536,
		SeenIPs:     SeenIPsConfig{Enabled: true, MaxAge: config.Duration(30 * 24 * time.Hour)},
		Interval:    config.Duration(time.Hour),
		Concurrency: 16,
		ZoneRate:    20,
		Timeout:     config.Duration(2 * time.Second),
		Retries:     2,
		TCPFallback: true,
		FetchTXT:    true,
		Audit:       AuditConfig{Enabled: true, Interval: config.Duration(6 * time.Hour)},
		LeaderLease: lease.DefaultConfig(),
	}
}

// Validate reports every problem at once, with paths relative to the
// section.
func (c Config) Validate() error {
	var check config.Check
	checkAddr(&check, "resolver", c.Resolver, true)
	checkAddr(&check, "audit.resolver", c.Audit.Resolver, false)
	for i, z := range c.CustomZones {
		if err := z.Validate(); err != nil {
			check.Addf(fmt.Sprintf("custom_zones[%d]", i), "%v", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if _, _, err := dnsbl.Default().With(c.CustomZones).Select(c.Zones); err != nil {
		check.Addf("zones", "%v", err)
	}
	if c.DQSKey != "" {
		for _, ch := range c.DQSKey.Reveal() {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
				// Never quote the key.
				check.Addf("dqs_key", "must be letters and digits only (a Spamhaus DQS key)")
				break
			}
		}
	}
	if c.MaxTargets < 1 {
		check.Addf("max_targets", "must be at least 1, got %d", c.MaxTargets)
	}
	var total uint64
	for i, s := range c.IPs {
		if t, err := dnsbl.ParseTarget(s); err != nil || t.Kind != dnsbl.KindIP {
			check.Addf(fmt.Sprintf("ips[%d]", i), "%q is not an IP address", s)
		}
		total++
	}
	for i, s := range c.CIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			check.Addf(fmt.Sprintf("cidrs[%d]", i), "%q is not a CIDR prefix such as 192.0.2.0/24", s)
			continue
		}
		total += dnsbl.PrefixSize(p)
	}
	for i, s := range c.Domains {
		if t, err := dnsbl.ParseTarget(s); err != nil || t.Kind != dnsbl.KindDomain {
			check.Addf(fmt.Sprintf("domains[%d]", i), "%q is not a domain name", s)
		}
		total++
	}
	if c.MaxTargets >= 1 && total > uint64(c.MaxTargets) {
		check.Addf("cidrs", "ips, cidrs and domains hold %d targets, more than max_targets (%d)", total, c.MaxTargets)
	}
	if c.SeenIPs.Enabled && c.SeenIPs.MaxAge <= 0 {
		check.Addf("seen_ips.max_age", "must be positive, got %s", c.SeenIPs.MaxAge)
	}
	if c.Interval < config.Duration(time.Second) {
		check.Addf("interval", "must be at least 1s, got %s", c.Interval)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		check.Addf("concurrency", "must be 1 to 1024, got %d", c.Concurrency)
	}
	if c.ZoneRate < 0 {
		check.Addf("zone_rate", "must not be negative (0 is unlimited), got %g", c.ZoneRate)
	}
	if c.Timeout <= 0 {
		check.Addf("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.Retries < 0 || c.Retries > 5 {
		check.Addf("retries", "must be 0 to 5, got %d", c.Retries)
	}
	if c.Audit.Enabled && c.Audit.Interval < config.Duration(time.Second) {
		check.Addf("audit.interval", "must be at least 1s, got %s", c.Audit.Interval)
	}
	for i, s := range c.Audit.DKIMSelectors {
		if t, err := dnsbl.ParseTarget(s); err != nil || t.Kind != dnsbl.KindDomain {
			check.Addf(fmt.Sprintf("audit.dkim_selectors[%d]", i), "%q is not a DNS label", s)
		}
	}
	check.Nest("leader_lease", c.LeaderLease.Validate())
	return check.Err()
}

func checkAddr(check *config.Check, path, addr string, required bool) {
	if addr == "" {
		if required {
			check.Require(path, addr)
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		check.Addf(path, "%q is not host:port (e.g. 127.0.0.1:53)", addr)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil {
		check.Addf(path, "%q: the host must be an IP address (a resolver cannot be found by name)", addr)
	}
}

// auditResolver is the resolver audit lookups use.
func (c Config) auditResolver() string {
	if c.Audit.Resolver != "" {
		return c.Audit.Resolver
	}
	return c.Resolver
}
