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
	code, out, errOut := runMain(t, "check-config", "-config", "../../../deploy/config/mailmon.example.yaml")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"data_dir:", "nats:", "clickhouse:", "tracking:", "[REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("effective config lacks %q:\n%s", want, out)
		}
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
  user: mailmon
  password: also-secret-password
`)
	code, out, errOut := runMain(t, "check-config", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, "also-secret-password") {
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
