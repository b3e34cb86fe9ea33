package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const day = 24 * time.Hour

// Duration is a time.Duration written the Go way in YAML ("30s", "1h30m",
// "250ms") plus a leading whole number of days ("7d", "1d12h"), since
// retention and enforcement periods are naturally given in days.
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String gives the form ParseDuration reads back: whole days as "7d",
// everything else as time.Duration prints it.
func (d Duration) String() string {
	std := time.Duration(d)
	if std > 0 && std%day == 0 {
		return strconv.FormatInt(int64(std/day), 10) + "d"
	}
	return std.String()
}

// ParseDuration reads "30s", "1h30m", "7d" or "1d12h". A bare number is an
// error (it has no unit), except "0".
func ParseDuration(text string) (Duration, error) {
	s := strings.TrimSpace(text)
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(day) {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 1h30m or 7d", text)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return Duration(time.Duration(days) * day), nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil || (days > 0 && rest < 0) {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 1h30m or 7d", text)
	}
	total := time.Duration(days) * day
	if rest > math.MaxInt64-total {
		return 0, fmt.Errorf("invalid duration %q: too long", text)
	}
	return Duration(total + rest), nil
}

func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as 30s, 1h30m or 7d, got a %s", kindName(node))
	}
	parsed, err := ParseDuration(node.Value)
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText lets a Duration be a flag (flag.TextVar) or a JSON string.
func (d *Duration) UnmarshalText(text []byte) error {
	parsed, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = parsed
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a number of bytes written with an optional unit: SI units
// (KB, MB, GB, TB: powers of 1000) or binary ones (KiB, MiB, GiB, TiB:
// powers of 1024), or a plain number of bytes. Units are case-insensitive
// and may follow a space: "512MiB", "10 MB", "1048576".
type ByteSize int64

var byteUnits = []struct {
	name string
	size int64
}{
	// Binary first, so String prefers the form people write for buffers.
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

// ParseByteSize reads "512MiB", "1GiB", "10MB" or "1048576".
func ParseByteSize(text string) (ByteSize, error) {
	s := strings.TrimSpace(text)
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes or e.g. 512MiB, 1GiB, 10MB", text)
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: too large", text)
	}
	unit := strings.TrimSpace(s[end:])
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/u.size {
				return 0, fmt.Errorf("invalid size %q: too large", text)
			}
			return ByteSize(n * u.size), nil
		}
	}
	return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", text, unit)
}

// String gives the largest unit that represents the size exactly, so it
// reads back to the same number: 536870912 is "512MiB", 10000000 "10MB".
func (b ByteSize) String() string {
	n := int64(b)
	if n <= 0 {
		return strconv.FormatInt(n, 10) + "B"
	}
	for _, u := range byteUnits {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Int64 returns the size in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

func (b *ByteSize) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as 512MiB or 10MB, got a %s", kindName(node))
	}
	parsed, err := ParseByteSize(node.Value)
	if err != nil {
		return err
	}
	*b = parsed
	return nil
}

func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalText lets a ByteSize be a flag (flag.TextVar) or a JSON string.
func (b *ByteSize) UnmarshalText(text []byte) error {
	parsed, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = parsed
	return nil
}

func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }
