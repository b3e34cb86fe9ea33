package app

import (
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/mailboxretriever"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/probesender"
)

// exampleConfigHeader opens deploy/config/mailmon.example.yaml.
const exampleConfigHeader = `# mailmon configuration: every key, with its default and meaning.
#
# Generated from the config structs' field comments by
# ` + "`go tool task config-docs`" + `; edit those, not this file.
#
# Order of evaluation: built-in defaults, then this file, then ${env:NAME}
# expansion inside values (use it for every secret), then strict checking
# (an unknown key is an error) and validation (every problem is reported at
# once, with its path). ` + "`mailmon check-config -config FILE`" + ` prints the
# effective config with secrets shown as [REDACTED].
#
# ${env:NAME} fails when NAME is unset; ${env:NAME:-fallback} falls back.
# The fallbacks below are public placeholders, all starting example-only-,
# and mailmon refuses every secret that holds one unless lab is true. So
# this file checks only with the real secrets in the environment:
#   MAILMON_NATS_PASSWORD MAILMON_NATS_COMPLAINT_EVALUATOR_PASSWORD
#   MAILMON_TRACKING_KEY MAILMON_TRACKING_KEY_PREVIOUS (32 bytes or more)
#   MAILMON_ALERTMANAGER_PASSWORD MAILMON_PROBE_SMTP_PASSWORD
#   MAILMON_FBL_IMAP_PASSWORD MAILMON_FBL_SMTP_PASSWORD
# Without them check-config names each key still holding a placeholder. In
# a real config write plain ${env:NAME}, so a missing secret stops mailmon
# instead of running with a placeholder.
`

