package mtalogtailer

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/logfollow"
)

// Config is the `mta_log_tailer` section of the mailmon config.
type Config struct {
	// Files are the MTA logs to follow. A path of "-" reads standard
	// input to its end (no checkpoint).
	Files []FileConfig `yaml:"files"`
	// PollInterval is how often a file is checked for new lines once it
	// was read to its end.
	PollInterval config.Duration `yaml:"poll_interval"`
	// RotateGrace is how long a rotated file must be left alone before a
	// partial last line in it is taken as it is.
	RotateGrace config.Duration `yaml:"rotate_grace"`
	// CommitInterval and CommitLines bound how long, and how many lines,
	// events are published before the worker waits for JetStream to
	// confirm them and then checkpoints the log position. Lines read
	// after the last checkpoint are read again after a crash (their
	// events have the same ids, so nothing is counted twice).
	CommitInterval config.Duration `yaml:"commit_interval"`
	CommitLines    int             `yaml:"commit_lines"`
	// DrainTimeout bounds the final confirm and checkpoint at shutdown.
	DrainTimeout config.Duration `yaml:"drain_timeout"`
	// RetryInterval is the wait before a file is reopened from its last
	// checkpoint after publishing or reading failed.
	RetryInterval config.Duration `yaml:"retry_interval"`
	// StartAtEnd makes the first start (no checkpoint yet) skip what a log
	// already holds. Rotated files found then are never read.
	StartAtEnd bool `yaml:"start_at_end"`
	// LookbackBytes is how much of a log before its checkpoint is read
	// again at start, unpublished, so deliveries after a restart still
	// find their message's earlier lines (message-id, tracking header).
	LookbackBytes config.ByteSize `yaml:"lookback_bytes"`
	// MaxLineBytes cuts longer lines (the cut line is still parsed).
	MaxLineBytes config.ByteSize `yaml:"max_line_bytes"`
	// TimeZone is the zone of log timestamps written without one (RFC
	// 3164 syslog, Exim without log_timezone): "Local", "UTC" or an IANA
	// name.
	TimeZone string `yaml:"time_zone"`
	// TrackingHeader is the header a header_checks WARN rule logs, whose
	// value is verified with the tracking keys.
	TrackingHeader string `yaml:"tracking_header"`
	// PublishRejects publishes pre-queue rejects of our own MTA (Postfix
	// NOQUEUE) as delivery.attempted with status "rejected".
	PublishRejects bool `yaml:"publish_rejects"`
	// SampleInterval is how often an unparsed line, an unclassified reply
	// or a refused tracking header is written to the log as a sample; the
	// others are only counted.
	SampleInterval config.Duration `yaml:"sample_interval"`
	// SourceIPs maps where a delivery left from to our sending IP.
	SourceIPs SourceIPConfig `yaml:"source_ips"`
	// Providers maps recipient domains and MX host names to mailbox
	// providers.
	Providers ProviderConfig `yaml:"providers"`
}

// FileConfig is one log file.
type FileConfig struct {
	// Path is the log file, or "-" for standard input.
	Path string `yaml:"path"`
	// Format is "postfix" or "exim" (the parser reads both; this says
	// which the file is meant to hold).
	Format string `yaml:"format"`
	// RotatedGlobs are the names the file gets when rotated (filepath
	// patterns), e.g. "/var/log/mail.log.1". Default: PATH.1 and
	// PATH-YYYYMMDD. Compressed files are never read.
	RotatedGlobs []string `yaml:"rotated_globs"`
}

// SourceIPConfig says which of our IPs a delivery left from. Postfix does
// not log its bind address, but every transport or instance that binds one
// has its own syslog name (master.cf "-o syslog_name=..."), so the rules
// map names to addresses.
type SourceIPConfig struct {
	// Rules are tried in order; the first whose set fields all match wins.
	// Postfix does not log its bind address: map the syslog names of the
	// instances and transports that bind one (master.cf "-o syslog_name=..."
	// with "-o smtp_bind_address=...") to it. Empty fields match anything.
	Rules []SourceIPRule `yaml:"rules"`
	// FromName takes an IP address written in the instance or transport
	// name, e.g. "postfix-10.1.2.3/smtp" or "postfix/smtp-10.1.2.3", when
	// no rule matched.
	FromName bool `yaml:"from_name"`
	// FromTracking falls back to the source in a verified tracking header,
	// when it is an IP address.
	FromTracking bool `yaml:"from_tracking"`
	// Default is the source IP when nothing else told; "" leaves it empty.
	Default string `yaml:"default"`
}

// SourceIPRule maps a log host, Postfix instance or transport to an IP.
// Empty fields match anything; at least one must be set.
type SourceIPRule struct {
	// Host is the host name in the log line.
	Host string `yaml:"host"`
	// Instance is the syslog name's first part, e.g. "postfix-out1".
	Instance string `yaml:"instance"`
	// Transport is the delivery agent's name as logged: the last part of
	// the syslog name (a master.cf service such as "smtp-pool1"), or
	// Exim's transport (T=).
	Transport string `yaml:"transport"`
	// SourceIP is the address deliveries matching the rule leave from.
	SourceIP string `yaml:"source_ip"`
}

