package notifier

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Route kinds.
const (
	KindWebhook      = "webhook"
	KindSlack        = "slack"
	KindAlertmanager = "alertmanager"
	KindEmail        = "email"
)

// Config is the `notifier` section of the mailmon config.
type Config struct {
	// GroupWait is how long alerts about one subject are collected before
	// they go out together as one notification.
	GroupWait config.Duration `yaml:"group_wait"`
	// RepeatInterval is how long after its last notification an unchanged
	// firing alert (same fingerprint, severity and members) is notified
	// again.
	RepeatInterval config.Duration `yaml:"repeat_interval"`
	// MaxAge is how long after an alert's time the notifier keeps trying
	// to deliver it; then the alert is dead-lettered and counted in
	// mailmon_notifier_alerts_undeliverable_total. An alert already older
	// than this when it is due is dead-lettered without being sent.
	MaxAge config.Duration `yaml:"max_age"`
	// Timeout bounds one HTTP request.
	Timeout config.Duration `yaml:"timeout"`
	// Attempts per route and notification, spaced by exponential backoff
	// between RetryMin and RetryMax. After the last, the alerts are handed
	// back to JetStream and tried again after the redelivery delays.
	Attempts int             `yaml:"attempts"`
	RetryMin config.Duration `yaml:"retry_min"`
	RetryMax config.Duration `yaml:"retry_max"`
	// Redelivery are the delays after which JetStream hands back an alert
	// whose route failed every attempt: the n-th entry after the n-th
	// failed delivery, the last one repeating, until max_age.
	Redelivery []config.Duration `yaml:"redelivery"`
	// Concurrency is how many alerts are handled at once (they wait
	// together for their group).
	Concurrency int `yaml:"concurrency"`
	// Routes are where notifications go. With none, alerts are consumed
	// and counted only.
	Routes []Route `yaml:"routes"`
	// Reports are the daily and weekly reports (as `mailmon report`
	// prints them) e-mailed to email routes on a schedule. They are read
	// from ClickHouse (the clickhouse section).
	Reports []ReportSchedule `yaml:"reports"`
}

// Route is one destination.
type Route struct {
	// Name identifies the route in logs and metrics.
	Name string `yaml:"name"`
	// Kind is "webhook" (generic JSON), "slack" (Slack-compatible incoming
	// webhook), "alertmanager" (Alertmanager API v2; url is the base,
	// e.g. http://alertmanager:9093) or "email" (a plain-text message
	// through an SMTP relay: smtp_addr, from, to).
	Kind string `yaml:"kind"`
	// URL is a secret: Slack-style webhook URLs carry their credential.
	URL config.Secret `yaml:"url"`
	// Token is sent as "Authorization: Bearer <token>" when set.
	Token config.Secret `yaml:"token"`
	// Username and Password are sent as basic auth when set; an email
	// route logs in to its relay with them (SMTP AUTH PLAIN, or LOGIN when
	// the relay offers only that).
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// MinSeverity drops alerts below it: info, warning or critical.
	MinSeverity string `yaml:"min_severity"`
	// Rules limits the route to these alert rules; empty takes all.
	Rules []string `yaml:"rules"`
	// Customers limits the route to alerts about these customers; empty
	// takes all (alerts about no customer too).
	Customers []string `yaml:"customers"`
	// Providers limits the route to alerts about these mailbox providers
	// (the alert's provider, or one of the providers it lists); empty
	// takes all.
	Providers []string `yaml:"providers"`

	// SMTPAddr is an email route's relay, host:port (e.g.
	// smtp.example.net:587). Alerts go through a relay of their own, not
	// through the MTA mailmon watches.
	SMTPAddr string `yaml:"smtp_addr"`
	// TLS is how an email route protects its connection: "starttls"
	// (default), "implicit" (TLS from the first byte, port 465) or "none",
	// which is refused unless smtp_addr is a loopback address.
	TLS string `yaml:"tls"`
	// TLSServerName is the name the relay's certificate is checked against;
	// the host of smtp_addr when empty.
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCAFile is a PEM bundle of the CAs that sign the relay's
	// certificate, for a private CA; the system's roots when empty.
	TLSCAFile string `yaml:"tls_ca_file"`
	// From is an email route's sender, e.g. "mailmon <alerts@example.net>";
	// also the envelope sender.
	From string `yaml:"from"`
	// To are an email route's recipients (at most 50); each message goes to
	// all of them at once.
	To []string `yaml:"to"`
	// HeloName is the name an email route greets its relay with (EHLO);
	// this machine's host name when empty.
	HeloName string `yaml:"helo_name"`
	// Timeout bounds an email route's whole SMTP exchange, from the
	// connect to the relay's reply to the message; the notifier's timeout
	// when 0.
	Timeout config.Duration `yaml:"timeout"`
}

