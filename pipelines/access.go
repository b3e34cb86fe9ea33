package pipelines

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailmon/mailmon/schemas"
)

//go:embed access.yaml
var accessYAML []byte

// Access declares the NATS users and what each needs (access.yaml). Grants
// turns it into subject permissions against a topology.
type Access struct {
	Users []User `yaml:"users"`
}

// Roles of a user; see access.yaml for what each implies.
const (
	RoleWorker     = "worker"
	RoleCLI        = "cli"
	RoleSubscriber = "subscriber"
	RoleAdmin      = "admin"
)

// Well-known users outside the workers.
const (
	UserAdmin          = "admin"
	UserSubscriber     = "subscriber"
	UserEnforcementCLI = "enforcement-cli"
)

// Bucket access levels.
const (
	BucketRead  = "read"
	BucketWrite = "write"
)

// User is one NATS user and what it needs.
type User struct {
	Name  string `yaml:"name"`
	Role  string `yaml:"role"`
	About string `yaml:"about"`
	// Publish lists the event subjects the user publishes.
	Publish []string `yaml:"publish"`
	// ReadStreams are streams read with ordered (ephemeral) consumers.
	ReadStreams []string `yaml:"read_streams"`
	// Buckets maps a KV bucket to BucketRead or BucketWrite.
	Buckets map[string]string `yaml:"buckets"`
}

// Grant is the NATS permissions of one user.
type Grant struct {
	User      string
	Publish   SubjectRules
	Subscribe SubjectRules
}

// SubjectRules allow subjects and deny some of them; NATS applies deny
// over allow.
type SubjectRules struct {
	Allow []string
	Deny  []string
}

// DefaultAccess returns the access declarations shipped with this build,
// validated against the default topology.
func DefaultAccess() (Access, error) {
	top, err := Default()
	if err != nil {
		return Access{}, err
	}
	return ParseAccess(accessYAML, top)
}

// ParseAccess reads an access document strictly and validates it against
// top.
func ParseAccess(doc []byte, top Topology) (Access, error) {
	var a Access
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		return Access{}, fmt.Errorf("pipelines: access: %w", err)
	}
	if err := a.Validate(top); err != nil {
		return Access{}, err
	}
	return a, nil
}

// userName is what a NATS user name (and so an inbox token) may be: it must
// be one subject token and never a wildcard.
var userName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Validate checks that names are unique tokens, that every stream, bucket
// and subject named exists in top, that every durable consumer of top
// belongs to a worker, and that exactly one admin and one subscriber exist.
func (a Access) Validate(top Topology) error {
	var errs []error
	streams := map[string]bool{}
	for _, s := range top.Streams {
		streams[s.Name] = true
	}
	buckets := map[string]bool{}
	for _, b := range top.Buckets {
		buckets[b.Name] = true
	}
	seen := map[string]User{}
	roles := map[string]int{}
	for _, u := range a.Users {
		if !userName.MatchString(u.Name) {
			errs = append(errs, fmt.Errorf("user %q: name must be lower-case letters, digits and dashes", u.Name))
		}
		if _, dup := seen[u.Name]; dup {
			errs = append(errs, fmt.Errorf("user %s: declared twice", u.Name))
		}
		seen[u.Name] = u
		roles[u.Role]++
		switch u.Role {
		case RoleWorker, RoleCLI:
		case RoleSubscriber, RoleAdmin:
			if len(u.Publish)+len(u.ReadStreams)+len(u.Buckets) > 0 {
				errs = append(errs, fmt.Errorf("user %s: role %s takes no publish, read_streams or buckets", u.Name, u.Role))
			}
		default:
			errs = append(errs, fmt.Errorf("user %s: role %q is not worker, cli, subscriber or admin", u.Name, u.Role))
		}
		for _, subj := range u.Publish {
			if strings.ContainsAny(subj, "*>") {
				errs = append(errs, fmt.Errorf("user %s: publish %q: name subjects, not wildcards", u.Name, subj))
			} else if _, ok := top.StreamFor(subj); !ok {
				errs = append(errs, fmt.Errorf("user %s: publish %q is captured by no stream", u.Name, subj))
			}
		}
		for _, s := range u.ReadStreams {
			if !streams[s] {
				errs = append(errs, fmt.Errorf("user %s: read_streams: unknown stream %q", u.Name, s))
			}
		}
		for b, level := range u.Buckets {
			if !buckets[b] {
				errs = append(errs, fmt.Errorf("user %s: unknown bucket %q", u.Name, b))
			}
			if level != BucketRead && level != BucketWrite {
				errs = append(errs, fmt.Errorf("user %s: bucket %s: %q is not read or write", u.Name, b, level))
			}
		}
	}
	for _, c := range top.Consumers {
		if u, ok := seen[c.Durable]; !ok || u.Role != RoleWorker {
			errs = append(errs, fmt.Errorf("consumer %s/%s: no worker user named %s pulls it", c.Stream, c.Durable, c.Durable))
		}
	}
	if roles[RoleAdmin] != 1 || seen[UserAdmin].Role != RoleAdmin {
		errs = append(errs, fmt.Errorf("exactly one admin user, named %s, is required", UserAdmin))
	}
	if roles[RoleSubscriber] != 1 || seen[UserSubscriber].Role != RoleSubscriber {
		errs = append(errs, fmt.Errorf("exactly one subscriber user, named %s, is required", UserSubscriber))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pipelines: invalid access:\n%w", err)
	}
	return nil
}

