package policyservice

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/suppression"
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
	// Printable ASCII only.
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
	// More are closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxAttributes and MaxLineBytes bound one request.
	// A request over them closes the connection.
	MaxAttributes int `yaml:"max_attributes"`
	MaxLineBytes  int `yaml:"max_line_bytes"`
	// StaleAfter: while there is no live watch of the bucket (NATS
	// unreachable, watch broken, started from the snapshot) the last known
	// decisions are enforced for this long; after that the state is stale
	// and OnStale says what is answered.
	StaleAfter config.Duration `yaml:"stale_after"`
	// OnStale is what a stale state answers: "enforce_unexpired" keeps
	// enforcing each record until its own until (pair it with Postfix's
	// smtpd_policy_service_default_action = DEFER_IF_PERMIT); "fail_open"
	// answers DUNNO to everything (pair it with default_action = DUNNO).
	// Either way an alert is raised. See the policy service's README.
	OnStale string `yaml:"on_stale"`
	// AllowedActions are the Postfix actions a record may make the service
	// answer: the cut-off actions (REJECT, DEFER_IF_PERMIT, DEFER, HOLD,
	// DISCARD) and FILTER for reroutes. A record asking for another one is
	// ignored (answered DUNNO) with a counter and an alert. OK, PREPEND,
	// REDIRECT and the other Postfix actions can never be listed: they
	// would let a bucket writer open the relay, write headers or send mail
	// elsewhere.
	AllowedActions []string `yaml:"allowed_actions"`
	// RerouteTransports are the master.cf transports a reroute record may
	// name (exact match); a record naming another is ignored.
	RerouteTransports []string `yaml:"reroute_transports"`
	// SnapshotFile is where the service keeps its copy of the bucket, so
	// that it starts and enforces while NATS is unreachable. Empty under
	// mailmon's runtime means <data_dir>/policy-service/enforcement.json;
	// "off" keeps no snapshot.
	// It is rewritten atomically, mode 0600, after every change, and read at
	// start.
	SnapshotFile string `yaml:"snapshot_file"`
	// SnapshotMaxBytes bounds the snapshot, written and read.
	SnapshotMaxBytes config.ByteSize `yaml:"snapshot_max_bytes"`
	// SuppressionSnapshotFile is where the service keeps its copy of the
	// suppression bucket (a compact binary file, 12 bytes per entry), so
	// that a restart loads fast, reads only the bucket's changes since,
	// and enforces the list while NATS is unreachable. Empty under
	// mailmon's runtime means <data_dir>/policy-service/suppression.bin;
	// "off" keeps none. Rewritten atomically, mode 0600, at most once a
	// minute while the list changes.
	SuppressionSnapshotFile string `yaml:"suppression_snapshot_file"`
	// AlertInterval is the least time between two "state unavailable"
	// alerts.
	AlertInterval config.Duration `yaml:"alert_interval"`
	// Customers says how a request names its customer.
	Customers Identity `yaml:"customers"`
	// Providers maps a provider name to more recipient domains (and their
	// subdomains), for customer × provider decisions, on top of the
	// built-in table the other workers use too.
	// Provider names are the ones the mta-log-tailer gives deliveries: gmail,
	// outlook, yahoo, aol, icloud ...
	Providers map[string][]string `yaml:"providers"`
	// IPAttributes are the request attributes matched against ip:
	// decisions, e.g. client_address (the customer's server relaying
	// through us) or server_address (our listening, i.e. sending, address).
	IPAttributes []string `yaml:"ip_attributes"`

	// Suppression is mailmon's suppression section (the runtime fills it):
	// recipients on a suppression list are refused at RCPT TO.
	Suppression suppression.Config `yaml:"-"`
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

// What a stale state answers (on_stale).
const (
	OnStaleEnforceUnexpired = "enforce_unexpired"
	OnStaleFailOpen         = "fail_open"
)

// SnapshotOff as snapshot_file keeps no snapshot.
const SnapshotOff = "off"

// cutoffActions are the Postfix actions a cut-off may answer; FILTER is
// the reroute's. Only these can be allowed.
var cutoffActions = []string{"REJECT", "DEFER_IF_PERMIT", "DEFER", "HOLD", "DISCARD"}

// refusedActions explain why the other Postfix actions are never allowed.
var refusedActions = map[string]string{
	"OK":       "OK accepts the recipient and skips the later restrictions (reject_unauth_destination): an open relay",
	"PERMIT":   "it accepts the recipient and skips the later restrictions",
	"DUNNO":    "DUNNO is what the service answers when nothing is enforced",
	"PREPEND":  "PREPEND would write message headers chosen by whoever writes the bucket",
	"REDIRECT": "REDIRECT would send the mail to an address chosen by whoever writes the bucket",
	"BCC":      "BCC would copy the mail to an address chosen by whoever writes the bucket",
}