// DefaultConfig groups for 2 s, repeats after 4 h, tries each route 5
// times per delivery and keeps trying for 24 h after the alert's time.
func DefaultConfig() Config {
	return Config{
		GroupWait:      config.Duration(2 * time.Second),
		RepeatInterval: config.Duration(4 * time.Hour),
		MaxAge:         config.Duration(24 * time.Hour),
		Timeout:        config.Duration(10 * time.Second),
		Attempts:       5,
		RetryMin:       config.Duration(500 * time.Millisecond),
		RetryMax:       config.Duration(30 * time.Second),
		Redelivery:     []config.Duration{config.Duration(30 * time.Second), config.Duration(2 * time.Minute), config.Duration(5 * time.Minute)},
		Concurrency:    64,
	}
}

var severities = []string{"info", "warning", "critical"}

// Validate reports every problem at once. URLs are never quoted: they may
// hold credentials.
func (c Config) Validate() error {
	var check config.Check
	for _, d := range []struct {
		key string
		v   config.Duration
	}{{"group_wait", c.GroupWait}, {"repeat_interval", c.RepeatInterval}, {"max_age", c.MaxAge}, {"timeout", c.Timeout}, {"retry_min", c.RetryMin}, {"retry_max", c.RetryMax}} {
		if d.v <= 0 {
			check.Addf(d.key, "must be positive")
		}
	}
	if c.RetryMax < c.RetryMin {
		check.Addf("retry_max", "must be at least retry_min")
	}
	if c.Attempts < 1 {
		check.Addf("attempts", "must be at least 1")
	}
	if len(c.Redelivery) == 0 {
		check.Addf("redelivery", "needs at least one delay")
	}
	for i, d := range c.Redelivery {
		if d <= 0 {
			check.Addf(fmt.Sprintf("redelivery[%d]", i), "must be positive")
		}
	}
	if c.Concurrency < 1 {
		check.Addf("concurrency", "must be at least 1")
	}
	names := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			check.Addf(p+".name", "is required")
		} else if names[r.Name] {
			check.Addf(p+".name", "%q is used twice", r.Name)
		}
		names[r.Name] = true
		if !slices.Contains([]string{KindWebhook, KindSlack, KindAlertmanager, KindEmail}, r.Kind) {
			check.Addf(p+".kind", "must be webhook, slack, alertmanager or email, got %q", r.Kind)
		}
		if r.Kind == KindEmail {
			check.Nest(p, r.validateEmail())
		} else if u, err := url.Parse(r.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			check.Addf(p+".url", "must be an http(s) URL")
		}
		if r.MinSeverity != "" && !slices.Contains(severities, r.MinSeverity) {
			check.Addf(p+".min_severity", "must be info, warning or critical, got %q", r.MinSeverity)
		}
		if r.Token != "" && r.Username != "" {
			check.Addf(p+".token", "use token or username/password, not both")
		}
		if (r.Username == "") != (r.Password == "") {
			check.Addf(p+".password", "username and password go together")
		}
	}
	for i, r := range c.Reports {
		check.Nest(fmt.Sprintf("reports[%d]", i), r.validate(c.Routes))
	}
	return check.Err()
}

func severityRank(s string) int { return slices.Index(severities, s) }
