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
)

// Config is the `notifier` section of the mailmon config.
type Config struct {
	// GroupWait is how long alerts about one subject are collected before
	// they go out together as one notification.
	GroupWait config.Duration `yaml:"group_wait"`
	// RepeatInterval drops an alert whose dedupe key and status were
	// already sent within it.
	RepeatInterval config.Duration `yaml:"repeat_interval"`
	// MaxAge skips alerts older than this (a notifier started on a long
	// ALERT stream does not page anyone about last month).
	MaxAge config.Duration `yaml:"max_age"`
	// Timeout bounds one HTTP request.
	Timeout config.Duration `yaml:"timeout"`
	// Attempts per route and notification, spaced by exponential backoff
	// between RetryMin and RetryMax. After the last, the alerts are handed
	// back to JetStream and tried again later.
	Attempts int             `yaml:"attempts"`
	RetryMin config.Duration `yaml:"retry_min"`
	RetryMax config.Duration `yaml:"retry_max"`
	// Concurrency is how many alerts are handled at once (they wait
	// together for their group).
	Concurrency int `yaml:"concurrency"`
	// Routes are where notifications go. With none, alerts are consumed
	// and counted only.
	Routes []Route `yaml:"routes"`
}

// Route is one destination.
type Route struct {
	// Name identifies the route in logs and metrics.
	Name string `yaml:"name"`
	// Kind is "webhook" (generic JSON), "slack" (Slack-compatible incoming
	// webhook) or "alertmanager" (Alertmanager API v2; url is the base,
	// e.g. http://alertmanager:9093).
	Kind string `yaml:"kind"`
	// URL is a secret: Slack-style webhook URLs carry their credential.
	URL config.Secret `yaml:"url"`
	// Token is sent as "Authorization: Bearer <token>" when set.
	Token config.Secret `yaml:"token"`
	// Username and Password are sent as basic auth when set.
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// MinSeverity drops alerts below it: info, warning or critical.
	MinSeverity string `yaml:"min_severity"`
	// Rules limits the route to these alert rules; empty takes all.
	Rules []string `yaml:"rules"`
}

// DefaultConfig groups for 2 s, repeats after 4 h, and tries each route 5
// times per notification.
func DefaultConfig() Config {
	return Config{
		GroupWait:      config.Duration(2 * time.Second),
		RepeatInterval: config.Duration(4 * time.Hour),
		MaxAge:         config.Duration(time.Hour),
		Timeout:        config.Duration(10 * time.Second),
		Attempts:       5,
		RetryMin:       config.Duration(500 * time.Millisecond),
		RetryMax:       config.Duration(30 * time.Second),
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
		if !slices.Contains([]string{KindWebhook, KindSlack, KindAlertmanager}, r.Kind) {
			check.Addf(p+".kind", "must be webhook, slack or alertmanager, got %q", r.Kind)
		}
		if u, err := url.Parse(r.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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
	return check.Err()
}

func severityRank(s string) int { return slices.Index(severities, s) }