// DefaultConfig listens on loopback port 10040, answers only REJECT,
// DEFER_IF_PERMIT, HOLD and FILTER ndr:, and keeps enforcing unexpired
// decisions without NATS.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:10040",
		AnswerTimeout:  config.Duration(200 * time.Millisecond),
		IdleTimeout:    config.Duration(330 * time.Second),
		MaxConnections: 1000,
		MaxAttributes:  100,
		MaxLineBytes:   4096,
		StaleAfter:     config.Duration(30 * time.Second),
		OnStale:        OnStaleEnforceUnexpired,
		AlertInterval:  config.Duration(5 * time.Minute),
		Customers:      Identity{SASLUsername: true},
		IPAttributes:   []string{"client_address"},

		AllowedActions:    []string{"REJECT", "DEFER_IF_PERMIT", "HOLD", "FILTER"},
		RerouteTransports: []string{"ndr"},
		SnapshotMaxBytes:  config.ByteSize(16 << 20),
		Suppression:       suppression.DefaultConfig(),
	}
}

// WithDataDir fills the default snapshot path under mailmon's data_dir.
func (c Config) WithDataDir(dataDir string) Config {
	if c.SnapshotFile == "" && dataDir != "" {
		c.SnapshotFile = filepath.Join(dataDir, "policy-service", "enforcement.json")
	}
	if c.SuppressionSnapshotFile == "" && dataDir != "" {
		c.SuppressionSnapshotFile = filepath.Join(dataDir, "policy-service", "suppression.bin")
	}
	return c
}

// snapshotPath is the snapshot file, or "" when none is kept.
func (c Config) snapshotPath() string {
	if c.SnapshotFile == SnapshotOff {
		return ""
	}
	return c.SnapshotFile
}

// suppressionSnapshotPath is the suppression snapshot file, or "" when
// none is kept.
func (c Config) suppressionSnapshotPath() string {
	if c.SuppressionSnapshotFile == SnapshotOff {
		return ""
	}
	return c.SuppressionSnapshotFile
}

// allows reports whether action is in allowed_actions.
func (c Config) allows(action string) bool { return slices.Contains(c.AllowedActions, action) }

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		check.Addf("listen", "%q is not host:port", c.Listen)
	}
	for i, a := range c.AllowedActions {
		key := fmt.Sprintf("allowed_actions[%d]", i)
		switch why, refused := refusedActions[a]; {
		case refused:
			check.Addf(key, "%s is never allowed: %s", a, why)
		case a != "FILTER" && !slices.Contains(cutoffActions, a):
			check.Addf(key, "must be one of %s or FILTER, got %q", strings.Join(cutoffActions, ", "), a)
		}
	}
	if c.CutoffAction != "" && (!slices.Contains(cutoffActions, c.CutoffAction) || !c.allows(c.CutoffAction)) {
		check.Addf("cutoff_action", "must be empty or a cut-off action listed in allowed_actions (%s), got %q",
			strings.Join(c.AllowedActions, ", "), c.CutoffAction)
	}
	if c.CutoffText != "" {
		if _, err := cleanText(c.CutoffText); err != nil {
			check.Addf("cutoff_text", "%v", err)
		}
	}
	if c.RerouteNexthop != "" && !validNexthop(c.RerouteNexthop) {
		check.Addf("reroute_nexthop", "must be printable ASCII without spaces, at most %d bytes, got %q", maxNexthopBytes, c.RerouteNexthop)
	}
	for i, t := range c.RerouteTransports {
		if !enforcement.ValidTransport(t) {
			check.Addf(fmt.Sprintf("reroute_transports[%d]", i), "must be a master.cf service name (letters, digits, - _ .), got %q", t)
		}
	}
	if len(c.RerouteTransports) == 0 && c.allows("FILTER") {
		check.Addf("reroute_transports", "needs at least one transport while FILTER is allowed")
	}
	switch c.OnStale {
	case OnStaleEnforceUnexpired, OnStaleFailOpen:
	default:
		check.Addf("on_stale", "must be %s or %s, got %q", OnStaleEnforceUnexpired, OnStaleFailOpen, c.OnStale)
	}
	if c.SnapshotMaxBytes < 4096 {
		check.Addf("snapshot_max_bytes", "must be at least 4KiB")
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
