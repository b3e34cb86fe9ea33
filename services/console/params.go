package console

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"
)

// Ranges are the named time ranges of the range parameter.
var Ranges = []struct {
	Name string
	Span time.Duration
}{
	{"1h", time.Hour},
	{"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
}

// DefaultRange is the range of a page without range, from or to.
const DefaultRange = "24h"

// rollupStep is the rollups' finest bucket: a range starts on one.
const rollupStep = 5 * time.Minute

// Params are a page's query parameters: the time range and the filters,
// all in the URL so a link shows the same page.
type Params struct {
	// Range is the named range ("1h", "24h", "7d", "30d"), or "" when
	// the URL gives from and to.
	Range string `json:"range,omitempty"`
	// From and To bound every query. From is rounded down to 5 minutes,
	// the rollups' bucket.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Filters; empty is every value.
	Provider string `json:"provider,omitempty"`
	SourceIP string `json:"source_ip,omitempty"`
	Customer string `json:"customer,omitempty"`
	// Domain is the DMARC page's filter on our domain (the reports'
	// policy domain), lower-cased.
	Domain string `json:"domain,omitempty"`
	// By is the overview's rows: "ip" (default) or "customer".
	By string `json:"by,omitempty"`
	// Q is what the trace page looks for.
	Q string `json:"q,omitempty"`
	// Period is the report page's period: "daily" (default) or "weekly".
	Period string `json:"period,omitempty"`
}

// maxParam bounds a filter's length: names and addresses are short.
const maxParam = 256

// parseParams reads the URL's parameters at now. An unknown range, a
// from/to that does not parse, is reversed or longer than maxRange is an
// error for a 400 answer.
func parseParams(q url.Values, now time.Time, maxRange time.Duration) (Params, error) {
	p := Params{
		Provider: strings.TrimSpace(q.Get("provider")),
		SourceIP: strings.TrimSpace(q.Get("source_ip")),
		Customer: strings.TrimSpace(q.Get("customer")),
		Domain:   strings.ToLower(strings.TrimSpace(q.Get("domain"))),
		By:       q.Get("by"),
		Q:        strings.TrimSpace(q.Get("q")),
		Period:   q.Get("period"),
	}
	switch p.Period {
	case "":
		p.Period = "daily"
	case "daily", "weekly":
	default:
		return Params{}, fmt.Errorf("period: %q is not daily or weekly", p.Period)
	}
	for name, v := range map[string]string{"provider": p.Provider, "source_ip": p.SourceIP, "customer": p.Customer, "domain": p.Domain, "q": p.Q} {
		if len(v) > maxParam {
			return Params{}, fmt.Errorf("%s: longer than %d bytes", name, maxParam)
		}
	}
	switch p.By {
	case "", "ip":
		p.By = "ip"
	case "customer":
	default:
		return Params{}, fmt.Errorf("by: %q is not ip or customer", p.By)
	}
	now = now.UTC().Truncate(time.Second)
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" {
		name := q.Get("range")
		if name == "" {
			name = DefaultRange
		}
		var span time.Duration
		for _, r := range Ranges {
			if r.Name == name {
				span = r.Span
			}
		}
		if span == 0 {
			return Params{}, fmt.Errorf("range: %q is not 1h, 24h, 7d or 30d", name)
		}
		if span > maxRange {
			return Params{}, fmt.Errorf("range: %s is longer than console.max_range", name)
		}
		p.Range, p.From, p.To = name, now.Add(-span).Truncate(rollupStep), now
		return p, nil
	}
	if from == "" {
		return Params{}, fmt.Errorf("from: required with to")
	}
	f, err := time.Parse(time.RFC3339, from)
	if err != nil {
		return Params{}, fmt.Errorf("from: %q is not an RFC 3339 time", from)
	}
	t := now
	if to != "" {
		if t, err = time.Parse(time.RFC3339, to); err != nil {
			return Params{}, fmt.Errorf("to: %q is not an RFC 3339 time", to)
		}
	}
	f, t = f.UTC().Truncate(rollupStep), t.UTC()
	if !f.Before(t) {
		return Params{}, fmt.Errorf("from: must be before to")
	}
	if t.Sub(f) > maxRange {
		return Params{}, fmt.Errorf("from: the range is longer than console.max_range (%s)", maxRange)
	}
	p.From, p.To = f, t
	return p, nil
}

// Query is the URL query of p with key set to value (value "" removes
// it): the links between pages and ranges keep the other parameters. It
// is already URL-encoded, so html/template must not escape it again
// (which would make the whole query one opaque parameter).
func (p Params) Query(key, value string) template.URL {
	v := url.Values{}
	if p.Range != "" {
		v.Set("range", p.Range)
	} else {
		v.Set("from", p.From.Format(time.RFC3339))
		v.Set("to", p.To.Format(time.RFC3339))
	}
	for k, s := range map[string]string{"provider": p.Provider, "source_ip": p.SourceIP, "customer": p.Customer, "domain": p.Domain} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if p.Period == "weekly" {
		v.Set("period", p.Period)
	}
	if key == "range" {
		v.Del("from")
		v.Del("to")
	}
	if value == "" {
		v.Del(key)
	} else {
		v.Set(key, value)
	}
	return template.URL(v.Encode())
}

