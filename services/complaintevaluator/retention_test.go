package complaintevaluator

import (
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// The default windows fit in the streams they are rebuilt from.
func TestDefaultWindowsFitTheStreamsRetention(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config refused: %v", err)
	}
}

// A rate window longer than the DELIVERY stream keeps is refused with the
// key, the stream and its max_age named: after a restart the window would
// hold every complaint (COMPLAINT keeps 30 d) over a week of deliveries.
func TestWindowLongerThanRetentionIsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Windows = append(cfg.Windows, config.Duration(30*24*time.Hour))
	err := cfg.Validate()
	if err == nil {
		t.Fatal("a 30d window was accepted; DELIVERY keeps 8 days")
	}
	msg := err.Error()
	for _, want := range []string{"windows[3]", "30d", "DELIVERY", "max_age 8d"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "windows[2]") {
		t.Errorf("error %q also refuses the 7d window, which fits", msg)
	}
}

// A window exactly as long as its stream keeps is refused too: the rebuild
// starts at now minus the window, where the server is expiring messages.
func TestWindowEqualToRetentionIsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Windows = []config.Duration{config.Duration(8 * 24 * time.Hour)}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "windows[0]") {
		t.Fatalf("an 8d window over an 8d stream: got %v, want windows[0] refused", err)
	}
	cfg.Windows = []config.Duration{config.Duration(8*24*time.Hour - retentionMargin)}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a window one margin shorter than the stream keeps was refused: %v", err)
	}
}

// Every key holding a window is checked against the streams it is
// rebuilt from.
func TestOtherWindowsAreCheckedAgainstTheirStreams(t *testing.T) {
	for _, tc := range []struct {
		key, stream string
		set         func(*Config)
	}{
		{"rejection_burst.window", "DELIVERY", func(c *Config) { c.RejectionBurst.Window = config.Duration(9 * 24 * time.Hour) }},
		{"probe_missing.window", "PROBE", func(c *Config) { c.ProbeMissing.Window = config.Duration(8 * 24 * time.Hour) }},
		{"decisions.memory", "DECISION", func(c *Config) { c.Decisions.Memory = config.Duration(120 * 24 * time.Hour) }},
		{"probe_late.window", "PROBE", func(c *Config) { c.ProbeLate.Window = config.Duration(7 * 24 * time.Hour) }},
		{"listed_but_delisted_still_rejected.within", "DELIVERY", func(c *Config) { c.StillRejected.Within = config.Duration(9 * 24 * time.Hour) }},
	} {
		cfg := DefaultConfig()
		tc.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.stream) {
			t.Errorf("%s: got %v, want it refused naming the %s stream", tc.key, err, tc.stream)
		}
	}
}