// ProviderConfig extends the built-in provider table.
type ProviderConfig struct {
	// Builtin enables the built-in table of the big mailbox providers.
	// It knows Gmail, Outlook, Yahoo, AOL, iCloud, GMX, WEB.DE, Mail.ru,
	// Yandex, Comcast, AT&T, Orange, T-Online and many more.
	Builtin bool `yaml:"builtin"`
	// Domains maps a recipient domain to a provider; it also matches
	// subdomains. Entries here win over the built-in table.
	Domains map[string]string `yaml:"domains"`
	// MXSuffixes maps a suffix of the relay (MX) host name to a provider,
	// for hosted domains (e.g. "mail.protection.outlook.com": outlook).
	MXSuffixes map[string]string `yaml:"mx_suffixes"`
}

// DefaultConfig follows /var/log/mail.log (Debian's Postfix log) and reads
// it from its start on the first run.
func DefaultConfig() Config {
	return Config{
		Files:          []FileConfig{{Path: "/var/log/mail.log", Format: "postfix"}},
		PollInterval:   config.Duration(250 * time.Millisecond),
		RotateGrace:    config.Duration(2 * time.Second),
		CommitInterval: config.Duration(time.Second),
		CommitLines:    20_000,
		DrainTimeout:   config.Duration(10 * time.Second),
		RetryInterval:  config.Duration(2 * time.Second),
		LookbackBytes:  config.ByteSize(8 << 20),
		MaxLineBytes:   config.ByteSize(64 << 10),
		TimeZone:       "Local",
		TrackingHeader: "X-Mailmon-Track",
		PublishRejects: true,
		SampleInterval: config.Duration(10 * time.Second),
		SourceIPs:      SourceIPConfig{FromName: true},
		Providers:      ProviderConfig{Builtin: true},
	}
}

// Validate reports every problem at once, with paths relative to the
// section.
func (c Config) Validate() error {
	var check config.Check
	if len(c.Files) == 0 {
		check.Addf("files", "at least one file is required")
	}
	seen := map[string]bool{}
	for i, f := range c.Files {
		p := fmt.Sprintf("files[%d]", i)
		switch {
		case f.Path == "":
			check.Addf(p+".path", "is required")
		case seen[f.Path]:
			check.Addf(p+".path", "%q is listed twice", f.Path)
		case f.Path != "-" && !filepath.IsAbs(f.Path):
			check.Addf(p+".path", "%q must be absolute", f.Path)
		}
		seen[f.Path] = true
		if f.Format != "postfix" && f.Format != "exim" {
			check.Addf(p+".format", "must be postfix or exim, not %q", f.Format)
		}
		for j, g := range f.RotatedGlobs {
			if _, err := filepath.Match(g, ""); err != nil || g == "" {
				check.Addf(fmt.Sprintf("%s.rotated_globs[%d]", p, j), "%q is not a valid pattern", g)
			}
		}
	}
	for _, d := range []struct {
		key   string
		value config.Duration
	}{
		{"poll_interval", c.PollInterval},
		{"rotate_grace", c.RotateGrace},
		{"commit_interval", c.CommitInterval},
		{"drain_timeout", c.DrainTimeout},
		{"retry_interval", c.RetryInterval},
		{"sample_interval", c.SampleInterval},
	} {
		if d.value <= 0 {
			check.Addf(d.key, "must be positive, got %s", d.value)
		}
	}
	if c.CommitLines < 1 {
		check.Addf("commit_lines", "must be at least 1, got %d", c.CommitLines)
	}
	if c.LookbackBytes < 0 {
		check.Addf("lookback_bytes", "must not be negative")
	}
	if c.MaxLineBytes < logfollow.MaxFingerprintBytes || c.MaxLineBytes > 16<<20 {
		check.Addf("max_line_bytes", "must be between 4KiB and 16MiB, got %s", c.MaxLineBytes)
	}
	if _, err := loadZone(c.TimeZone); err != nil {
		check.Addf("time_zone", "%v", err)
	}
	if c.TrackingHeader == "" || strings.ContainsAny(c.TrackingHeader, ": \t") {
		check.Addf("tracking_header", "must be a header name, got %q", c.TrackingHeader)
	}
	check.Nest("source_ips", c.SourceIPs.validate())
	check.Nest("providers", c.Providers.validate())
	return check.Err()
}

func (c SourceIPConfig) validate() error {
	var check config.Check
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		if r.Host == "" && r.Instance == "" && r.Transport == "" {
			check.Addf(p, "set at least one of host, instance, transport")
		}
		if _, err := netip.ParseAddr(r.SourceIP); err != nil {
			check.Addf(p+".source_ip", "%q is not an IP address", r.SourceIP)
		}
	}
	if c.Default != "" {
		if _, err := netip.ParseAddr(c.Default); err != nil {
			check.Addf("default", "%q is not an IP address", c.Default)
		}
	}
	return check.Err()
}

func (c ProviderConfig) validate() error {
	var check config.Check
	for d, p := range c.Domains {
		if !validName(d) || !validProvider(p) {
			check.Addf("domains", "entry %q: %q needs a domain name and a provider token (a-z, 0-9, '.', '-', '_')", d, p)
		}
	}
	for d, p := range c.MXSuffixes {
		if !validName(d) || !validProvider(p) {
			check.Addf("mx_suffixes", "entry %q: %q needs a host name suffix and a provider token", d, p)
		}
	}
	return check.Err()
}

func validName(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
	}
	return !strings.ContainsAny(s, " @/\\")
}

func validProvider(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// loadZone resolves time_zone.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "", "Local":
		return time.Local, nil
	case "UTC":
		return time.UTC, nil
	}
	return time.LoadLocation(name)
}
