package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/services/internal/config"
)

// NATSUser is how one user of pipelines/access.yaml (a worker, the admin,
// enforcement-cli, subscriber) connects to an external NATS server:
// nats.users.<name>. Exactly one of password, password_file and creds_file.
// The embedded server ignores these: it generates its own passwords.
type NATSUser struct {
	// User is the NATS user name; empty means the key.
	User string `yaml:"user"`
	// Password is the user's password, from the environment.
	Password config.Secret `yaml:"password"`
	// PasswordFile holds the password (a trailing newline is ignored), so a
	// process that runs one worker holds only that worker's secret.
	PasswordFile string `yaml:"password_file"`
	// CredsFile is a NATS credentials file (JWT and nkey seed).
	CredsFile string `yaml:"creds_file"`
}

// validateNATSUsers checks nats.users: known users, one secret each, and
// only with an external server.
func validateNATSUsers(c NATSConfig) error {
	var check config.Check
	if len(c.Users) == 0 {
		return nil
	}
	access, err := pipelines.DefaultAccess()
	if err != nil {
		check.Addf("", "%v", err)
		return check.Err()
	}
	for _, name := range slices.Sorted(maps.Keys(c.Users)) {
		u := c.Users[name]
		if _, ok := access.User(name); !ok {
			check.Addf(name, "unknown user; the users are %s", strings.Join(access.Names(), ", "))
		}
		set := 0
		for _, v := range []string{string(u.Password), u.PasswordFile, u.CredsFile} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			check.Addf(name, "set exactly one of password, password_file and creds_file")
		}
		if u.CredsFile != "" && u.User != "" {
			check.Addf(name+".user", "a creds_file names its user itself")
		}
	}
	if c.URL == "" {
		check.Addf("", "only for an external server (nats.url): the embedded server generates its passwords under data_dir")
	}
	return check.Err()
}

// natsAuth returns the option that authenticates user to the external
// server: its own entry in nats.users, else the shared user, token or creds
// file, else none when nats.users is empty (a server without
// authentication). ok is false when nats.users lists users but neither
// this one nor a shared credential.
func (c NATSConfig) natsAuth(user string) (opt nats.Option, ok bool, err error) {
	if u, found := c.Users[user]; found {
		switch {
		case u.CredsFile != "":
			return nats.UserCredentials(u.CredsFile), true, nil
		case u.PasswordFile != "":
			raw, err := os.ReadFile(u.PasswordFile)
			if err != nil {
				return nil, false, fmt.Errorf("nats.users.%s.password_file: %w", user, err)
			}
			pw := strings.TrimRight(string(raw), "\r\n")
			if pw == "" {
				return nil, false, fmt.Errorf("nats.users.%s.password_file %s is empty", user, u.PasswordFile)
			}
			return nats.UserInfo(cmpOr(u.User, user), pw), true, nil
		default:
			return nats.UserInfo(cmpOr(u.User, user), u.Password.Reveal()), true, nil
		}
	}
	switch {
	case c.CredsFile != "":
		return nats.UserCredentials(c.CredsFile), true, nil
	case c.Token != "":
		return nats.Token(c.Token.Reveal()), true, nil
	case c.User != "":
		return nats.UserInfo(c.User, c.Password.Reveal()), true, nil
	case len(c.Users) == 0:
		return nil, true, nil
	}
	return nil, false, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// EmbeddedCredentialsDir is where the embedded server's generated
// passwords live, one file per user named after it (mode 0600, directory
// 0700). Other processes on the machine read theirs from here: the
// operator commands, and a subscriber given the subscriber file.
func (c Config) EmbeddedCredentialsDir() string {
	return filepath.Join(c.DataDir, "nats", "credentials")
}

// passwordBytes of randomness: 256 bits, written as 43 base64url characters.
const passwordBytes = 32

// embeddedPasswords returns a password for each user, reading the ones
// generated on an earlier start and generating the missing ones.
func embeddedPasswords(dir string, users []string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	// MkdirAll leaves an existing directory's mode as it was.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	out := make(map[string]string, len(users))
	for _, user := range users {
		pw, err := readEmbeddedPassword(dir, user)
		if errors.Is(err, fs.ErrNotExist) {
			pw, err = writeEmbeddedPassword(dir, user)
		}
		if err != nil {
			return nil, err
		}
		out[user] = pw
	}
	return out, nil
}

// readEmbeddedPassword reads user's generated password. It refuses a file
// others may read: the password may have leaked, and deleting the file
// makes the next start generate a new one.
func readEmbeddedPassword(dir, user string) (string, error) {
	path := filepath.Join(dir, user)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("nats credentials: %s has mode %#o, readable by others; delete it (a new password is generated at the next start) or chmod 600 it", path, st.Mode().Perm())
	}
	raw := make([]byte, 256)
	n, err := f.Read(raw)
	if err != nil && n == 0 {
		return "", fmt.Errorf("nats credentials: %s is empty; delete it to generate a new password", path)
	}
	pw := strings.TrimRight(string(raw[:n]), "\r\n")
	if len(pw) < 32 {
		return "", fmt.Errorf("nats credentials: %s holds a password of %d characters, want at least 32; delete it to generate a new one", path, len(pw))
	}
	return pw, nil
}

