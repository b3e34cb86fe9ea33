package complaintevaluator

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
)

// Rule names of the alert rules on DMARC aggregate and SMTP TLS reports.
const (
	// RuleDMARCAlignment: one of our sending IPs failing DMARC at one
	// reporter above a share of its messages.
	RuleDMARCAlignment = "dmarc_alignment"
	// RuleDMARCUnknownSource: a source outside our sending networks sending
	// more than a number of messages a day as one of our domains.
	RuleDMARCUnknownSource = "dmarc_unknown_source"
	// RuleTLSRPTFailure: TLS sessions to one receiving domain failing above
	// a share.
	RuleTLSRPTFailure = "tlsrpt_failure"
)

// DMARCAlignmentRule alerts when one of our sending IPs (our_source) fails
// DMARC at one reporter: over the reports whose period ends within Window,
// the messages with a DMARC fail verdict are at least Share of all of them,
// and there are at least MinMessages.
type DMARCAlignmentRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window holds the reports whose period ends within it (reports cover
	// a day and arrive up to a day late: 48h sees each day whole).
	Window config.Duration `yaml:"window"`
	// Share is the fraction of failing messages that fires (0.05 is 5 %).
	Share float64 `yaml:"share"`
	// MinMessages is how many messages the window must hold before it is
	// judged.
	MinMessages uint64 `yaml:"min_messages"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// DMARCUnknownSourceRule alerts when a source IP that is not one of our
// sending networks sends more than MaxMessages in one day as one of our
// domains.
type DMARCUnknownSourceRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window holds the reports whose period ends within it; a day over the
	// limit fires while its reports are within the window.
	Window config.Duration `yaml:"window"`
	// MaxMessages is how many messages a day one source may send as one of
	// our domains; more fires.
	MaxMessages uint64 `yaml:"max_messages"`
	// Domains are our domains (a report about one of them or a subdomain
	// counts); empty takes every domain reported on as ours, since reports
	// come only to our own rua address.
	Domains []string `yaml:"domains"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// TLSRPTFailureRule alerts when the TLS sessions to one receiving domain
// (a TLS report's policy domain) fail above Share: over the reports whose
// period ends within Window, failed sessions over all sessions, once there
// are at least MinSessions.
type TLSRPTFailureRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window holds the reports whose period ends within it.
	Window config.Duration `yaml:"window"`
	// Share is the fraction of failed sessions that fires (0.05 is 5 %).
	Share float64 `yaml:"share"`
	// MinSessions is how many sessions the window must hold before it is
	// judged.
	MinSessions uint64 `yaml:"min_sessions"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

func defaultDMARCAlignment() DMARCAlignmentRule {
	return DMARCAlignmentRule{Enabled: true, Window: config.Duration(48 * time.Hour), Share: 0.05, MinMessages: 100, Severity: schemas.AlertWarning}
}

func defaultDMARCUnknownSource() DMARCUnknownSourceRule {
	return DMARCUnknownSourceRule{Enabled: true, Window: config.Duration(48 * time.Hour), MaxMessages: 1000, Severity: schemas.AlertWarning}
}

func defaultTLSRPTFailure() TLSRPTFailureRule {
	return TLSRPTFailureRule{Enabled: true, Window: config.Duration(48 * time.Hour), Share: 0.05, MinSessions: 100, Severity: schemas.AlertWarning}
}

// validateReportRules checks the rules on DMARC and TLS reports.
func (c Config) validateReportRules(check *config.Check) {
	share := func(path string, v float64) {
		if v <= 0 || v > 1 {
			check.Addf(path, "is a fraction (0.05 is 5 %%), above 0 and at most 1, got %g", v)
		}
	}
	if r := c.DMARCAlignment; r.Enabled {
		if r.Window <= 0 {
			check.Addf("dmarc_alignment.window", "must be positive")
		}
		share("dmarc_alignment.share", r.Share)
		if r.MinMessages < 1 {
			check.Addf("dmarc_alignment.min_messages", "must be at least 1")
		}
		checkSeverity(check, "dmarc_alignment.severity", r.Severity)
	}
	if r := c.DMARCUnknownSource; r.Enabled {
		if r.Window < 24*config.Duration(time.Hour) {
			check.Addf("dmarc_unknown_source.window", "must be at least 24h (the rule counts messages per day), got %s", r.Window)
		}
		if r.MaxMessages < 1 {
			check.Addf("dmarc_unknown_source.max_messages", "must be at least 1")
		}
		for i, d := range r.Domains {
			if d == "" || d != strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), ".")) || strings.ContainsAny(d, " @/") {
				check.Addf(fmt.Sprintf("dmarc_unknown_source.domains[%d]", i), "must be a lower-case domain name, got %q", d)
			}
		}
		checkSeverity(check, "dmarc_unknown_source.severity", r.Severity)
	}
	if r := c.TLSRPTFailure; r.Enabled {
		if r.Window <= 0 {
			check.Addf("tlsrpt_failure.window", "must be positive")
		}
		share("tlsrpt_failure.share", r.Share)
		if r.MinSessions < 1 {
			check.Addf("tlsrpt_failure.min_sessions", "must be at least 1")
		}
		checkSeverity(check, "tlsrpt_failure.severity", r.Severity)
	}
}

// Bounds on what reports, which anyone can mail to our rua address, make
// the engine keep: the records per condition and the conditions per rule.
// A record's count is capped too, so the totals of a condition cannot
// overflow, and so are the failure types a TLS report's policy quotes.
const (
	maxReportEntries = 10000
	maxReportKeys    = 100000
	maxReportCount   = 1 << 40
	maxReportKinds   = 16
)

// reportEntry is what one DMARC record or TLS report policy adds to a
// condition.
type reportEntry struct {
	// end is the end of the report's period (at most the time the event
	// was read): the entry counts while it is within the rule's window.
	end time.Time
	// day is the UTC day of the middle of the period (dmarc_unknown_source).
	day string
	// bad are the failing messages (DMARC fail) or sessions (TLS failure),
	// all every message or session.
	bad, all uint64
	// rejected and quarantined are messages the receiver rejected or
	// quarantined (DMARC dispositions).
	rejected, quarantined uint64
	reportID, reporter    string
	domain, headerFrom    string
	// kinds are the TLS failure result types.
	kinds []string
}

// reportAgg is the entries of one condition (one dedupe key) of a report
// rule, by event id: a report received twice (same ids) counts once.
type reportAgg struct {
	rule, subject, key string
	// sourceIP, reporter and domain are the parts of the key.
	sourceIP, reporter, domain string
	entries                    map[string]reportEntry
	// bad and all total the entries, and perDay totals all per day
	// (dmarc_unknown_source), so a record is judged in constant time;
	// minEnd is the earliest end among the entries: they are scanned only
	// when one leaves the window.
	bad, all uint64
	perDay   map[string]uint64
	minEnd   time.Time
}

func (g *reportAgg) add(id string, en reportEntry) {
	g.entries[id] = en
	g.bad += en.bad
	g.all += en.all
	if en.day != "" {
		if g.perDay == nil {
			g.perDay = map[string]uint64{}
		}
		g.perDay[en.day] += en.all
	}
	if g.minEnd.IsZero() || en.end.Before(g.minEnd) {
		g.minEnd = en.end
	}
}

// expire drops the entries whose period ended at or before from.
func (g *reportAgg) expire(from time.Time) {
	if g.minEnd.IsZero() || g.minEnd.After(from) {
		return
	}
	g.minEnd = time.Time{}
	for id, en := range g.entries {
		if !en.end.After(from) {
			delete(g.entries, id)
			g.bad -= en.bad
			g.all -= en.all
			if en.day != "" {
				if g.perDay[en.day] -= en.all; g.perDay[en.day] == 0 {
					delete(g.perDay, en.day)
				}
			}
			continue
		}
		if g.minEnd.IsZero() || en.end.Before(g.minEnd) {
			g.minEnd = en.end
		}
	}
}

// busiestDay is the day with the most messages (the latest of equals).
func (g *reportAgg) busiestDay() (string, uint64) {
	day := ""
	for d, n := range g.perDay {
		if day == "" || n > g.perDay[day] || (n == g.perDay[day] && d > day) {
			day = d
		}
	}
	return day, g.perDay[day]
}

func (e *Engine) reportWindow(rule string) time.Duration {
	switch rule {
	case RuleDMARCAlignment:
		return e.cfg.DMARCAlignment.Window.Std()
	case RuleDMARCUnknownSource:
		return e.cfg.DMARCUnknownSource.Window.Std()
	default:
		return e.cfg.TLSRPTFailure.Window.Std()
	}
}

// reportAggFor returns the aggregate under key, creating it; nil when the
// rule holds too many already.
func (e *Engine) reportAggFor(rule, subject, key string) *reportAgg {
	g := e.alerts.reports[key]
	if g == nil {
		if len(e.alerts.reports) >= maxReportKeys {
			e.stats.Ignored++
			return nil
		}
		g = &reportAgg{rule: rule, subject: subject, key: key, entries: map[string]reportEntry{}}
		e.alerts.reports[key] = g
	}
	return g
}

// reportEnd is when a report's period ended, as the window counts it (a
// period in the future ends now, so it cannot hold the window for ever);
// false when it ended before rule's window: a stale report changes
// nothing.
func (e *Engine) reportEnd(rule string, end, now time.Time) (time.Time, bool) {
	end = end.UTC()
	if end.After(now) {
		end = now.UTC()
	}
	if !end.After(now.Add(-e.reportWindow(rule))) {
		e.stats.Stale++
		return end, false
	}
	return end, true
}

// addReport records entry id in g and judges g.
func (e *Engine) addReport(g *reportAgg, id string, en reportEntry, now time.Time) []Output {
	if _, dup := g.entries[id]; dup {
		e.stats.Duplicates++
		return nil
	}
	if len(g.entries) >= maxReportEntries {
		e.stats.Ignored++ // far more records than any real sender has
		return nil
	}
	g.add(id, en)
	return e.judgeReport(g, now)
}

// dmarcRecord feeds dmarc_alignment (our sources) and
// dmarc_unknown_source (the others).
func (e *Engine) dmarcRecord(ev *schemas.DMARCRecord, now time.Time) []Output {
	if ev.SourceIP == "" || ev.Count == 0 {
		e.stats.Ignored++
		return nil
	}
	count := min(ev.Count, maxReportCount)
	en := reportEntry{end: ev.End, all: count, reportID: ev.ReportID, reporter: ev.OrgName, domain: ev.Domain, headerFrom: ev.HeaderFrom}
	if ev.DMARC == schemas.DMARCFail {
		en.bad = count
	}
	switch ev.Disposition {
	case "reject":
		en.rejected = count
	case "quarantine":
		en.quarantined = count
	}
	if ev.OurSource {
		r := e.cfg.DMARCAlignment
		subject := "ip:" + ev.SourceIP
		if !r.Enabled || ev.OrgName == "" || !e.ownsAlertSubject(subject) {
			return nil
		}
		var fresh bool
		if en.end, fresh = e.reportEnd(RuleDMARCAlignment, ev.End, now); !fresh {
			return nil
		}
		g := e.reportAggFor(RuleDMARCAlignment, subject, dedupeKey(RuleDMARCAlignment, subject, "reporter:"+ev.OrgName))
		if g == nil {
			return nil
		}
		g.sourceIP, g.reporter = ev.SourceIP, ev.OrgName
		return e.addReport(g, ev.ID, en, now)
	}
	r := e.cfg.DMARCUnknownSource
	domain := ev.Domain
	if domain == "" {
		domain = ev.HeaderFrom
	}
	if !r.Enabled || domain == "" || !(ourDomain(r.Domains, ev.Domain) || ourDomain(r.Domains, ev.HeaderFrom)) {
		return nil
	}
	subject := "domain:" + domain
	if !e.ownsAlertSubject(subject) {
		return nil
	}
	var fresh bool
	if en.end, fresh = e.reportEnd(RuleDMARCUnknownSource, ev.End, now); !fresh {
		return nil
	}
	g := e.reportAggFor(RuleDMARCUnknownSource, subject, dedupeKey(RuleDMARCUnknownSource, subject, "ip:"+ev.SourceIP))
	if g == nil {
		return nil
	}
	g.sourceIP, g.domain = ev.SourceIP, domain
	en.day = reportDay(ev.Begin, ev.End)
	return e.addReport(g, ev.ID, en, now)
}

// ourDomain says whether d is one of domains or under one; every domain
// is ours when none are configured.
func ourDomain(domains []string, d string) bool {
	if d == "" {
		return false
	}
	if len(domains) == 0 {
		return true
	}
	for _, x := range domains {
		if d == x || strings.HasSuffix(d, "."+x) {
			return true
		}
	}
	return false
}

// reportDay is the UTC day a report's period stands for: the day of its
// middle, so a period of 00:00 to 23:59:59 and one of 00:00 to 00:00 the
// next day are the same day.
func reportDay(begin, end time.Time) string {
	if begin.IsZero() || end.Before(begin) {
		return end.UTC().Format(time.DateOnly)
	}
	return begin.Add(end.Sub(begin) / 2).UTC().Format(time.DateOnly)
}

// tlsrptResult feeds tlsrpt_failure.
func (e *Engine) tlsrptResult(ev *schemas.TLSRPTResult, now time.Time) []Output {
	r := e.cfg.TLSRPTFailure
	if !r.Enabled || ev.PolicyDomain == "" || (ev.Success == 0 && ev.Failure == 0) {
		e.stats.Ignored++
		return nil
	}
	subject := "domain:" + ev.PolicyDomain
	if !e.ownsAlertSubject(subject) {
		return nil
	}
	end, fresh := e.reportEnd(RuleTLSRPTFailure, ev.End, now)
	if !fresh {
		return nil
	}
	g := e.reportAggFor(RuleTLSRPTFailure, subject, dedupeKey(RuleTLSRPTFailure, subject, ""))
	if g == nil {
		return nil
	}
	g.domain = ev.PolicyDomain
	failure := min(ev.Failure, maxReportCount)
	kinds := slices.Compact(slices.Sorted(slices.Values(ev.FailureResultTypes)))
	en := reportEntry{end: end, bad: failure, all: min(ev.Success, maxReportCount) + failure, reportID: ev.ReportID, reporter: ev.Organization,
		domain: ev.PolicyDomain, kinds: slices.Clone(kinds[:min(len(kinds), maxReportKinds)])}
	return e.addReport(g, ev.ID, en, now)
}

// judgeReports judges every report condition: entries leave the window
// as time passes, which may end a condition with no new report.
func (e *Engine) judgeReports(now time.Time) []Output {
	keys := make([]string, 0, len(e.alerts.reports))
	for k := range e.alerts.reports {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Output
	for _, k := range keys {
		out = append(out, e.judgeReport(e.alerts.reports[k], now)...)
	}
	e.alerts.reportsJudged = now
	return out
}

// reportsTick judges the report conditions at most once a minute.
func (e *Engine) reportsTick(now time.Time) []Output {
	if len(e.alerts.reports) == 0 || now.Sub(e.alerts.reportsJudged) < time.Minute {
		return nil
	}
	return e.judgeReports(now)
}

// judgeReport drops g's entries that left the window and settles its
// condition; too few messages or sessions to judge leave it as it was.
//
// The condition (its evidence, in time linear in the entries) is built
// only when the verdict changes: an alert's evidence is what crossed the
// line, and a report of thousands of records costs no more than linear
// time.
func (e *Engine) judgeReport(g *reportAgg, now time.Time) []Output {
	g.expire(now.Add(-e.reportWindow(g.rule)))
	if len(g.entries) == 0 {
		delete(e.alerts.reports, g.key)
	}
	if !e.judges(&condition{rule: g.rule}) {
		return nil // turned off: settleAll resolves what fires
	}
	firing, judged, severity := e.reportVerdict(g)
	if !judged {
		return nil // too few to judge: the condition stays as it was
	}
	prev := e.alerts.conds[g.key]
	if prev != nil && prev.firing == firing && prev.severity == severity {
		return nil
	}
	if !firing && (prev == nil || !prev.firing) && e.alerts.published[g.key].status != schemas.AlertFiring {
		return nil // nothing fired, nothing to end
	}
	var c *condition
	switch g.rule {
	case RuleDMARCAlignment:
		c = e.alignmentCondition(g)
	case RuleDMARCUnknownSource:
		c = e.unknownSourceCondition(g)
	default:
		c = e.tlsCondition(g)
	}
	return e.settle(c, now)
}

// reportVerdict says whether g's condition fires, from its totals; judged
// is false when it holds too few messages or sessions to say.
func (e *Engine) reportVerdict(g *reportAgg) (firing, judged bool, severity string) {
	switch g.rule {
	case RuleDMARCAlignment:
		r := e.cfg.DMARCAlignment
		if g.all > 0 && g.all < r.MinMessages {
			return false, false, r.Severity
		}
		return g.all > 0 && float64(g.bad) >= r.Share*float64(g.all), true, r.Severity
	case RuleDMARCUnknownSource:
		r := e.cfg.DMARCUnknownSource
		_, n := g.busiestDay()
		return n > r.MaxMessages, true, r.Severity
	default:
		r := e.cfg.TLSRPTFailure
		if g.all > 0 && g.all < r.MinSessions {
			return false, false, r.Severity
		}
		return g.all > 0 && float64(g.bad) >= r.Share*float64(g.all), true, r.Severity
	}
}

// reportTotals sums g's entries.
type reportTotals struct {
	bad, all, rejected, quarantined uint64
	reporters, domains, reportIDs   []string
	headerFroms, kinds              []string
	badIDs                          []string
}

func sumEntries(entries map[string]reportEntry, keep func(reportEntry) bool) reportTotals {
	var t reportTotals
	type badID struct {
		id  string
		end time.Time
	}
	var bad []badID
	for id, en := range entries {
		if keep != nil && !keep(en) {
			continue
		}
		t.bad += en.bad
		t.all += en.all
		t.rejected += en.rejected
		t.quarantined += en.quarantined
		t.reporters = append(t.reporters, en.reporter)
		t.domains = append(t.domains, en.domain)
		t.domains = append(t.domains, en.headerFrom)
		t.headerFroms = append(t.headerFroms, en.headerFrom)
		t.reportIDs = append(t.reportIDs, en.reportID)
		t.kinds = append(t.kinds, en.kinds...)
		if en.bad > 0 {
			bad = append(bad, badID{id, en.end})
		}
	}
	slices.SortFunc(bad, func(a, b badID) int { return cmp.Or(a.end.Compare(b.end), cmp.Compare(a.id, b.id)) })
	for _, b := range bad[max(len(bad)-maxKeptIDs, 0):] {
		t.badIDs = append(t.badIDs, b.id)
	}
	for _, l := range []*[]string{&t.reporters, &t.domains, &t.headerFroms, &t.reportIDs, &t.kinds} {
		*l = slices.DeleteFunc(*l, func(s string) bool { return s == "" })
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return t
}

// listed joins at most n values, counting the rest.
func listed(values []string, n int) string {
	if len(values) <= n {
		return strings.Join(values, ",")
	}
	return strings.Join(values[:n], ",") + fmt.Sprintf(",… (%d in all)", len(values))
}

func formatShare(v float64) string { return strconv.FormatFloat(v*100, 'f', 2, 64) + " %" }

func (e *Engine) alignmentCondition(g *reportAgg) *condition {
	r := e.cfg.DMARCAlignment
	t := sumEntries(g.entries, nil)
	window := formatDuration(r.Window.Std())
	c := &condition{rule: g.rule, subject: g.subject, dedupeKey: g.key, severity: r.Severity, sourceIP: g.sourceIP}
	if t.all == 0 {
		c.summary = fmt.Sprintf("%s: no DMARC reports from %s within %s any more", g.subject, g.reporter, window)
		c.evidence = [][2]string{{"reporter", g.reporter}, {"window", window}}
		return c
	}
	if t.all < r.MinMessages {
		return nil // too few to judge
	}
	share := float64(t.bad) / float64(t.all)
	c.firing, _, _ = e.reportVerdict(g)
	c.evidence = [][2]string{{"reporter", g.reporter}, {"domains", listed(t.domains, 10)},
		{"messages", strconv.FormatUint(t.all, 10)}, {"pass", strconv.FormatUint(t.all-t.bad, 10)}, {"fail", strconv.FormatUint(t.bad, 10)},
		{"share", strconv.FormatFloat(share, 'g', 4, 64)}, {"threshold", strconv.FormatFloat(r.Share, 'g', -1, 64)},
		{"rejected", strconv.FormatUint(t.rejected, 10)}, {"quarantined", strconv.FormatUint(t.quarantined, 10)},
		{"window", window}, {"reports", strconv.Itoa(len(t.reportIDs))}, {"report_ids", listed(t.reportIDs, 10)}}
	if c.firing {
		c.summary = fmt.Sprintf("%s: DMARC fails at %s for %s of %d messages over %s (limit %s; %d rejected, %d quarantined); domains %s",
			g.subject, g.reporter, formatShare(share), t.all, window, formatShare(r.Share), t.rejected, t.quarantined, listed(t.domains, 5))
		c.eventIDs = t.badIDs
	} else {
		c.summary = fmt.Sprintf("%s: DMARC at %s back under %s (%s of %d messages fail over %s)",
			g.subject, g.reporter, formatShare(r.Share), formatShare(share), t.all, window)
	}
	return c
}

func (e *Engine) unknownSourceCondition(g *reportAgg) *condition {
	r := e.cfg.DMARCUnknownSource
	window := formatDuration(r.Window.Std())
	// The day with the most messages within the window is the one judged.
	day, n := g.busiestDay()
	c := &condition{rule: g.rule, subject: g.subject, dedupeKey: g.key, severity: r.Severity, firing: n > r.MaxMessages}
	if day == "" {
		c.summary = fmt.Sprintf("%s: no DMARC reports of %s sending as %s within %s any more", g.subject, g.sourceIP, g.domain, window)
		c.evidence = [][2]string{{"source_ip", g.sourceIP}, {"window", window}}
		return c
	}
	t := sumEntries(g.entries, func(en reportEntry) bool { return en.day == day })
	c.evidence = [][2]string{{"source_ip", g.sourceIP}, {"domain", g.domain}, {"day", day}, {"messages", strconv.FormatUint(t.all, 10)},
		{"max_messages", strconv.FormatUint(r.MaxMessages, 10)}, {"dmarc_fail", strconv.FormatUint(t.bad, 10)},
		{"rejected", strconv.FormatUint(t.rejected, 10)}, {"quarantined", strconv.FormatUint(t.quarantined, 10)},
		{"reporters", listed(t.reporters, 10)}, {"header_from", listed(t.headerFroms, 10)}, {"window", window},
		{"reports", strconv.Itoa(len(t.reportIDs))}, {"report_ids", listed(t.reportIDs, 10)}}
	if c.firing {
		c.summary = fmt.Sprintf("%s: %s, not one of our sending networks, sent %d messages as %s on %s (limit %d a day; DMARC fail %d, rejected %d, quarantined %d), reported by %s",
			g.subject, g.sourceIP, t.all, g.domain, day, r.MaxMessages, t.bad, t.rejected, t.quarantined, listed(t.reporters, 5))
		ids := make([]string, 0, len(g.entries))
		for id, en := range g.entries {
			if en.day == day {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		c.eventIDs = lastN(ids, maxKeptIDs)
	} else {
		c.summary = fmt.Sprintf("%s: %s sends under %d messages a day as %s (at most %d on %s within %s)",
			g.subject, g.sourceIP, r.MaxMessages, g.domain, t.all, day, window)
	}
	return c
}

func (e *Engine) tlsCondition(g *reportAgg) *condition {
	r := e.cfg.TLSRPTFailure
	t := sumEntries(g.entries, nil)
	window := formatDuration(r.Window.Std())
	c := &condition{rule: g.rule, subject: g.subject, dedupeKey: g.key, severity: r.Severity}
	if t.all == 0 {
		c.summary = fmt.Sprintf("%s: no TLS reports within %s any more", g.subject, window)
		c.evidence = [][2]string{{"policy_domain", g.domain}, {"window", window}}
		return c
	}
	if t.all < r.MinSessions {
		return nil // too few to judge
	}
	share := float64(t.bad) / float64(t.all)
	c.firing, _, _ = e.reportVerdict(g)
	c.evidence = [][2]string{{"policy_domain", g.domain}, {"sessions", strconv.FormatUint(t.all, 10)},
		{"success", strconv.FormatUint(t.all-t.bad, 10)}, {"failure", strconv.FormatUint(t.bad, 10)},
		{"share", strconv.FormatFloat(share, 'g', 4, 64)}, {"threshold", strconv.FormatFloat(r.Share, 'g', -1, 64)},
		{"result_types", listed(t.kinds, 10)}, {"organizations", listed(t.reporters, 10)}, {"window", window},
		{"reports", strconv.Itoa(len(t.reportIDs))}, {"report_ids", listed(t.reportIDs, 10)}}
	if c.firing {
		c.summary = fmt.Sprintf("%s: %s of %d TLS sessions failed over %s (limit %s): %s; reported by %s",
			g.subject, formatShare(share), t.all, window, formatShare(r.Share), listed(t.kinds, 5), listed(t.reporters, 5))
		c.eventIDs = t.badIDs
	} else {
		c.summary = fmt.Sprintf("%s: TLS failures back under %s (%s of %d sessions over %s)",
			g.subject, formatShare(r.Share), formatShare(share), t.all, window)
	}
	return c
}

// seedReportAgg keeps, for a firing alert of a report rule read back at
// start, an empty aggregate under its key: the replay refills it, and if
// no report within the window remains, judging it resolves the alert.
func (e *Engine) seedReportAgg(a *schemas.AlertRaised) {
	if e.alerts.reports[a.DedupeKey] != nil {
		return
	}
	g := &reportAgg{rule: a.Rule, subject: a.Subject, key: a.DedupeKey, sourceIP: a.SourceIP, entries: map[string]reportEntry{}}
	rest := strings.TrimPrefix(a.DedupeKey, a.Rule+"/"+a.Subject+"/")
	switch a.Rule {
	case RuleDMARCAlignment:
		g.reporter = strings.TrimPrefix(rest, "reporter:")
	case RuleDMARCUnknownSource:
		g.sourceIP = strings.TrimPrefix(rest, "ip:")
		g.domain = strings.TrimPrefix(a.Subject, "domain:")
	case RuleTLSRPTFailure:
		g.domain = strings.TrimPrefix(a.Subject, "domain:")
	}
	e.alerts.reports[a.DedupeKey] = g
}
