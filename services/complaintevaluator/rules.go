package complaintevaluator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rule names, as decisions and alerts carry them.
const (
	RuleComplaintRate  = "complaint_rate"
	RuleComplaintCount = "complaint_count"
	RuleBlocklist      = "blocklist"
	RuleRejectionBurst = "rejection_burst"
	RuleProbeMissing   = "probe_missing"
)

// Level is how far a figure is past its thresholds.
type Level int

const (
	LevelNone Level = iota
	LevelWarn
	LevelAct
)

func (l Level) String() string {
	switch l {
	case LevelWarn:
		return "warn"
	case LevelAct:
		return "act"
	}
	return "none"
}

// Finding is what a rule concluded about one subject: how far past its
// thresholds, and the figures behind it.
type Finding struct {
	Rule  string
	Level Level
	// Key tells findings of one rule apart within a subject (the provider
	// of a rejection burst, the zone of a listing); empty otherwise.
	Key       string
	Window    time.Duration
	Counts    Counts
	Rate      float64
	Threshold float64
	// Evidence are further figures, name then value.
	Evidence [][2]string
	// Text describes the figures for a human, e.g. "complaint rate 0.36 %
	// over 24h (limit 0.3 %, 14 complaints / 3870 delivered)".
	Text string
}

// judgeRate judges complaints over deliveries in one window. The rate
// counts only once MinDelivered deliveries are in the window.
func judgeRate(t Thresholds, window time.Duration, c Counts) Finding {
	f := Finding{Rule: RuleComplaintRate, Window: window, Counts: c}
	if c.Delivered == 0 || c.Delivered < t.MinDelivered || c.Complaints == 0 {
		return f
	}
	f.Rate = float64(c.Complaints) / float64(c.Delivered)
	switch {
	case t.ActRate > 0 && f.Rate >= t.ActRate:
		f.Level, f.Threshold = LevelAct, t.ActRate
	case t.WarnRate > 0 && f.Rate >= t.WarnRate:
		f.Level, f.Threshold = LevelWarn, t.WarnRate
	default:
		return f
	}
	f.Evidence = [][2]string{{"min_delivered", strconv.FormatUint(t.MinDelivered, 10)}}
	f.Text = fmt.Sprintf("complaint rate %s over %s (limit %s, %d complaints / %d delivered)",
		percent(f.Rate), formatDuration(window), percent(f.Threshold), c.Complaints, c.Delivered)
	return f
}

// judgeCount judges the absolute number of complaints in one window.
func judgeCount(t Thresholds, window time.Duration, c Counts) Finding {
	f := Finding{Rule: RuleComplaintCount, Window: window, Counts: c}
	switch {
	case t.ActCount > 0 && c.Complaints >= t.ActCount:
		f.Level, f.Threshold = LevelAct, float64(t.ActCount)
	case t.WarnCount > 0 && c.Complaints >= t.WarnCount:
		f.Level, f.Threshold = LevelWarn, float64(t.WarnCount)
	default:
		return f
	}
	if c.Delivered > 0 {
		f.Rate = float64(c.Complaints) / float64(c.Delivered)
	}
	f.Text = fmt.Sprintf("%d complaints over %s (limit %d, %d delivered)", c.Complaints, formatDuration(window), uint64(f.Threshold), c.Delivered)
	return f
}

// judgeComplaints judges every window of a subject, rate and count, and
// returns the strongest finding of each rule (the shortest window wins a
// tie, so evidence is as fresh as possible).
func judgeComplaints(t Thresholds, windows []*Window, now time.Time) (rate, count Finding) {
	rate.Rule, count.Rule = RuleComplaintRate, RuleComplaintCount
	for _, w := range windows {
		c := w.Sum(now)
		if r := judgeRate(t, w.Length, c); r.Level > rate.Level {
			rate = r
		}
		if n := judgeCount(t, w.Length, c); n.Level > count.Level {
			count = n
		}
	}
	return rate, count
}

// judgeRejections judges the rejections from one provider in the burst
// window.
func judgeRejections(r RejectionBurstRule, provider string, c Counts) Finding {
	f := Finding{Rule: RuleRejectionBurst, Key: provider, Window: r.Window.Std(), Counts: c}
	if c.Hits < r.MinRejections {
		return f
	}
	f.Level, f.Threshold = LevelAct, float64(r.MinRejections)
	f.Evidence = [][2]string{{"provider", provider}, {"rejections", strconv.FormatUint(c.Hits, 10)}, {"categories", strings.Join(r.Categories, ",")}}
	f.Text = fmt.Sprintf("%d reputation/blocklist rejections from %s over %s (limit %d)", c.Hits, provider, formatDuration(r.Window.Std()), r.MinRejections)
	return f
}

// judgeMissing judges the providers at which probes went missing in the
// window; perProvider holds the missing probes per provider.
func judgeMissing(r ProbeMissingRule, perProvider map[string]Counts) Finding {
	f := Finding{Rule: RuleProbeMissing, Window: r.Window.Std()}
	var providers []string
	for p, c := range perProvider {
		if c.Hits > 0 {
			providers = append(providers, p)
			f.Counts.Hits += c.Hits
		}
	}
	if len(providers) < r.MinProviders {
		return f
	}
	sort.Strings(providers)
	f.Level, f.Threshold = LevelAct, float64(r.MinProviders)
	f.Evidence = [][2]string{{"providers", strings.Join(providers, ",")}, {"missing_probes", strconv.FormatUint(f.Counts.Hits, 10)}}
	f.Text = fmt.Sprintf("probes missing at %d providers (%s) over %s (limit %d)", len(providers), strings.Join(providers, ", "), formatDuration(r.Window.Std()), r.MinProviders)
	return f
}

// percent formats a fraction as a percentage with up to 3 decimals.
func percent(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " %"
}

// formatDuration writes whole days as "7d" and whole hours as "24h".
func formatDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
