package silence

import (
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func alert() *schemas.AlertRaised {
	return &schemas.AlertRaised{Rule: "probe_missing", Status: schemas.AlertFiring, Severity: schemas.AlertWarning,
		Subject: "ip:192.0.2.10", Customer: "", SourceIP: "192.0.2.10", Provider: "gmail", RecipientDomain: "gmail.com"}
}

func silenceOf(matchers ...string) Silence {
	s := Silence{ID: "s1", StartsAt: t0, EndsAt: t0.Add(2 * time.Hour), Comment: "relay maintenance", CreatedBy: "ops"}
	for _, m := range matchers {
		name, value, _ := strings.Cut(m, "=")
		s.Matchers = append(s.Matchers, Matcher{name, value})
	}
	return s
}

func TestSilenceMatches(t *testing.T) {
	tests := []struct {
		name     string
		matchers []string
		at       time.Time
		want     bool
	}{
		{"one exact label", []string{"rule=probe_missing"}, t0.Add(time.Minute), true},
		{"every label must match", []string{"rule=probe_missing", "provider=yahoo"}, t0.Add(time.Minute), false},
		{"all of them do", []string{"rule=probe_missing", "provider=gmail", "severity=warning", "subject=ip:192.0.2.10", "recipient_domain=gmail.com"}, t0.Add(time.Minute), true},
		{"exact means exact", []string{"provider=gmai"}, t0.Add(time.Minute), false},
		{"exact is case-sensitive", []string{"provider=Gmail"}, t0.Add(time.Minute), false},
		{"prefix wildcard", []string{"source_ip=192.0.2.*"}, t0.Add(time.Minute), true},
		{"prefix wildcard, other prefix", []string{"source_ip=198.51.100.*"}, t0.Add(time.Minute), false},
		{"rule prefix", []string{"rule=probe_*"}, t0.Add(time.Minute), true},
		{"star alone is any value", []string{"provider=*"}, t0.Add(time.Minute), true},
		{"star alone needs a value", []string{"customer=*"}, t0.Add(time.Minute), false},
		{"exact on a missing label", []string{"customer=acme"}, t0.Add(time.Minute), false},
		{"starts inclusive", []string{"rule=probe_missing"}, t0, true},
		{"before it starts", []string{"rule=probe_missing"}, t0.Add(-time.Second), false},
		{"ends exclusive", []string{"rule=probe_missing"}, t0.Add(2 * time.Hour), false},
		{"no matchers matches nothing", nil, t0.Add(time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := silenceOf(tt.matchers...).Matches(alert(), tt.at); got != tt.want {
				t.Errorf("%v at %s: %v, want %v", tt.matchers, tt.at.Sub(t0), got, tt.want)
			}
		})
	}
	if silenceOf("rule=probe_missing").Matches(nil, t0) {
		t.Error("a nil alert matched")
	}
}

func TestParseMatcher(t *testing.T) {
	m, err := ParseMatcher("provider=gmail")
	if err != nil || m != (Matcher{"provider", "gmail"}) {
		t.Fatalf("%+v %v", m, err)
	}
	for _, ok := range []string{"severity=critical", "severity=warning", "severity=info", "severity=*"} {
		if _, err := ParseMatcher(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if m, err := ParseMatcher("subject=customer:acme/provider:gmail"); err != nil || m.Value != "customer:acme/provider:gmail" {
		t.Errorf("a value with = and / : %+v %v", m, err)
	}
	for _, bad := range []string{"provider", "=gmail", "zone=x", "provider=", "provider=gm*il", "provider=**", "provider=g mail",
		"provider=gmail\n", "comment=x", "severity=crit", "provider=" + strings.Repeat("a", MaxValueBytes+1), "provider=gmäil"} {
		if _, err := ParseMatcher(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err = ParseMatcher("zone=spamhaus")
	if err == nil || !strings.Contains(err.Error(), "rule, subject, severity, customer, provider, source_ip, recipient_domain") {
		t.Errorf("unknown label error does not list the labels: %v", err)
	}
}

func TestSilenceValidate(t *testing.T) {
	ok := silenceOf("rule=probe_missing")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Silence)
		want   string
	}{
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "no matchers"},
		{"too many matchers", func(s *Silence) {
			for range MaxMatchers {
				s.Matchers = append(s.Matchers, Matcher{"provider", "x"})
			}
		}, "at most 16"},
		{"a label twice", func(s *Silence) { s.Matchers = append(s.Matchers, Matcher{"rule", "other"}) }, "rule matched twice"},
		{"bad matcher", func(s *Silence) { s.Matchers[0].Name = "zone" }, "unknown label"},
		{"no id", func(s *Silence) { s.ID = "" }, "id"},
		{"id not a key", func(s *Silence) { s.ID = "a.b" }, "id"},
		{"ends before it starts", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Second) }, "before starts_at"},
		{"too long", func(s *Silence) { s.EndsAt = s.StartsAt.Add(MaxDuration + time.Second) }, "at most 720h"},
		{"no times", func(s *Silence) { s.StartsAt = time.Time{} }, "required"},
		{"no comment", func(s *Silence) { s.Comment = "" }, "comment is required"},
		{"long comment", func(s *Silence) { s.Comment = strings.Repeat("x", MaxCommentBytes+1) }, "comment longer"},
		{"control characters", func(s *Silence) { s.Comment = "ok\x1b[2Jcleared" }, "control"},
		{"not UTF-8", func(s *Silence) { s.CreatedBy = "\xff" }, "UTF-8"},
		{"no author", func(s *Silence) { s.CreatedBy = "" }, "created_by is required"},
	}
	for _, tt := range tests {
		s := silenceOf("rule=probe_missing")
		tt.change(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestUnmarshalIsStrict(t *testing.T) {
	s := silenceOf("provider=gmail", "source_ip=192.0.2.*")
	got, err := Unmarshal(s.Marshal())
	if err != nil || got.ID != s.ID || len(got.Matchers) != 2 || !got.EndsAt.Equal(s.EndsAt) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for name, rec := range map[string]string{
		"unknown field":   `{"id":"s1","matchers":[{"name":"rule","value":"x"}],"starts_at":"2026-12-07T12:00:00Z","ends_at":"2026-12-07T13:00:00Z","comment":"c","created_by":"o","negate":true}`,
		"trailing data":   `{"id":"s1","matchers":[{"name":"rule","value":"x"}],"starts_at":"2026-12-07T12:00:00Z","ends_at":"2026-12-07T13:00:00Z","comment":"c","created_by":"o"} {}`,
		"invalid":         `{"id":"s1","matchers":[],"starts_at":"2026-12-07T12:00:00Z","ends_at":"2026-12-07T13:00:00Z","comment":"c","created_by":"o"}`,
		"not JSON":        `silence everything`,
		"oversized":       `{"comment":"` + strings.Repeat("x", MaxRecordBytes) + `"}`,
		"matchers object": `{"id":"s1","matchers":{"rule":"x"},"starts_at":"2026-12-07T12:00:00Z","ends_at":"2026-12-07T13:00:00Z","comment":"c","created_by":"o"}`,
	} {
		if _, err := Unmarshal([]byte(rec)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A stored record is outside input to the notifier: whatever the bytes,
// Unmarshal returns an error or a silence that validates, and matching it
// never panics.
func FuzzUnmarshal(f *testing.F) {
	f.Add(silenceOf("provider=gmail", "source_ip=192.0.2.*").Marshal())
	f.Add([]byte(`{"id":"x","matchers":[{"name":"rule","value":"*"}],"starts_at":"2026-12-07T12:00:00Z","ends_at":"2026-12-07T13:00:00Z","comment":"c","created_by":"o"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Unmarshal(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Unmarshal returned an invalid silence: %v", err)
		}
		s.Matches(alert(), s.StartsAt)
	})
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"provider=gmail", "source_ip=192.0.2.*", "rule=*", "x", "=", "customer=a*b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMatcher(s)
		if err != nil {
			return
		}
		if len(m.Value) == 0 || len(m.Value) > MaxValueBytes || strings.Contains(strings.TrimSuffix(m.Value, "*"), "*") {
			t.Fatalf("accepted %+v", m)
		}
		m.Matches(alert())
	})
}
