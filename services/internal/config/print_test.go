package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestPrint(t *testing.T) {
	input, err := os.ReadFile(filepath.Join("testdata", "print_input.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaults()
	env := envOf(map[string]string{"MAILMON_NATS_PASSWORD": "pr1nt-me-n0t"})
	if err := decode(input, &cfg, env); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var out bytes.Buffer
	if err := Print(&out, &cfg); err != nil {
		t.Fatalf("Print: %v", err)
	}
	if strings.Contains(out.String(), "pr1nt-me-n0t") {
		t.Fatalf("Print shows the secret:\n%s", out.String())
	}

	golden.Check(t, filepath.Join("testdata", "print.golden.yaml"), out.Bytes(), *update)

	// What Print writes loads back to the same config, except the secret,
	// which is gone for good.
	again := defaults()
	if err := decode(out.Bytes(), &again, noEnv); err != nil {
		t.Fatalf("decode of Print output: %v", err)
	}
	if again.NATS.Password.Reveal() != redacted {
		t.Errorf("password after a round trip = %q, want %q", again.NATS.Password.Reveal(), redacted)
	}
	again.NATS.Password = cfg.NATS.Password
	if !equalConfig(again, cfg) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", again, cfg)
	}
}

func equalConfig(a, b testConfig) bool {
	var bufA, bufB bytes.Buffer
	_ = Print(&bufA, a)
	_ = Print(&bufB, b)
	return bufA.String() == bufB.String() && a.NATS.Password == b.NATS.Password
}