// User returns the declaration named name.
func (a Access) User(name string) (User, bool) {
	i := slices.IndexFunc(a.Users, func(u User) bool { return u.Name == name })
	if i < 0 {
		return User{}, false
	}
	return a.Users[i], true
}

// Names lists every user, in declaration order.
func (a Access) Names() []string {
	out := make([]string, 0, len(a.Users))
	for _, u := range a.Users {
		out = append(out, u.Name)
	}
	return out
}

// InboxPrefix is the reply-subject prefix user's connections must use
// (nats.CustomInboxPrefix): its grant lets it subscribe below this prefix
// and nowhere else under _INBOX.
func InboxPrefix(user string) string { return "_INBOX." + user }

// kvStream is the stream behind a KV bucket.
func kvStream(bucket string) string { return "KV_" + bucket }

// Grants computes every user's permissions from the declarations and top,
// in declaration order.
func (a Access) Grants(top Topology) []Grant {
	out := make([]Grant, 0, len(a.Users))
	for _, u := range a.Users {
		out = append(out, u.grant(top))
	}
	return out
}

func (u User) grant(top Topology) Grant {
	g := Grant{User: u.Name}
	if u.Role == RoleAdmin {
		g.Publish.Allow = []string{">"}
		g.Subscribe.Allow = []string{">"}
		return g
	}
	var pub []string
	pub = append(pub, u.Publish...)
	if u.Role == RoleWorker {
		pub = append(pub, schemas.SubjectDeadLetterPrefix+u.Name)
		// Its durables: look each up, pull, ack (ack, nak, in-progress and
		// term are all publishes to the ack subject).
		for _, c := range top.Consumers {
			if c.Durable != u.Name {
				continue
			}
			pub = append(pub,
				"$JS.API.CONSUMER.INFO."+c.Stream+"."+c.Durable,
				"$JS.API.CONSUMER.MSG.NEXT."+c.Stream+"."+c.Durable,
				"$JS.ACK."+c.Stream+"."+c.Durable+".>",
			)
		}
	}
	for _, s := range u.ReadStreams {
		pub = append(pub, ephemeralConsumerAPI(s)...)
	}
	for _, b := range slices.Sorted(maps.Keys(u.Buckets)) {
		s := kvStream(b)
		// Get (direct or through the stream), and watch: a KV watch is an
		// ordered push consumer with flow control.
		pub = append(pub,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.FC."+s+".>",
		)
		pub = append(pub, ephemeralConsumerAPI(s)...)
		if u.Buckets[b] == BucketWrite {
			pub = append(pub, "$KV."+b+".>")
		}
	}
	sub := []string{InboxPrefix(u.Name) + ".>"}
	if u.Role == RoleSubscriber {
		dlq, _ := top.StreamFor(schemas.SubjectDeadLetterPrefix + u.Name)
		for _, s := range top.Streams {
			if s.Name == dlq.Name {
				// Dead letters are raw outside input: operators only.
				continue
			}
			sub = append(sub, s.Subjects...)
			pub = append(pub,
				"$JS.API.CONSUMER.DURABLE.CREATE."+s.Name+".*",
				"$JS.ACK."+s.Name+".>",
				"$JS.FC."+s.Name+".>",
			)
			pub = append(pub, ephemeralConsumerAPI(s.Name)...)
		}
		// Account limits and usage, which clients such as the nats CLI ask.
		pub = append(pub, "$JS.API.INFO")
	}
	g.Publish.Allow = dedupe(pub)
	g.Subscribe.Allow = dedupe(sub)
	// Consumer names are one token and NATS wildcards match whole tokens,
	// so whoever may create or pull consumers by any name on a stream is
	// kept off mailmon's durables by name: pulling from another worker's
	// durable would steal its messages, acking them would lose them.
	if wildcardConsumers(g.Publish.Allow) {
		for _, d := range durables(top) {
			if d == u.Name && u.Role == RoleWorker {
				continue
			}
			g.Publish.Deny = append(g.Publish.Deny,
				"$JS.API.CONSUMER.*.*."+d,      // CREATE, INFO, DELETE ... STREAM.durable
				"$JS.API.CONSUMER.*.*."+d+".>", // CREATE.STREAM.durable.filter
				"$JS.API.CONSUMER.*.*.*."+d,    // MSG.NEXT and DURABLE.CREATE
				"$JS.ACK.*."+d+".>",
			)
		}
	}
	return g
}

