package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckConfigExampleIsValidAndRedacted(t *testing.T) {
	// The example's own fallbacks are public placeholders, refused outside
	// a lab: check it as an operator would, with the secrets it names set.
	for _, name := range []string{"MAILMON_NATS_PASSWORD", "MAILMON_NATS_COMPLAINT_EVALUATOR_PASSWORD",
		"MAILMON_TRACKING_KEY", "MAILMON_TRACKING_KEY_PREVIOUS", "MAILMON_ALERTMANAGER_PASSWORD", "MAILMON_PROBE_SMTP_PASSWORD",
		"MAILMON_FBL_IMAP_PASSWORD", "MAILMON_FBL_SMTP_PASSWORD"} {
		t.Setenv(name, "check-config-test-secret-0123456789abcdef")
	}
	code, out, errOut := runMain(t, "check-config", "-config", "../../../../deploy/config/mailmon.example.yaml")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"data_dir:", "nats:", "clickhouse:", "tracking:", "[REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("effective config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "check-config-test-secret") {
		t.Errorf("a secret was printed:\n%s", out)
	}
}

func TestCheckConfigNeverPrintsSecrets(t *testing.T) {
	const secret = "s3cret-tracking-key-material-0123456789"
	t.Setenv("MAILMON_TEST_TRACKING_KEY", secret)
	path := writeConfig(t, `
tracking:
  key:
    id: k1
    secret: ${env:MAILMON_TEST_TRACKING_KEY}
nats:
  url: nats://mailmon:url-secret-password@127.0.0.1:4222
  user: mailmon
  password: also-secret-password
`)
	code, out, errOut := runMain(t, "check-config", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "nats://[REDACTED]@127.0.0.1:4222") {
		t.Errorf("nats.url not printed with its credentials redacted:\n%s", out)
	}
	if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, "also-secret-password") || strings.Contains(out+errOut, "url-secret-password") {
		t.Fatalf("a secret was printed:\n%s%s", out, errOut)
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	path := writeConfig(t, `
log:
  colour: blue
nats:
  connect_timeout: soon
tracking:
  key:
    id: k1
`)
	code, out, errOut := runMain(t, "check-config", "-config", path)
	if code == 0 {
		t.Fatalf("exit 0 for a broken config; stdout:\n%s", out)
	}
	for _, want := range []string{"log.colour", "nats.connect_timeout", "tracking.key.secret"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problems do not name %q:\n%s", want, errOut)
		}
	}
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, _, errOut := runMain(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	code, out, _ := runMain(t, "help")
	if code != 0 || !strings.Contains(out, "check-config") || !strings.Contains(out, "run") {
		t.Errorf("help: exit %d, out %q", code, out)
	}
	if code, out, _ := runMain(t, "version"); code != 0 || !strings.HasPrefix(out, "mailmon ") {
		t.Errorf("version: exit %d, out %q", code, out)
	}
	if code, _, errOut := runMain(t, "run", "-config", writeConfig(t, "{}"), "-workers", "no-such-worker"); code != exitUsage || !strings.Contains(errOut, "no-such-worker") {
		t.Errorf("unknown worker: exit %d, stderr %q", code, errOut)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mailmon.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
