package app

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/dnssweeper"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/suppression"
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
	// configs (values starting example-only-). Anywhere else they are
	// refused, since anyone who read the repository knows them. Never true
	// in production.
	Lab bool `yaml:"lab"`
	// DataDir holds local state: the embedded NATS store and, when enabled,
	// the local ClickHouse server's data.
	DataDir string `yaml:"data_dir"`
	// Log sets the format and level of the log on standard error.
	Log obs.LogConfig `yaml:"log"`
	// HTTP serves /metrics (Prometheus), /healthz (alive) and /readyz
	// (NATS and ClickHouse reachable).
	HTTP obs.HTTPConfig `yaml:"http"`
	// NATS is the bus every worker talks through, and its credentials.
	NATS NATSConfig `yaml:"nats"`
	// ClickHouse is where events are stored for dashboards.
	ClickHouse chstore.Config `yaml:"clickhouse"`
	// Tracking holds the keys that sign the X-Mailmon-Track header on probes
	// and customer mail, and verify it on complaints and bounces.
	Tracking TrackingConfig `yaml:"tracking"`

	// Suppression is the suppression list: which permanent bounces and
	// trusted complaints stop further mail to a recipient, for how long, how
	// addresses are normalised and hashed, and the policy service's answer.
	// The suppressor writes it, the policy service enforces it and `mailmon
	// suppression` edits it, all from this one section.
	Suppression suppression.Config `yaml:"suppression"`

	// ClickHouseSink stores every event stream in ClickHouse through the
	// clickhouse-sink durable consumers; server, database and retention are
	// the clickhouse section. Messages are acked only after ClickHouse
	// confirmed the batch.
	ClickHouseSink clickhousesink.Config `yaml:"clickhouse_sink"`
	// ComplaintEvaluator judges complaint rates (complaint.received over
	// delivery.attempted with status sent) per customer, sending IP and
	// customer x provider, and the other triggers below; writes decisions to
	// the KV bucket enforcement (read by the policy service) and publishes
	// decision and alert events. State is rebuilt from the streams at every
	// start.
	ComplaintEvaluator complaintevaluator.Config `yaml:"complaint_evaluator"`
	// DNSSweeper sweeps our IPs and domains against DNS blocklists: every
	// zone is self-tested first (a zone that fails is "unknown" for the
	// sweep, never "clean"), only certain listings count (error codes such
	// as Spamhaus' 127.255.255.254 and answers from NXDOMAIN-rewriting
	// resolvers are errors), events are published on transitions. Run one
	// dns-sweeper.
	DNSSweeper dnssweeper.Config `yaml:"dns_sweeper"`
	// PolicyService answers Postfix's check_policy_service from the KV
	// bucket enforcement. Postfix: smtpd_recipient_restrictions =
	// check_policy_service inet:127.0.0.1:10040, ... (see
	// services/policyservice/README.md).
	PolicyService policyservice.Config `yaml:"policy_service"`
	// Notifier sends the alerts of mailmon.alert.> to webhooks; never
	// through the MTA being monitored.
	Notifier notifier.Config `yaml:"notifier"`
	// ProbeSender sends one tagged probe per (source, target) every
	// interval, through each of our outgoing paths, and publishes
	// mailmon.probe.sent for each (a refused one too, with its reply
	// classified: 4xx tempfail, 5xx refused). Needs tracking.key to sign the
	// X-Mailmon-Track header.
	ProbeSender probesender.Config `yaml:"probe_sender"`
	// MailboxRetriever reads the seed mailboxes and publishes
	// mailmon.probe.received, .missing and .late; knows what to expect from
	// mailmon.probe.sent (durable consumer mailbox-retriever, KV bucket
	// probe_pending, so pending probes survive restarts). Needs tracking.key
	// to verify probes.
	MailboxRetriever mailboxretriever.Config `yaml:"mailbox_retriever"`
	// MTALogTailer follows the MTA logs and publishes one
	// mailmon.delivery.attempted per recipient attempt (and per NOQUEUE
	// reject), classified by the reply text. Positions are checkpointed in
	// the KV bucket tailer_offsets only after JetStream confirmed the events
	// before them; lines read again after a crash republish the same event
	// ids, which are dropped. Postfix must log the tracking header:
	// header_checks with "/^X-Mailmon-Track:/ WARN" (verified with the
	// tracking keys).
	MTALogTailer mtalogtailer.Config `yaml:"mta_log_tailer"`
	// FBLIngester receives feedback-loop reports (ARF, JMRP, Yahoo CFL) and
	// bounces (DSN and text bounces) and publishes
	// mailmon.complaint.received, mailmon.authfailure.received (RFC 6591
	// auth-failure reports: never complaints) and one
	// mailmon.bounce.received per failed recipient. A message is
	// acknowledged (SMTP 250, mailbox delete, file moved) only once its
	// events are stored by JetStream; a message no parser understands is
	// stored in mailmon.dlq.fbl-ingester with the reason, then acknowledged.
	FBLIngester fblingester.Config `yaml:"fbl_ingester"`
	// Console serves the read-only ops console at / on http.addr (next to
	// /metrics): pages from the ClickHouse rollups and the enforcement and
	// dnsbl_state buckets, as HTML or as JSON (Accept: application/json).
	// Complaint rates are judged against complaint_evaluator's thresholds.
	// Without token or username/password only loopback clients are
	// served, and a non-loopback http.addr is refused; with either, every
	// request must authenticate.
	Console console.Config `yaml:"console"`
}

