package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"0", 0},
		{" 5m ", 5 * time.Minute},
		{"-30s", -30 * time.Second},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got.Std() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got.Std(), err, tt.want)
		}
	}
}

func TestParseDurationErrorsNameTheValue(t *testing.T) {
	for _, in := range []string{"", "30", "soon", "1x", "d", "7dd", "1d-5h", "-1d", "99999999999999d", "106751d23h47m16.854775808s", "1.5d"} {
		_, err := ParseDuration(in)
		if err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
			continue
		}
		if !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseDuration(%q) error %q does not name the value", in, err)
		}
	}
}

func TestDurationStringRoundTrips(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "30s"},
		{90 * time.Minute, "1h30m0s"},
		{48 * time.Hour, "2d"},
		{36 * time.Hour, "36h0m0s"},
		{0, "0s"},
		{-24 * time.Hour, "-24h0m0s"},
	}
	for _, tt := range tests {
		got := Duration(tt.d).String()
		if got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, got, tt.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back.Std() != tt.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tt.d)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 << 20},
		{"1GiB", 1 << 30},
		{"10MB", 10_000_000},
		{"10 mb", 10_000_000},
		{"1048576", 1 << 20},
		{"0", 0},
		{"64KiB", 64 << 10},
		{"2TB", 2e12},
		{"5B", 5},
		{"8EiB", -1}, // not a unit
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Int64() != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseByteSizeErrorsNameTheValue(t *testing.T) {
	for _, in := range []string{"", "MiB", "-5MB", "1.5GiB", "12 parsecs", "99999999999999999999", "9000000TiB"} {
		_, err := ParseByteSize(in)
		if err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", in)
			continue
		}
		if !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseByteSize(%q) error %q does not name the value", in, err)
		}
	}
}

func TestByteSizeStringRoundTrips(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{512 << 20, "512MiB"},
		{1 << 30, "1GiB"},
		{10_000_000, "10MB"},
		{1500, "1500B"},
		{3 << 40, "3TiB"},
		{0, "0B"},
	}
	for _, tt := range tests {
		got := ByteSize(tt.n).String()
		if got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", tt.n, got, tt.want)
		}
		back, err := ParseByteSize(got)
		if err != nil || back.Int64() != tt.n {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", got, back, err, tt.n)
		}
	}
}

func TestUnitsAsText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("2d")); err != nil || d.Std() != 48*time.Hour {
		t.Errorf("Duration.UnmarshalText(2d) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("never")); err == nil {
		t.Error("Duration.UnmarshalText(never) succeeded")
	}
	var b ByteSize
	if err := b.UnmarshalText([]byte("4KiB")); err != nil || b != 4096 {
		t.Errorf("ByteSize.UnmarshalText(4KiB) = %v, %v", b, err)
	}
	if err := b.UnmarshalText([]byte("lots")); err == nil {
		t.Error("ByteSize.UnmarshalText(lots) succeeded")
	}
}
