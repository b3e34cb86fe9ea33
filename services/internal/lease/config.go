package lease

import (
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is a worker's lease setting (its `leader_lease` section).
type Config struct {
	// TTL is how long a lease outlives its holder's last renewal: a copy
	// that dies is replaced within it, and the holder renews every TTL/3.
	// At least 1s; whole seconds (rounded up).
	TTL config.Duration `yaml:"ttl"`
}

// DefaultConfig is a 15 s lease.
func DefaultConfig() Config { return Config{TTL: config.Duration(DefaultTTL)} }

// Validate reports a TTL below MinTTL, with paths relative to the section.
func (c Config) Validate() error {
	var check config.Check
	if c.TTL < config.Duration(MinTTL) {
		check.Addf("ttl", "must be at least %s, got %s", MinTTL, c.TTL)
	}
	return check.Err()
}

// Options are the lease options of this setting.
func (c Config) Options() Options { return Options{TTL: time.Duration(c.TTL)} }