// ConsoleConfig is the console section with the complaint thresholds of
// the complaint_evaluator section, the ones the evaluator acts on.
func ConsoleConfig(c Config) console.Config {
	cc := c.Console
	ev := c.ComplaintEvaluator
	cc.Thresholds = console.Thresholds{
		SourceIP:         console.Limit{Warn: ev.SourceIP.WarnRate, Act: ev.SourceIP.ActRate},
		CustomerProvider: console.Limit{Warn: ev.CustomerProvider.WarnRate, Act: ev.CustomerProvider.ActRate},
	}
	cc.Suppression = c.Suppression
	return cc
}

// NATSConfig says how to reach NATS. With no URL, mailmon runs an embedded
// server with JetStream on file storage (the single-machine default).
type NATSConfig struct {
	// URL empty runs an embedded NATS server with JetStream in this process
	// (one machine). Otherwise a comma-separated list of servers of a
	// cluster.
	URL string `yaml:"url"`
	// User, Password, Token and CredsFile are the shared authentication, for
	// every user without an entry in Users (simple setups): one of
	// user/password, token or creds_file.
	User      string        `yaml:"user"`
	Password  config.Secret `yaml:"password"`
	Token     config.Secret `yaml:"token"`
	CredsFile string        `yaml:"creds_file"`
	// Users gives least privilege on an external server: each worker
	// connects as its own user (its name), limited to its subjects, durables
	// and buckets (pipelines/access.yaml; deploy/cluster/accounts.conf is the
	// matching server side). Keys: a worker's name, admin (applies the
	// topology at start and in `mailmon pipelines apply`), enforcement-cli
	// (`mailmon enforcement lift`), silence-cli (`mailmon silence`),
	// check-cli (`mailmon check`, read-only), subscriber. Each sets one of password,
	// password_file or creds_file; user defaults to the key. A process needs
	// only the entries of the workers it runs, plus admin if it should apply
	// the topology. Once users is set, users missing from it fall back to the
	// shared user above, or fail to connect when there is none. The embedded
	// server (url empty) takes no users: it generates a password per user,
	// mode 0600, under <data_dir>/nats/credentials/<user>.
	Users map[string]NATSUser `yaml:"users"`
	// Replicas of every stream, consumer and KV bucket: 1 for one server, 3
	// in a cluster (see deploy/cluster/).
	Replicas int `yaml:"replicas"`
	// ConnectTimeout bounds connecting to the server.
	ConnectTimeout config.Duration `yaml:"connect_timeout"`
	// Embedded is the in-process server, used only when url is empty.
	Embedded EmbeddedNATS `yaml:"embedded"`
}

// EmbeddedNATS configures the in-process server used when NATS.URL is empty.
type EmbeddedNATS struct {
	// StoreDir holds the JetStream data; empty means <data_dir>/nats.
	StoreDir string `yaml:"store_dir"`
	// Listen lets other processes (subscribers, a second mailmon) connect;
	// empty keeps the server in-process only. Nobody connects without a user
	// and its generated password (<data_dir>/nats/credentials/<user>); other
	// services use the subscriber user.
	Listen string `yaml:"listen"`
	// MaxStore caps JetStream file storage; zero leaves the server default.
	MaxStore config.ByteSize `yaml:"max_store"`
}

// TrackingConfig holds the keys that sign and verify the tracking header.
type TrackingConfig struct {
	// Key signs new headers and verifies them. The secret is at least 32
	// bytes.
	Key TrackingKey `yaml:"key"`
	// PreviousKeys still verify during a rotation (sign with the new key
	// first, retire an old one after max_age).
	PreviousKeys []TrackingKey `yaml:"previous_keys"`
	// MaxAge rejects headers older than this (0 accepts any age): complaints
	// arrive days or weeks after the message was sent.
	MaxAge config.Duration `yaml:"max_age"`
}

// TrackingKey is one signing key and the id written into the header.
type TrackingKey struct {
	// ID is written into the header, so a verifier knows which key signed.
	ID string `yaml:"id"`
	// Secret is the HMAC key: at least 32 bytes.
	Secret config.Secret `yaml:"secret"`
}

// DefaultConfig is the configuration before any file is read.
func DefaultConfig() Config {
	return Config{
		DataDir:     "var",
		Log:         obs.DefaultLogConfig(),
		HTTP:        obs.DefaultHTTPConfig(),
		NATS:        NATSConfig{Replicas: 1, ConnectTimeout: config.Duration(10 * time.Second), Embedded: EmbeddedNATS{Listen: "127.0.0.1:4222"}},
		ClickHouse:  chstore.DefaultConfig(),
		Tracking:    TrackingConfig{MaxAge: config.Duration(90 * 24 * time.Hour)},
		Suppression: suppression.DefaultConfig(),

		ClickHouseSink:     clickhousesink.DefaultConfig(),
		ComplaintEvaluator: complaintevaluator.DefaultConfig(),
		DNSSweeper:         dnssweeper.DefaultConfig(),
		PolicyService:      policyservice.DefaultConfig(),
		Notifier:           notifier.DefaultConfig(),
		ProbeSender:        probesender.DefaultConfig(),
		MailboxRetriever:   mailboxretriever.DefaultConfig(),
		MTALogTailer:       mtalogtailer.DefaultConfig(),
		FBLIngester:        fblingester.DefaultConfig(),
		Console:            console.DefaultConfig(),
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
	check.Nest("console", c.Console.CheckExposure(c.HTTP.Addr))
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
