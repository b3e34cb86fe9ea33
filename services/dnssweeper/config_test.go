package dnssweeper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		path string // the problem's path; "" for valid
	}{
		{"no resolver", func(c *Config) { c.Resolver = "" }, "resolver"},
		{"resolver without port", func(c *Config) { c.Resolver = "127.0.0.1" }, "resolver"},
		{"resolver by name", func(c *Config) { c.Resolver = "dns.example.net:53" }, "resolver"},
		{"ipv6 resolver", func(c *Config) { c.Resolver = "[::1]:53" }, ""},
		{"bad audit resolver", func(c *Config) { c.Audit.Resolver = "x" }, "audit.resolver"},
		{"unknown zone", func(c *Config) { c.Zones = []string{"bl.nowhere.example"} }, "zones"},
		{"retired zone is allowed", func(c *Config) { c.Zones = []string{"dnsbl.sorbs.net"} }, ""},
		{"custom zone", func(c *Config) {
			c.CustomZones = []dnsbl.Zone{{Name: "bl.test", Kind: dnsbl.KindIP}}
			c.Zones = []string{"bl.test", "zen.spamhaus.org"}
		}, ""},
		{"bad custom zone", func(c *Config) { c.CustomZones = []dnsbl.Zone{{Name: "bl.test", Kind: "url"}} }, "custom_zones[0]"},
		{"bad ip", func(c *Config) { c.IPs = []string{"192.0.2.1", "example.com"} }, "ips[1]"},
		{"bad cidr", func(c *Config) { c.CIDRs = []string{"192.0.2.0/33"} }, "cidrs[0]"},
		{"bad domain", func(c *Config) { c.Domains = []string{"192.0.2.1"} }, "domains[0]"},
		{"too many targets", func(c *Config) { c.CIDRs = []string{"10.0.0.0/8"} }, "cidrs"},
		{"a /16 fits", func(c *Config) { c.CIDRs = []string{"10.0.0.0/16"} }, ""},
		{"ipv6 /64 does not", func(c *Config) { c.CIDRs = []string{"2001:db8::/64"} }, "cidrs"},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{"negative rate", func(c *Config) { c.ZoneRate = -1 }, "zone_rate"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"too many retries", func(c *Config) { c.Retries = 9 }, "retries"},
		{"tiny interval", func(c *Config) { c.Interval = 0 }, "interval"},
		{"seen without max age", func(c *Config) { c.SeenIPs.MaxAge = 0 }, "seen_ips.max_age"},
		{"bad selector", func(c *Config) { c.Audit.DKIMSelectors = []string{"a b"} }, "audit.dkim_selectors[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.path+":") {
				t.Fatalf("Validate = %v, want a problem at %s", err, tt.path)
			}
		})
	}
}

func TestDQSKeyNeverQuoted(t *testing.T) {
	c := DefaultConfig()
	c.DQSKey = "secret-key.with.dots"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Validate = %v", err)
	}
	c.DQSKey = "abcdefghij0123456789klmnop"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A config file section decodes strictly, custom zones included.
func TestLoadSection(t *testing.T) {
	doc := `
resolver: 127.0.0.1:5353
zones: [bl.test, dbl.test]
custom_zones:
  - name: bl.test
    kind: ip
    codes:
      127.0.0.2: {class: listed, meaning: "listed"}
      127.255.255.0/24: {class: error, meaning: "refused"}
  - name: dbl.test
    kind: domain
    test: {listed: [test], not_listed: [invalid]}
ips: [192.0.2.1]
cidrs: [198.51.100.0/24]
zone_rate: 0
`
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.CustomZones) != 2 || cfg.CustomZones[0].Codes["127.255.255.0/24"].Class != dnsbl.ClassError || cfg.ZoneRate != 0 || cfg.Concurrency != 16 {
		t.Errorf("decoded %+v", cfg)
	}
	targets, err := staticTargets(cfg)
	if err != nil || len(targets) != 257 {
		t.Errorf("%d targets, %v", len(targets), err)
	}
	bad := strings.Replace(doc, "kind: domain", "kind: domain\n    colour: red", 1)
	os.WriteFile(path, []byte(bad), 0o600)
	if err := config.Load(path, &cfg); err == nil || !strings.Contains(err.Error(), "custom_zones[1].colour") {
		t.Errorf("unknown key: %v", err)
	}
}
