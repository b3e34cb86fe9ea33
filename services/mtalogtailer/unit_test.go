package mtalogtailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/mtalogtailer"
)

func TestProviderTable(t *testing.T) {
	cfg := mtalogtailer.ProviderConfig{
		Builtin:    true,
		Domains:    map[string]string{"corp.example": "corp", "gmail.com": "custom-google"},
		MXSuffixes: map[string]string{"mx.hoster.example": "hoster"},
	}
	for _, c := range []struct{ domain, relay, want string }{
		{"gmail.com", "", "custom-google"}, // configured entries win
		{"googlemail.com", "", "gmail"},
		{"HOTMAIL.CO.UK", "", "outlook"},
		{"yahoo.co.jp", "", "yahoo"},
		{"aol.com", "mx-aol.mail.gm0.yahoodns.net", "aol"}, // the domain decides before the MX
		{"icloud.com", "", "icloud"},
		{"web.de", "", "webde"},
		{"gmx.net", "", "gmx"},
		{"inbox.ru", "", "mailru"},
		{"yandex.ru", "", "yandex"},
		{"comcast.net", "", "comcast"},
		{"sub.corp.example", "", "corp"}, // subdomains match
		{"gmail.ru", "", ""},             // a suffix of a label does not
		{"customer.example", "customer-example.mail.protection.outlook.com", "outlook"},
		{"school.example", "aspmx.l.google.com.", "gmail"},
		{"small.example", "a.mx.hoster.example", "hoster"},
		{"small.example", "mx.small.example", ""},
	} {
		if got := mtalogtailer.LookupProvider(cfg, c.domain, c.relay); got != c.want {
			t.Errorf("provider(%q, %q) = %q, want %q", c.domain, c.relay, got, c.want)
		}
	}
	if got := mtalogtailer.LookupProvider(mtalogtailer.ProviderConfig{}, "gmail.com", ""); got != "" {
		t.Errorf("with the built-in table off gmail.com is %q", got)
	}
}

func TestSourceIPMapping(t *testing.T) {
	cfg := mtalogtailer.SourceIPConfig{
		Rules: []mtalogtailer.SourceIPRule{
			{Instance: "postfix-out1", SourceIP: "198.51.100.1"},
			{Transport: "smtp-pool2", SourceIP: "198.51.100.2"},
			{Host: "mx9", Transport: "smtp", SourceIP: "198.51.100.9"},
			{Transport: "out3", SourceIP: "198.51.100.3"},
		},
		FromName:     true,
		FromTracking: true,
		Default:      "198.51.100.200",
	}
	for _, c := range []struct{ host, program, agent, tracked, want string }{
		{"mx1", "postfix-out1/smtp", "smtp", "", "198.51.100.1"},
		{"mx1", "postfix/smtp-pool2", "smtp-pool2", "", "198.51.100.2"},
		// master.cf "out3 ... smtp -o syslog_name=postfix/out3".
		{"mx1", "postfix/out3/smtp", "smtp", "", "198.51.100.3"},
		{"mx1", "postfix/smtp-10.4.5.6/smtp", "smtp", "", "10.4.5.6"},
		{"MX9", "postfix/smtp", "smtp", "", "198.51.100.9"},
		{"mx1", "postfix-10.1.2.3/smtp", "smtp", "", "10.1.2.3"},
		{"mx1", "postfix/smtp-2001:db8::25", "smtp-2001:db8::25", "", "2001:db8::25"},
		{"mx1", "postfix/smtp", "smtp", "192.0.2.7", "192.0.2.7"},
		{"mx1", "postfix/smtp", "smtp", "pool-a", "198.51.100.200"},
		{"mx1", "exim", "remote_smtp", "", "198.51.100.200"},
	} {
		if got := mtalogtailer.LookupSourceIP(cfg, c.host, c.program, c.agent, c.tracked); got != c.want {
			t.Errorf("source ip(%q, %q, %q, %q) = %q, want %q", c.host, c.program, c.agent, c.tracked, got, c.want)
		}
	}
}

func TestEventIDIsDeterministic(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC)
	a := mtalogtailer.EventID("fileA", 1234, "x@example.com", at)
	if b := mtalogtailer.EventID("fileA", 1234, "X@Example.com", at); a != b {
		t.Fatalf("same line, same recipient: %s and %s", a, b)
	}
	for _, other := range []string{
		mtalogtailer.EventID("fileB", 1234, "x@example.com", at),
		mtalogtailer.EventID("fileA", 1235, "x@example.com", at),
		mtalogtailer.EventID("fileA", 1234, "y@example.com", at),
	} {
		if other == a {
			t.Fatalf("different places share the id %s", a)
		}
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("id %s: version %v variant %v err %v", a, u.Version(), u.Variant(), err)
	}
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec).UnixMilli(); got != at.UnixMilli() {
		t.Fatalf("id time %d, want the line's %d", got, at.UnixMilli())
	}
	later := mtalogtailer.EventID("fileA", 0, "x@example.com", at.Add(time.Millisecond))
	if later <= a {
		t.Fatalf("ids do not sort by time: %s then %s", a, later)
	}
}

func TestConfigValidation(t *testing.T) {
	if err := mtalogtailer.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg := mtalogtailer.DefaultConfig()
	cfg.Files = []mtalogtailer.FileConfig{
		{Path: "relative.log", Format: "postfix"},
		{Path: "/var/log/a", Format: "sendmail", RotatedGlobs: []string{"["}},
		{Path: "/var/log/a", Format: "exim"},
	}
	cfg.PollInterval = 0
	cfg.CommitLines = 0
	cfg.MaxLineBytes = config.ByteSize(100)
	cfg.TimeZone = "Mars/Olympus"
	cfg.TrackingHeader = "X-Track:"
	cfg.SourceIPs.Rules = []mtalogtailer.SourceIPRule{{SourceIP: "not-an-ip"}}
	cfg.SourceIPs.Default = "nope"
	cfg.Providers.Domains = map[string]string{"gmail.com": "Not A Token"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a broken config passed")
	}
	for _, want := range []string{
		"files[0].path", "files[1].format", "files[1].rotated_globs[0]", "files[2].path",
		"poll_interval", "commit_lines", "max_line_bytes", "time_zone", "tracking_header",
		"source_ips.rules[0]", "source_ips.rules[0].source_ip", "source_ips.default", "providers.domains",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
}
