package app

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/dnssweeper"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/mailboxretriever"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/policyservice"
	"github.com/mailmon/mailmon/services/probesender"
)

// Config is the whole mailmon config file: the shared sections, then one
// section per worker (added with each worker).
type Config struct {
	// Lab marks a throwaway machine (the demo of `go tool task run`): only
	// there may secrets hold the public placeholders of the example and lab
	// configs (config.PlaceholderPrefix). Anywhere else they are refused,
	// since anyone who read the repository knows them.
	Lab bool `yaml:"lab"`
	// DataDir holds local state: the embedded NATS store and, when enabled,
	// the local ClickHouse server's data.
	DataDir    string         `yaml:"data_dir"`
	Log        obs.LogConfig  `yaml:"log"`
	HTTP       obs.HTTPConfig `yaml:"http"`
	NATS       NATSConfig     `yaml:"nats"`
	ClickHouse chstore.Config `yaml:"clickhouse"`
	Tracking   TrackingConfig `yaml:"tracking"`

	ClickHouseSink     clickhousesink.Config     `yaml:"clickhouse_sink"`
	ComplaintEvaluator complaintevaluator.Config `yaml:"complaint_evaluator"`
	DNSSweeper         dnssweeper.Config         `yaml:"dns_sweeper"`
	PolicyService      policyservice.Config      `yaml:"policy_service"`
	Notifier           notifier.Config           `yaml:"notifier"`
	ProbeSender        probesender.Config        `yaml:"probe_sender"`
	MailboxRetriever   mailboxretriever.Config   `yaml:"mailbox_retriever"`
	MTALogTailer       mtalogtailer.Config       `yaml:"mta_log_tailer"`
	FBLIngester        fblingester.Config        `yaml:"fbl_ingester"`
}

// NATSConfig says how to reach NATS. With no URL, mailmon runs an embedded
// server with JetStream on file storage (the single-machine default).
type NATSConfig struct {
	URL       string        `yaml:"url"`
	User      string        `yaml:"user"`
	Password  config.Secret `yaml:"password"`
	Token     config.Secret `yaml:"token"`
	CredsFile string        `yaml:"creds_file"`
	// Users gives each worker (and admin, enforcement-cli) its own
	// credentials on an external server; see natsauth.go.
	Users map[string]NATSUser `yaml:"users"`
	// Replicas of every stream, consumer and bucket: 1 on one server, 3 in
	// a cluster.
	Replicas       int             `yaml:"replicas"`
	ConnectTimeout config.Duration `yaml:"connect_timeout"`
	Embedded       EmbeddedNATS    `yaml:"embedded"`
}

// EmbeddedNATS configures the in-process server used when NATS.URL is empty.
type EmbeddedNATS struct {
	// StoreDir defaults to <data_dir>/nats.
	StoreDir string `yaml:"store_dir"`
	// Listen lets other processes (subscribers, a second mailmon) connect;
	// empty keeps the server in-process only.
	Listen string `yaml:"listen"`
	// MaxStore caps JetStream file storage; zero leaves the server default.
	MaxStore config.ByteSize `yaml:"max_store"`
}

// TrackingConfig holds the keys that sign and verify the tracking header.
type TrackingConfig struct {
	Key TrackingKey `yaml:"key"`
	// PreviousKeys still verify during a key rotation.
	PreviousKeys []TrackingKey `yaml:"previous_keys"`
	// MaxAge rejects headers older than this (0 accepts any age): complaints
	// arrive days or weeks after the message was sent.
	MaxAge config.Duration `yaml:"max_age"`
}

// TrackingKey is one signing key and the id written into the header.
type TrackingKey struct {
	ID     string        `yaml:"id"`
	Secret config.Secret `yaml:"secret"`
}