// exampleValues is the configuration deploy/config/mailmon.example.yaml
// shows: the defaults, with illustrative values where a default says
// little (a NATS cluster, per-user credentials, probe sources, routes).
// Secrets hold their raw ${env:…} text, which the generator writes as it
// is; their fallbacks are the public example-only- placeholders that a
// config without lab: true refuses.
func exampleValues() Config {
	c := DefaultConfig()
	c.DataDir = "/var/lib/mailmon"

	c.NATS.URL = "nats://nats-1.example.net:4222,nats://nats-2.example.net:4222,nats://nats-3.example.net:4222"
	c.NATS.User = "mailmon"
	c.NATS.Password = "${env:MAILMON_NATS_PASSWORD:-example-only-nats-password}"
	c.NATS.Users = map[string]NATSUser{
		"admin":               {PasswordFile: "/etc/mailmon/nats/admin"},
		"clickhouse-sink":     {User: "clickhouse-sink", PasswordFile: "/etc/mailmon/nats/clickhouse-sink"},
		"complaint-evaluator": {Password: "${env:MAILMON_NATS_COMPLAINT_EVALUATOR_PASSWORD:-example-only-evaluator-password}"},
		"policy-service":      {CredsFile: "/etc/mailmon/nats/policy-service.creds"},
	}
	c.NATS.Replicas = 3

	c.ClickHouse.Addr = "127.0.0.1:9000"
	c.ClickHouse.Username = "mailmon"
	c.ClickHouse.Password = "${env:MAILMON_CLICKHOUSE_PASSWORD:-}"

	c.Tracking.Key = TrackingKey{ID: "k2026a", Secret: "${env:MAILMON_TRACKING_KEY:-example-only-tracking-key-0123456789abcdef}"}
	c.Tracking.PreviousKeys = []TrackingKey{{ID: "k2025b", Secret: "${env:MAILMON_TRACKING_KEY_PREVIOUS:-example-only-previous-key-0123456789abcdef}"}}

	c.DNSSweeper.CustomZones = []dnsbl.Zone{{
		Name:      "bl.internal.example.net",
		List:      "Our own rbldnsd list",
		Kind:      dnsbl.KindIP,
		Weight:    1,
		DelistURL: "https://bl.internal.example.net/remove?ip={target}",
		Codes: map[string]dnsbl.Code{
			"127.0.0.2":        {Class: dnsbl.ClassListed, Meaning: "listed by the abuse desk"},
			"127.255.255.0/24": {Class: dnsbl.ClassError, Meaning: "refused"},
		},
		OtherCodes: dnsbl.ClassListed,
		Test:       dnsbl.TestEntries{Listed: []string{"127.0.0.2"}, NotListed: []string{"127.0.0.1"}},
	}}
	c.DNSSweeper.DQSKey = "${env:MAILMON_SPAMHAUS_DQS_KEY:-}"
	c.DNSSweeper.IPs = []string{"192.0.2.25", "198.51.100.7"}
	c.DNSSweeper.CIDRs = []string{"192.0.2.0/27"}
	c.DNSSweeper.Domains = []string{"example.com"}
	c.DNSSweeper.Audit.DKIMSelectors = []string{"s1", "s2024"}

	c.PolicyService.Customers.SenderDomains = map[string]string{"mail.acme-retail.example.com": "acme-retail"}
	c.PolicyService.Customers.ClientAddresses = map[string]string{"198.51.100.0/24": "acme-retail"}
	c.PolicyService.Providers = map[string][]string{"gmail": {"gmail.example-hosted.com"}}

	c.Notifier.Routes = []notifier.Route{
		{Name: "abuse-team", Kind: notifier.KindWebhook,
			URL:         "${env:MAILMON_ABUSE_WEBHOOK_URL:-https://hooks.example.net/mailmon}",
			Token:       "${env:MAILMON_ABUSE_WEBHOOK_TOKEN:-}",
			MinSeverity: "warning"},
		{Name: "ops-alertmanager", Kind: notifier.KindAlertmanager,
			URL:         "http://alertmanager.example.net:9093",
			Username:    "mailmon",
			Password:    "${env:MAILMON_ALERTMANAGER_PASSWORD:-example-only-alertmanager-password}",
			MinSeverity: "info"},
		{Name: "noc-mail", Kind: notifier.KindEmail,
			SMTPAddr: "relay.example.net:25", TLS: "starttls", HeloName: "mailmon.example.net",
			From: "mailmon <alerts@example.net>", To: []string{"noc@example.net"},
			MinSeverity: "critical"},
	}
	c.Notifier.Reports = []notifier.ReportSchedule{
		{Period: "daily", At: "07:00", Routes: []string{"noc-mail"}},
		{Period: "weekly", At: "07:00", Weekday: "monday", Customer: "acme-retail", Routes: []string{"noc-mail"}},
	}

	c.ProbeSender.From = "probe@example.net"
	c.ProbeSender.FromName = "mailmon probe"
	c.ProbeSender.ProviderRatePerMinute = map[string]int{"gmail": 30}
	c.ProbeSender.ListUnsubscribeURL = "https://example.net/unsubscribe"
	c.ProbeSender.DKIM.PrivateKey = "${env:MAILMON_DKIM_KEY:-}"
	c.ProbeSender.Sources = []probesender.Source{
		{Name: "out1", Type: "smtp", Addr: "mta-1.example.net:587", TLS: "starttls",
			Username: "probe", Password: "${env:MAILMON_PROBE_SMTP_PASSWORD:-example-only-smtp-password}",
			AuthMechanism: "plain", HeloName: "probe.example.net", SourceIP: "192.0.2.10"},
		{Name: "local", Type: "sendmail", SendmailCommand: []string{"/usr/sbin/sendmail", "-i"}},
	}
	c.ProbeSender.Targets = []probesender.Target{{
		Name: "gmail-1", Provider: "gmail", Address: "seed1@gmail.example",
		Variants: []string{"plain", "html", "list_unsubscribe"},
		Headers:  map[string]string{"X-Campaign": "probe"},
	}}

	c.MailboxRetriever.Accounts = []mailboxretriever.Account{{
		Name: "gmail-1", Protocol: "imap", Addr: "imap.gmail.example:993", TLS: "implicit",
		Username: "seed1@gmail.example", Auth: "xoauth2", TokenFile: "/var/lib/mailmon/tokens/gmail-1",
		Addresses:   []string{"seed1@gmail.example"},
		SpamFolders: []string{"[Gmail]/Spam", "Junk", "Spam"},
	}}

	c.MTALogTailer.Files = []mtalogtailer.FileConfig{{Path: "/var/log/mail.log", Format: "postfix", RotatedGlobs: []string{"/var/log/mail.log.1"}}}
	c.MTALogTailer.SourceIPs.Rules = []mtalogtailer.SourceIPRule{{Instance: "postfix-out1", SourceIP: "192.0.2.25"}}
	c.MTALogTailer.Providers.Domains = map[string]string{"corp-mail.example": "corp"}
	c.MTALogTailer.Providers.MXSuffixes = map[string]string{"mx.hoster.example": "hoster"}

	c.FBLIngester.SMTP.Listen = "127.0.0.1:2525"
	c.FBLIngester.SMTP.Hostname = "fbl.example.net"
	c.FBLIngester.SMTP.Addresses = []string{"fbl@example.net"}
	c.FBLIngester.SMTP.Domains = []string{"bounces.example.net"}
	c.FBLIngester.IMAP.Accounts = []fblingester.IMAPAccount{{
		Name: "fbl-mailbox", Addr: "imap.example.net:993", TLS: "implicit", Username: "fbl@example.net",
		Password: "${env:MAILMON_FBL_IMAP_PASSWORD:-example-only-fbl-imap-password}",
		Folders:  []string{"INBOX"},
	}}
	c.FBLIngester.Trace.DKIMDomains = map[string]string{"acme-retail.example.com": "acme-retail"}
	c.FBLIngester.Trace.MessageIDDomains = map[string]string{"mail.acme-retail.example.com": "acme-retail"}
	c.FBLIngester.Trace.FromDomains = map[string]string{"acme-retail.example.com": "acme-retail"}
	c.FBLIngester.Trace.SourceNetworks = []string{"192.0.2.0/24"}
	c.FBLIngester.Trust.Operators = []fblingester.Operator{{DKIMDomain: "fbl.partner.example"}}
	c.FBLIngester.Trust.SMTPUsers = []fblingester.SMTPUser{{Username: "fbl-relay", Password: "${env:MAILMON_FBL_SMTP_PASSWORD:-example-only-fbl-smtp-password}"}}
	c.FBLIngester.Providers = map[string]string{"fbl.partner.example": "partner"}
	return c
}