// ephemeralConsumerAPI is what an ordered consumer on stream needs: create
// (named, with or without a filter token), pull, look up, delete on reset,
// and the stream's info.
func ephemeralConsumerAPI(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".*",
		"$JS.API.CONSUMER.CREATE." + stream + ".*.>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.API.CONSUMER.INFO." + stream + ".*",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
	}
}

func wildcardConsumers(allow []string) bool {
	for _, s := range allow {
		if strings.HasPrefix(s, "$JS.API.CONSUMER.") && strings.HasSuffix(s, ".*") {
			return true
		}
	}
	return false
}

// durables lists the distinct durable names of top.
func durables(top Topology) []string {
	var out []string
	for _, c := range top.Consumers {
		if !slices.Contains(out, c.Durable) {
			out = append(out, c.Durable)
		}
	}
	return out
}

func dedupe(subjects []string) []string {
	out := make([]string, 0, len(subjects))
	for _, s := range subjects {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// PasswordEnv is the environment variable that holds user's password on
// the NATS nodes of the cluster example: MAILMON_NATS_<USER>_PASSWORD.
func PasswordEnv(user string) string {
	return "MAILMON_NATS_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
}

// WriteNATSConf writes the accounts block of a nats-server configuration
// with every user of a and its permissions, passwords read from the
// environment (PasswordEnv), and a system account for the servers. The
// cluster example includes it from each node's configuration.
func (a Access) WriteNATSConf(w io.Writer, top Topology) error {
	var b strings.Builder
	b.WriteString("# Generated from pipelines/access.yaml and pipelines/topology.yaml; do not edit.\n")
	b.WriteString("# TestClusterAccountsMatchTheAccessData fails when it drifts; rewrite it with\n")
	b.WriteString("#   go test ./pipelines -run TestClusterAccountsMatchTheAccessData -update\n")
	b.WriteString("# Each password comes from the NATS node's environment (MAILMON_NATS_<USER>_PASSWORD);\n")
	b.WriteString("# each mailmon process needs only its own (nats.users.<user>.password_file).\n")
	b.WriteString("accounts {\n")
	b.WriteString("  SYS: { users: [ { user: sys, password: $SYS_PASSWORD } ] }\n")
	b.WriteString("  MAILMON: {\n")
	b.WriteString("    jetstream: enabled\n")
	b.WriteString("    users: [\n")
	for _, g := range a.Grants(top) {
		fmt.Fprintf(&b, "      {\n        user: %q\n        password: $%s\n", g.User, PasswordEnv(g.User))
		b.WriteString("        permissions: {\n")
		writeRules(&b, "publish", g.Publish)
		writeRules(&b, "subscribe", g.Subscribe)
		b.WriteString("        }\n      }\n")
	}
	b.WriteString("    ]\n  }\n}\nsystem_account: SYS\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRules(b *strings.Builder, name string, r SubjectRules) {
	fmt.Fprintf(b, "          %s: {\n", name)
	for _, list := range []struct {
		key      string
		subjects []string
	}{{"allow", r.Allow}, {"deny", r.Deny}} {
		if len(list.subjects) == 0 {
			continue
		}
		fmt.Fprintf(b, "            %s: [\n", list.key)
		for _, s := range list.subjects {
			// Quoted, or the configuration parser reads $JS... as a variable.
			fmt.Fprintf(b, "              %q\n", s)
		}
		b.WriteString("            ]\n")
	}
	b.WriteString("          }\n")
}