// DefaultConfig is the configuration before any file is read.
func DefaultConfig() Config {
	return Config{
		DataDir:    "var",
		Log:        obs.DefaultLogConfig(),
		HTTP:       obs.DefaultHTTPConfig(),
		NATS:       NATSConfig{Replicas: 1, ConnectTimeout: config.Duration(10 * time.Second), Embedded: EmbeddedNATS{Listen: "127.0.0.1:4222"}},
		ClickHouse: chstore.DefaultConfig(),
		Tracking:   TrackingConfig{MaxAge: config.Duration(90 * 24 * time.Hour)},

		ClickHouseSink:     clickhousesink.DefaultConfig(),
		ComplaintEvaluator: complaintevaluator.DefaultConfig(),
		DNSSweeper:         dnssweeper.DefaultConfig(),
		PolicyService:      policyservice.DefaultConfig(),
		Notifier:           notifier.DefaultConfig(),
		ProbeSender:        probesender.DefaultConfig(),
		MailboxRetriever:   mailboxretriever.DefaultConfig(),
		MTALogTailer:       mtalogtailer.DefaultConfig(),
		FBLIngester:        fblingester.DefaultConfig(),
	}
}

// Load reads a config file over the defaults and validates it.
func Load(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every problem in the config at once, each with its path.
func (c Config) Validate() error {
	var check config.Check
	check.Require("data_dir", c.DataDir)
	if !c.Lab {
		for _, path := range config.PlaceholderSecrets(c) {
			check.Addf(path, "holds a public placeholder (%s…) from mailmon's example config, not a secret: set the real one (the example names its environment variable), or set lab: true on a throwaway machine", config.PlaceholderPrefix)
		}
	}
	// Every section with a Validate method, under its yaml key: a section
	// added to Config is checked without being listed here.
	config.ValidateSections(&check, c)
	return check.Err()
}

func (c NATSConfig) Validate() error {
	var check config.Check
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		check.Addf("replicas", "must be 1, 3 or 5, not %d", c.Replicas)
	}
	if c.Token != "" && (c.User != "" || c.CredsFile != "") {
		check.Addf("token", "use one of token, user/password or creds_file")
	}
	if (c.User == "") != (c.Password == "") {
		check.Addf("password", "user and password go together")
	}
	check.Nest("users", validateNATSUsers(c))
	if c.ConnectTimeout <= 0 {
		check.Addf("connect_timeout", "must be positive")
	}
	if c.URL == "" && c.Embedded.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Embedded.Listen); err != nil {
			check.Addf("embedded.listen", "%q is not host:port", c.Embedded.Listen)
		}
	}
	return check.Err()
}

func (c TrackingConfig) Validate() error {
	var check config.Check
	// The key is optional for the file as a whole (a dns-sweeper never signs
	// anything); the workers that sign or verify require it when built.
	if c.Key.ID != "" || c.Key.Secret != "" || len(c.PreviousKeys) > 0 {
		check.Require("key.id", c.Key.ID)
		check.Require("key.secret", c.Key.Secret)
		for i, k := range c.PreviousKeys {
			check.Require(fmt.Sprintf("previous_keys[%d].id", i), k.ID)
			check.Require(fmt.Sprintf("previous_keys[%d].secret", i), k.Secret)
		}
		if c.Key.ID != "" && c.Key.Secret != "" {
			if _, err := c.Keyring(); err != nil {
				check.Addf("key", "%v", err)
			}
		}
	}
	if c.MaxAge < 0 {
		check.Addf("max_age", "must not be negative")
	}
	return check.Err()
}

// Keyring builds the signing keyring: the current key and the previous ones.
func (c TrackingConfig) Keyring() (tracking.Keyring, error) {
	ring := tracking.Keyring{Current: tracking.Key{ID: c.Key.ID, Secret: []byte(c.Key.Secret.Reveal())}}
	for _, k := range c.PreviousKeys {
		ring.Previous = append(ring.Previous, tracking.Key{ID: k.ID, Secret: []byte(k.Secret.Reveal())})
	}
	if err := ring.Validate(); err != nil {
		return tracking.Keyring{}, err
	}
	return ring, nil
}

// natsStoreDir is where the embedded server keeps JetStream data.
func (c Config) natsStoreDir() string {
	if c.NATS.Embedded.StoreDir != "" {
		return c.NATS.Embedded.StoreDir
	}
	return filepath.Join(c.DataDir, "nats")
}
