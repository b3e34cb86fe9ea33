package suppression

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is the `suppression` section: shared by the suppressor (which
// writes entries), the policy service (which enforces them) and `mailmon
// suppression` (which edits them), so all three hash and normalise alike.
type Config struct {
	// HashKey, when set, keys the address digests (HMAC-SHA256) and keeps
	// addresses out of the bucket, the events and exports: only the
	// digest, the domain and the customer are stored. Changing it orphans
	// every entry (their keys no longer match): export first, then import
	// under the new key.
	HashKey config.Secret `yaml:"hash_key"`
	// Normalize holds the per-domain rules for local parts.
	Normalize Normalizer `yaml:"normalize"`
	// Scope is where automatic entries go: "customer_recipient" (the
	// default: only the customer whose mail bounced or drew the complaint
	// stops sending to the address) or "global_recipient" (every customer
	// stops). An event without a customer always goes to the global list.
	Scope string `yaml:"scope"`
	// Expiry is how long an automatic entry lasts, by the bounce category
	// that made it (user_unknown, mailbox_disabled, domain_unknown), or
	// "complaint", "soft_bounces", "manual", "unsubscribe"; 0 never
	// expires. A bounce category not listed here never suppresses: only
	// these are permanent facts about the recipient, while blocks, policy
	// and content rejections are about the sender.
	Expiry map[string]config.Duration `yaml:"expiry"`
	// SoftBounces suppresses after repeated soft failures; off by default.
	SoftBounces SoftBounces `yaml:"soft_bounces"`
	// ClearOnDelivery: a later successful delivery to the address (sent,
	// for any customer) removes its bounce entries, for the customer that
	// sent it and the global one: the address came back. Complaint, manual
	// and unsubscribe entries stay.
	ClearOnDelivery bool `yaml:"clear_on_delivery"`
	// DryRunCustomers are customers whose entries are kept but not
	// enforced: the policy service counts what it would have rejected
	// (mailmon_policy_service_suppression_dry_run_total) and answers DUNNO.
	DryRunCustomers []string `yaml:"dry_run_customers"`
	// RejectCode is the SMTP reply code of the policy service's answer for
	// a suppressed recipient: 550 (mailbox unavailable, what receivers
	// answer for an unknown user) to 559; 0 answers REJECT and leaves the
	// code to Postfix's access_map_reject_code (554).
	RejectCode int `yaml:"reject_code"`
	// RejectText follows the code: an RFC 3463 status code and printable
	// text. It never says why the recipient is suppressed.
	RejectText string `yaml:"reject_text"`
	// SweepInterval is how often the suppressor removes expired entries
	// (the policy service stops enforcing them at their expiry anyway).
	SweepInterval config.Duration `yaml:"sweep_interval"`
}

// SoftBounces configures suppression after repeated soft failures.
type SoftBounces struct {
	// Count soft failures of one address within Window suppress it; 0 is
	// off.
	Count int `yaml:"count"`
	// Window is the time the failures must fall within.
	Window config.Duration `yaml:"window"`
	// Categories are the bounce categories that count as soft failures.
	Categories []string `yaml:"categories"`
}

// The expiry keys besides bounce categories.
const (
	ExpiryComplaint   = "complaint"
	ExpirySoftBounces = "soft_bounces"
	ExpiryManual      = "manual"
	ExpiryUnsubscribe = "unsubscribe"
)

const day = 24 * time.Hour

// DefaultConfig suppresses user-unknown addresses for 90 days, disabled
// mailboxes for 180 days, unknown domains for 30 days, complainers until
// removed; soft bounces never; per customer; a delivery clears bounce
// entries.
func DefaultConfig() Config {
	return Config{
		Scope: schemas.SuppressCustomerRecipient,
		Expiry: map[string]config.Duration{
			"user_unknown":     config.Duration(90 * day),
			"mailbox_disabled": config.Duration(180 * day),
			"domain_unknown":   config.Duration(30 * day),
			ExpiryComplaint:    0,
			ExpirySoftBounces:  config.Duration(30 * day),
			ExpiryManual:       0,
			ExpiryUnsubscribe:  0,
		},
		SoftBounces:     SoftBounces{Window: config.Duration(7 * day), Categories: []string{"mailbox_full"}},
		ClearOnDelivery: true,
		RejectCode:      550,
		RejectText:      "5.1.1 Recipient address rejected",
		SweepInterval:   config.Duration(10 * time.Minute),
	}
}

// Hasher returns the hasher of the configured hash key.
func (c Config) Hasher() Hasher { return NewHasher(string(c.HashKey)) }

// ExpiryFor returns how long an entry for kind (a bounce category or one
// of the Expiry* keys) lasts: 0 forever; ok is false when kind never
// suppresses.
func (c Config) ExpiryFor(kind string) (time.Duration, bool) {
	d, ok := c.Expiry[kind]
	return d.Std(), ok
}

// DryRun reports whether customer's entries are only counted.
func (c Config) DryRun(customer string) bool {
	return customer != "" && slices.Contains(c.DryRunCustomers, customer)
}

var statusText = regexp.MustCompile(`^5\.[0-9]{1,3}\.[0-9]{1,3} [ -~]+$`)

// softCategories never suppress on their own: they are about the sender or
// the moment, not the address.
var neverPermanent = []string{"blocked_ip_or_blocklist", "rate_limited", "policy_auth_spf_dkim_dmarc", "policy",
	"spam_content", "sender_rejected", "filtered", "network", "message_too_big", "remote_system", "other", "expired"}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	switch c.Scope {
	case schemas.SuppressCustomerRecipient, schemas.SuppressGlobalRecipient:
	default:
		check.Addf("scope", "must be %s or %s, got %q", schemas.SuppressCustomerRecipient, schemas.SuppressGlobalRecipient, c.Scope)
	}
	for kind, d := range c.Expiry {
		if d < 0 {
			check.Addf("expiry."+kind, "must not be negative")
		}
		if slices.Contains(neverPermanent, kind) {
			check.Addf("expiry."+kind, "%s is about the sender or the moment, not the recipient: it never suppresses", kind)
		}
	}
	if c.SoftBounces.Count < 0 {
		check.Addf("soft_bounces.count", "must not be negative")
	}
	if c.SoftBounces.Count > 0 {
		if c.SoftBounces.Window <= 0 {
			check.Addf("soft_bounces.window", "must be positive when count is set")
		}
		if len(c.SoftBounces.Categories) == 0 {
			check.Addf("soft_bounces.categories", "needs at least one category when count is set")
		}
		if _, ok := c.Expiry[ExpirySoftBounces]; !ok {
			check.Addf("expiry."+ExpirySoftBounces, "must be set when soft_bounces.count is")
		}
	}
	if !statusText.MatchString(c.RejectText) || len(c.RejectText) > 200 {
		check.Addf("reject_text", "must be a 5.x.x status code and printable ASCII text, at most 200 bytes, got %q", c.RejectText)
	}
	if c.RejectCode != 0 && (c.RejectCode < 550 || c.RejectCode > 559) {
		check.Addf("reject_code", "must be 550 to 559, or 0 for Postfix's access_map_reject_code, got %d", c.RejectCode)
	}
	if c.SweepInterval <= 0 {
		check.Addf("sweep_interval", "must be positive")
	}
	var n Normalizer
	for i, d := range append(slices.Clone(c.Normalize.IgnoreDots), c.Normalize.StripSubaddress...) {
		if nd, err := n.Domain(d); err != nil || nd != d {
			check.Addf(fmt.Sprintf("normalize[%d]", i), "%q must be a domain in lower-case ASCII (%s)", d, strings.TrimSpace(nd))
		}
	}
	for _, cst := range c.DryRunCustomers {
		if cst == "" {
			check.Addf("dry_run_customers", "holds an empty name")
		}
	}
	return check.Err()
}
