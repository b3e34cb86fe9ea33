package console

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseParams(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 47, 31, 0, time.UTC)
	maxRange := 31 * 24 * time.Hour
	for _, tc := range []struct {
		query    string
		from, to time.Time
		rng, by  string
		err      bool
	}{
		{query: "", rng: "24h", by: "ip", from: time.Date(2026, 12, 6, 18, 45, 0, 0, time.UTC), to: now},
		{query: "range=1h&by=customer", rng: "1h", by: "customer", from: time.Date(2026, 12, 7, 17, 45, 0, 0, time.UTC), to: now},
		{query: "range=30d", rng: "30d", by: "ip", from: time.Date(2026, 11, 7, 18, 45, 0, 0, time.UTC), to: now},
		{query: "from=2026-12-01T10:03:00Z&to=2026-12-02T00:00:00Z", by: "ip", from: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), to: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)},
		{query: "from=2026-12-07T12:00:00%2B02:00", by: "ip", from: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), to: now},
		{query: "range=90d", err: true},
		{query: "to=2026-12-01T00:00:00Z", err: true},
		{query: "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", err: true},
		{query: "from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z", err: true},
		{query: "from=monday", err: true},
		{query: "by=zone", err: true},
		{query: "period=monthly", err: true},
	} {
		q, _ := url.ParseQuery(tc.query)
		p, err := parseParams(q, now, maxRange)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error, got %+v", tc.query, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if !p.From.Equal(tc.from) || !p.To.Equal(tc.to) || p.Range != tc.rng || p.By != tc.by {
			t.Errorf("%q: from %s to %s range %q by %q, want %s %s %q %q", tc.query, p.From, p.To, p.Range, p.By, tc.from, tc.to, tc.rng, tc.by)
		}
	}
}

func TestQueryKeepsTheFilters(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	q, _ := url.ParseQuery("range=7d&provider=gmail&customer=acme&by=customer")
	p, err := parseParams(q, now, 31*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(p.Query("range", "1h")), "customer=acme&provider=gmail&range=1h"; got != want {
		t.Errorf("Query(range, 1h) = %q, want %q", got, want)
	}
	if got, want := string(p.Query("provider", "")), "customer=acme&range=7d"; got != want {
		t.Errorf("Query(provider, \"\") = %q, want %q", got, want)
	}
	q, _ = url.ParseQuery("from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z")
	p, _ = parseParams(q, now, 31*24*time.Hour)
	if got, want := string(p.Query("by", "customer")), "by=customer&from=2026-12-01T00%3A00%3A00Z&to=2026-12-02T00%3A00%3A00Z"; got != want {
		t.Errorf("Query(by, customer) = %q, want %q", got, want)
	}
}

// FuzzParseParams: any query string either fails or gives a range that
// starts before it ends, no longer than the limit, on a rollup bucket.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"", "range=1h", "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", "by=customer&provider=x", "from=2026-12-01T00:00:00-23:59", "range=30d&q=%00"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 18, 47, 31, 0, time.UTC)
	maxRange := 31 * 24 * time.Hour
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseParams(q, now, maxRange)
		if err != nil {
			return
		}
		if !p.From.Before(p.To) || p.To.Sub(p.From) > maxRange+rollupStep || !p.From.Equal(p.From.Truncate(rollupStep)) {
			t.Errorf("%q: from %s to %s", raw, p.From, p.To)
		}
		if p.By != "ip" && p.By != "customer" {
			t.Errorf("%q: by %q", raw, p.By)
		}
		_ = p.Query("range", "1h")
	})
}

func TestStepName(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", time.Hour: "1h", 6 * time.Hour: "6h", 24 * time.Hour: "1d"} {
		if got := stepName(d); got != want {
			t.Errorf("stepName(%s) = %q, want %q", d, got, want)
		}
	}
}

// The DMARC page's domain filter is lower-cased, bounded and kept in the
// links; the page reads every UTC day its range touches.
func TestDMARCParams(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 20, 5, 0, time.UTC)
	q, _ := url.ParseQuery("range=1h&domain=%20Acme.Example%20")
	p, err := parseParams(q, now, 31*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p.Domain != "acme.example" {
		t.Errorf("domain %q, want acme.example", p.Domain)
	}
	if got, want := string(p.Query("range", "7d")), "domain=acme.example&range=7d"; got != want {
		t.Errorf("Query(range, 7d) = %q, want %q", got, want)
	}
	// 23:20 yesterday to 00:20 today: both days.
	f, first, last := dmarcDays(p)
	if want := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC); !first.Equal(want) || !last.Equal(want.AddDate(0, 0, 1)) {
		t.Errorf("days %s to %s, want 2026-12-06 to 2026-12-07", first, last)
	}
	if len(f.args) != 2 || f.args[0] != first || f.args[1] != last {
		t.Errorf("filter arguments %v", f.args)
	}
	q, _ = url.ParseQuery("domain=" + strings.Repeat("a", maxParam+1))
	if _, err := parseParams(q, now, 31*24*time.Hour); err == nil || !strings.Contains(err.Error(), "domain") {
		t.Errorf("a long domain: %v, want an error naming domain", err)
	}
}
