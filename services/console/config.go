package console

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

// WorkerName is the console's name: its subcommand and log name.
const WorkerName = "console"

// Config is the `console` section of the mailmon config.
type Config struct {
	// Enabled serves the console at / on the HTTP listener (http.addr)
	// while the console worker runs; false leaves / unanswered (404).
	Enabled bool `yaml:"enabled"`
	// Token, when set, lets a request in with "Authorization: Bearer
	// <token>". Put it in the environment: token: ${env:MAILMON_CONSOLE_TOKEN}.
	Token config.Secret `yaml:"token"`
	// Username and Password, when set, let a request in with HTTP basic
	// authentication (browsers ask for them).
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// QueryTimeout bounds the ClickHouse and NATS reads of one page.
	QueryTimeout config.Duration `yaml:"query_timeout"`
	// MaxRange is the longest time range a page may ask for (from/to or
	// range): every query is bounded by it.
	MaxRange config.Duration `yaml:"max_range"`
	// Rows caps the rows of each list on a page (top replies, history,
	// trace steps).
	Rows int `yaml:"rows"`

	// Thresholds are the complaint-evaluator's thresholds the complaint
	// rates are judged against. They are not console keys: mailmon copies
	// them from the complaint_evaluator section when it builds the
	// console, so the two can never disagree.
	Thresholds Thresholds `yaml:"-"`
	// Suppression is the suppression section (hash key, normalisation,
	// dry-run customers), copied like Thresholds, so the /suppression
	// lookup computes the keys the policy service checks.
	Suppression suppression.Config `yaml:"-"`
}

// Thresholds are complaint-rate limits (fractions: 0.003 is 0.3 %) per
// scope, as the complaint-evaluator applies them.
type Thresholds struct {
	SourceIP         Limit
	CustomerProvider Limit
}

// Limit is a warn and an act rate; 0 is off.
type Limit struct {
	Warn float64 `json:"warn"`
	Act  float64 `json:"act"`
}

// DefaultConfig serves the console on loopback only (no auth configured).
// The thresholds are the complaint-evaluator's defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:      true,
		QueryTimeout: config.Duration(20 * time.Second),
		MaxRange:     config.Duration(31 * 24 * time.Hour),
		Rows:         50,
		Thresholds: Thresholds{
			SourceIP:         Limit{Warn: 0.001, Act: 0.003},
			CustomerProvider: Limit{Warn: 0.001, Act: 0.003},
		},
	}
}

// Validate reports every problem of the section.
func (c Config) Validate() error {
	var check config.Check
	if (c.Username == "") != (c.Password == "") {
		check.Addf("password", "username and password go together")
	}
	if strings.Contains(c.Username, ":") {
		check.Addf("username", "may not contain ':' (HTTP basic authentication)")
	}
	if c.QueryTimeout <= 0 {
		check.Addf("query_timeout", "must be positive")
	}
	if c.MaxRange < config.Duration(time.Hour) {
		check.Addf("max_range", "must be at least 1h")
	}
	if c.Rows < 1 || c.Rows > 10000 {
		check.Addf("rows", "must be between 1 and 10000, not %d", c.Rows)
	}
	return check.Err()
}

// HasAuth reports whether a token or a username and password are set.
func (c Config) HasAuth() bool { return c.Token != "" || c.Username != "" }

// CheckExposure is the problem with serving the console on addr: a
// listener others can reach, with no authentication configured. The
// console refuses such clients anyway (403); this makes the mistake a
// config error instead of a surprise.
func (c Config) CheckExposure(addr string) error {
	if !c.Enabled || c.HasAuth() || addr == "" || LoopbackAddr(addr) {
		return nil
	}
	var check config.Check
	check.Addf("token", "http.addr %s is reachable from other machines: set console.token or console.username/password, or bind http.addr to loopback", addr)
	return check.Err()
}

// LoopbackAddr reports whether host:port listens on loopback only.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
