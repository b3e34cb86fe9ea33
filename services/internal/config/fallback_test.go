package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvFallback(t *testing.T) {
	type section struct {
		Name  string `yaml:"name"`
		Token Secret `yaml:"token"`
	}
	t.Setenv("MAILMON_TEST_SET", "from-env")
	t.Setenv("MAILMON_TEST_EMPTY", "")
	tests := []struct {
		value, want, problem string
	}{
		{"${env:MAILMON_TEST_SET:-fallback}", "from-env", ""},
		{"${env:MAILMON_TEST_EMPTY:-fallback}", "fallback", ""},
		{"${env:MAILMON_TEST_UNSET_X:-fallback}", "fallback", ""},
		{"${env:MAILMON_TEST_UNSET_X:-}", "", ""},
		{"${env:MAILMON_TEST_UNSET_X}", "", "MAILMON_TEST_UNSET_X is not set"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte("name: \""+tt.value+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var got section
		err := Load(path, &got)
		if tt.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("%s: error %v, want %q", tt.value, err, tt.problem)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.value, got.Name, err, tt.want)
		}
	}
}
