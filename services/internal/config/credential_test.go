package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A ${env:NAME} reference that the environment lacks is read from the
// systemd credential NAME; the environment wins when it has the name.
func TestLoadReadsSystemdCredentials(t *testing.T) {
	creds := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(creds, name), []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	write("MAILMON_TEST_CRED_PASSWORD", "s3cret-from-credential\n")
	write("MAILMON_TEST_CRED_URL", "nats://from-credential:4222")
	write("MAILMON_TEST_CRED_HUGE", strings.Repeat("x", maxCredentialSize+1))
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("MAILMON_TEST_CRED_URL", "nats://from-env:4222")

	load := func(file string) (testConfig, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "mailmon.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := defaults()
		return cfg, Load(path, &cfg)
	}

	cfg, err := load("nats:\n  password: ${env:MAILMON_TEST_CRED_PASSWORD}\n  url: ${env:MAILMON_TEST_CRED_URL}\n")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.NATS.Password.Reveal(); got != "s3cret-from-credential" {
		t.Errorf("password from the credential = %q, want it without its trailing newline", got)
	}
	if cfg.NATS.URL != "nats://from-env:4222" {
		t.Errorf("url = %q, want the environment's value over the credential's", cfg.NATS.URL)
	}

	for _, name := range []string{"MAILMON_TEST_CRED_ABSENT", "MAILMON_TEST_CRED_HUGE"} {
		_, err := load("nats:\n  password: ${env:" + name + "}\n")
		if err == nil || !strings.Contains(err.Error(), "environment variable "+name+" is not set") {
			t.Errorf("%s: Load error %v, want it reported as not set", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%s: the error shows the credential's content: %v", name, err)
		}
	}

	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := load("nats:\n  password: ${env:MAILMON_TEST_CRED_PASSWORD}\n"); err == nil {
		t.Error("without CREDENTIALS_DIRECTORY a name only the credentials hold loaded")
	}
}
