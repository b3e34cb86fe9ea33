package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/config"
)

// exampleSecretEnv are the variables the example config reads its secrets
// from, as its header lists them.
var exampleSecretEnv = []string{
	"MAILMON_NATS_PASSWORD", "MAILMON_NATS_COMPLAINT_EVALUATOR_PASSWORD",
	"MAILMON_TRACKING_KEY", "MAILMON_TRACKING_KEY_PREVIOUS",
	"MAILMON_ALERTMANAGER_PASSWORD", "MAILMON_PROBE_SMTP_PASSWORD",
	"MAILMON_FBL_IMAP_PASSWORD", "MAILMON_FBL_SMTP_PASSWORD",
}

// setExampleSecrets gives every secret of the example config a real-looking
// value through the environment, as an operator checking it would.
func setExampleSecrets(t *testing.T) {
	t.Helper()
	for _, name := range exampleSecretEnv {
		t.Setenv(name, "test-secret-for-"+strings.ToLower(name)+"-0123456789abcdef")
	}
}

// Without the environment the example falls back to its public
// placeholders, and every key holding one is refused by name.
func TestExampleConfigRefusesItsPlaceholders(t *testing.T) {
	for _, name := range exampleSecretEnv {
		t.Setenv(name, "") // empty: the fallback applies
	}
	_, err := Load(exampleConfig)
	if err == nil {
		t.Fatal("the example config loads with its example-only placeholders as secrets")
	}
	for _, key := range []string{
		"nats.password", "nats.users.complaint-evaluator.password", "tracking.key.secret", "tracking.previous_keys[0].secret",
		"notifier.routes[1].password", "probe_sender.sources[0].password",
		"fbl_ingester.imap.accounts[0].password", "fbl_ingester.trust.smtp_users[0].password",
	} {
		if !strings.Contains(err.Error(), key+": holds a public placeholder") {
			t.Errorf("the refusal does not name %s:\n%v", key, err)
		}
	}
	// Nothing else is wrong with the file.
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line != "" && !strings.Contains(line, "placeholder") {
			t.Errorf("unexpected problem: %s", line)
		}
	}
}

// The lab config (go tool task run) says lab: true and may keep its
// placeholder key; the same key without lab: true is refused.
func TestOnlyALabConfigMayUsePlaceholders(t *testing.T) {
	const local = "../../../../deploy/config/mailmon.local.yaml"
	if _, err := Load(local); err != nil {
		t.Fatalf("the lab config does not load: %v", err)
	}
	raw, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	notLab := strings.Replace(string(raw), "lab: true", "lab: false", 1)
	if notLab == string(raw) {
		t.Fatal("the lab config no longer says lab: true")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(notLab), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "tracking.key.secret: holds a public placeholder") {
		t.Fatalf("the lab's key outside a lab: got %v, want tracking.key.secret refused", err)
	}
	// The demo key older lab configs shipped is refused too.
	old := strings.Replace(notLab, "example-only-demo-key-for-local-runs-0123456789", "demo-key-for-local-runs-only-0123456789", 1)
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "tracking.key.secret") {
		t.Fatalf("the old demo key outside a lab: got %v, want it refused", err)
	}
}

// What check-config prints (Load, then config.Print) holds no credential
// written inside a URL: not in nats.url, not in a webhook's url.
func TestPrintedConfigRedactsCredentialsInURLs(t *testing.T) {
	setExampleSecrets(t)
	t.Setenv("MAILMON_ABUSE_WEBHOOK_URL", "https://hook-user:hook-pa55word@hooks.example.net/mailmon?token=hook-t0ken&team=abuse")
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	const natsURL = "url: nats://nats-1.example.net:4222,nats://nats-2.example.net:4222,nats://nats-3.example.net:4222"
	withCreds := strings.Replace(string(raw), natsURL,
		"url: nats://mailmon:nats-pa55word@nats-1.example.net:4222,nats://s3cret-nats-t0ken@nats-2.example.net:4222", 1)
	if withCreds == string(raw) {
		t.Fatal("the example's nats.url changed; update the test")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(withCreds), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := config.Print(&out, cfg); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"nats-pa55word", "s3cret-nats-t0ken", "hook-pa55word", "hook-t0ken", "test-secret-for-"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("check-config output shows %q", secret)
		}
	}
	// nats.url is a plain string: only its user info goes. A route's url
	// is a Secret as a whole (a webhook URL can be its own credential).
	for _, kept := range []string{"url: nats://[REDACTED]@nats-1.example.net:4222,nats://[REDACTED]@nats-2.example.net:4222",
		"url: '[REDACTED]'"} {
		if !strings.Contains(out.String(), kept) {
			t.Errorf("check-config output lacks %q:\n%s", kept, out.String())
		}
	}
}