// step is the width of a chart's points for the range: about 12 to 48
// points whatever the span.
func (p Params) step() time.Duration {
	switch span := p.To.Sub(p.From); {
	case span <= 2*time.Hour:
		return 5 * time.Minute
	case span <= 48*time.Hour:
		return time.Hour
	case span <= 8*24*time.Hour:
		return 6 * time.Hour
	}
	return 24 * time.Hour
}

// stepName writes a step as the range names do: "5m", "1h", "6h", "1d".
func stepName(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// filter builds a WHERE clause from fixed conditions with bound values:
// the values of the URL are never spliced into SQL.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) add(cond string, args ...any) *filter {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
	return f
}

// addIf adds "column = ?" when value is set. column is one of the
// callers' constants.
func (f *filter) addIf(column, value string) *filter {
	if value != "" {
		f.add(column+" = ?", value)
	}
	return f
}

func (f *filter) where() string { return " WHERE " + strings.Join(f.conds, " AND ") }

// prewhere is where as a PREWHERE: the conditions are checked on their own
// columns before the others (a quantile state is large) are read.
func (f *filter) prewhere() string { return " PREWHERE " + strings.Join(f.conds, " AND ") }

// rollupTiers are the bucket sizes each rollup read through fromRollup is
// kept in (<name>_5m, _1h, _1d), coarsest first.
var rollupTiers = map[string][]time.Duration{
	"delivery_status": {time.Hour, 5 * time.Minute},
	"probe_sent":      {24 * time.Hour, time.Hour, 5 * time.Minute},
	"probe_received":  {24 * time.Hour, time.Hour, 5 * time.Minute},
	"probe_missing":   {24 * time.Hour, time.Hour, 5 * time.Minute},
}

var tierSuffix = map[time.Duration]string{24 * time.Hour: "_1d", time.Hour: "_1h", 5 * time.Minute: "_5m"}

// fromRollup is a FROM clause for f (a rollupRange filter) over one of
// rollupTiers: the whole days of the range are read from <name>_1d, the
// whole hours left at either end from <name>_1h, and the minutes left from
// <name>_5m, so a 30-day page merges a few rows per day. A coarser table is
// used only when the page's chart step is a multiple of its bucket. The
// tables have the same columns, so their union is read as any of them. Its
// arguments replace f's.
func fromRollup(name string, p Params, f *filter) (string, []any) {
	var tiers []time.Duration
	for _, d := range rollupTiers[name] {
		if d == 5*time.Minute || p.step()%d == 0 {
			tiers = append(tiers, d)
		}
	}
	type span struct {
		table    string
		from, to time.Time
	}
	var spans []span
	var split func(from, to time.Time, tiers []time.Duration)
	split = func(from, to time.Time, tiers []time.Duration) {
		if !from.Before(to) {
			return
		}
		d := tiers[0]
		if len(tiers) == 1 {
			spans = append(spans, span{name + tierSuffix[d], from, to})
			return
		}
		first, last := from.Truncate(d), to.Truncate(d)
		if first.Before(from) {
			first = first.Add(d)
		}
		if !first.Before(last) {
			split(from, to, tiers[1:])
			return
		}
		spans = append(spans, span{name + tierSuffix[d], first, last})
		split(from, first, tiers[1:])
		split(last, to, tiers[1:])
	}
	// The range's last 5-minute bucket starts at or before p.To.
	split(p.From, p.To.Truncate(5*time.Minute).Add(5*time.Minute), tiers)
	if len(spans) == 0 {
		return " FROM " + name + "_5m" + f.where(), f.args
	}

	others := strings.Join(f.conds[1:], " AND ")
	if others != "" {
		others = " AND " + others
	}
	var selects []string
	var args []any
	for _, s := range spans {
		selects = append(selects, "SELECT * FROM "+s.table+" WHERE bucket >= ? AND bucket < ?"+others)
		args = append(append(args, s.from, s.to), f.args[2:]...)
	}
	if len(selects) == 1 {
		return " FROM" + strings.TrimPrefix(selects[0], "SELECT * FROM"), args
	}
	return " FROM (" + strings.Join(selects, " UNION ALL ") + ")", args
}

// rollupRange starts a filter on a rollup's bucket column for p's range and
// the filters the rollup has columns for.
func rollupRange(p Params, columns ...string) *filter {
	f := &filter{}
	f.add("bucket >= ? AND bucket <= ?", p.From, p.To)
	for _, c := range columns {
		switch c {
		case "provider":
			f.addIf(c, p.Provider)
		case "source_ip":
			f.addIf(c, p.SourceIP)
		case "customer":
			f.addIf(c, p.Customer)
		}
	}
	return f
}