// writeEmbeddedPassword generates user's password and stores it whole or
// not at all (written to a temporary file, synced, renamed).
func writeEmbeddedPassword(dir, user string) (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	tmp, err := os.CreateTemp(dir, "."+user+".*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(pw + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, user))
	}
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	return pw, nil
}

// embeddedUsers are the server-side users: every user of the access data
// with its generated password and its permissions.
func embeddedUsers(access pipelines.Access, top pipelines.Topology, passwords map[string]string) []*server.User {
	var out []*server.User
	for _, g := range access.Grants(top) {
		out = append(out, &server.User{
			Username: g.User,
			Password: passwords[g.User],
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: g.Publish.Allow, Deny: g.Publish.Deny},
				Subscribe: &server.SubjectPermission{Allow: g.Subscribe.Allow, Deny: g.Subscribe.Deny},
			},
		})
	}
	return out
}

// DialNATS connects as user to the NATS of a running mailmon: nats.url with
// the user's configured credentials, or the embedded server's listen address
// with the password it generated under data_dir. Operator commands use it,
// each as its own user.
func DialNATS(cfg Config, user string) (*nats.Conn, error) {
	access, err := pipelines.DefaultAccess()
	if err != nil {
		return nil, err
	}
	if _, ok := access.User(user); !ok {
		return nil, fmt.Errorf("nats: no user %q in pipelines/access.yaml", user)
	}
	c := cfg.NATS
	url := c.URL
	opts := []nats.Option{
		nats.Name("mailmon-cli " + user),
		nats.Timeout(c.ConnectTimeout.Std()),
		nats.CustomInboxPrefix(pipelines.InboxPrefix(user)),
	}
	if url == "" {
		if c.Embedded.Listen == "" {
			return nil, errors.New("nats.url is empty and nats.embedded.listen is off: no way to reach the running mailmon's NATS")
		}
		url = "nats://" + c.Embedded.Listen
		pw, err := readEmbeddedPassword(cfg.EmbeddedCredentialsDir(), user)
		if err != nil {
			return nil, fmt.Errorf("%w (has mailmon run started with this data_dir?)", err)
		}
		opts = append(opts, nats.UserInfo(user, pw))
	} else {
		auth, ok, err := c.natsAuth(user)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("nats: user %s: %w: set nats.users.%s or a shared nats.user", user, errNoCredentials, user)
		}
		if auth != nil {
			opts = append(opts, auth)
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s as %s: %w", redactURL(url), user, err)
	}
	return nc, nil
}
