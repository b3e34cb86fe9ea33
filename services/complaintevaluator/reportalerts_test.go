package complaintevaluator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
)

// day is the start of a UTC day n days after t0's.
func day(n int) time.Time { return t0.Truncate(24*time.Hour).AddDate(0, 0, n) }

// dmarcRow is one record of a report covering the day that starts at
// begin, as the fbl-ingester publishes it.
func dmarcRow(ip, org, domain, verdict string, count uint64, ours bool, begin time.Time) *schemas.DMARCRecord {
	r := &schemas.DMARCRecord{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDMARCRecord, Time: begin},
		ReportID: org + "-" + begin.Format("20060102"), OrgName: org, Begin: begin, End: begin.Add(24*time.Hour - time.Second),
		Domain: domain, Policy: "reject", Percent: 100, SourceIP: ip, Count: count, Disposition: "none",
		DKIM: verdict, SPF: verdict, DMARC: verdict, HeaderFrom: domain, OurSource: ours, ReceivedVia: schemas.ReceivedViaSMTP}
	if verdict == schemas.DMARCFail {
		r.Disposition = "reject"
	}
	return r
}

// tlsRow is one policy of a TLS report covering the day that starts at
// begin.
func tlsRow(org, domain string, success, failure uint64, begin time.Time) *schemas.TLSRPTResult {
	r := &schemas.TLSRPTResult{Header: schemas.Header{ID: nextID(), Type: schemas.TypeTLSRPTResult, Time: begin},
		ReportID: org + "-" + begin.Format("20060102"), Organization: org, Begin: begin, End: begin.Add(24*time.Hour - time.Second),
		PolicyDomain: domain, PolicyType: "sts", Success: success, Failure: failure, ReceivedVia: schemas.ReceivedViaIMAP}
	if failure > 0 {
		r.FailureResultTypes = []string{"certificate-expired"}
		r.FailureSendingIPs = []string{"209.85.220.41"}
		r.FailureReceivingMXs = []string{"mx1." + domain}
		r.FailureReceivingIPs = []string{"198.51.100.25"}
		r.FailureSessionCounts = []uint64{failure}
		r.FailureReasonCodes = []string{""}
	}
	return r
}

// reportConfig has only the report rules on.
func reportConfig() Config {
	cfg := alertConfig()
	cfg.ProbeMissingProvider.Enabled, cfg.ProbeSendFailed.Enabled, cfg.ProbeInSpam.Enabled = false, false, false
	cfg.DNSHygiene.Enabled, cfg.ProbeLate.Enabled, cfg.StillRejected.Enabled, cfg.Blocklist.Enabled = false, false, false, false
	return cfg
}

// tick runs the engine's clock to now and returns the alerts of Tick.
func tick(t *testing.T, e *Engine, now time.Time) []*schemas.AlertRaised {
	t.Helper()
	out := e.Tick(now)
	as := alertsIn(out)
	if len(as) != len(out) {
		t.Fatalf("tick: outputs other than alerts: %v", kinds(out))
	}
	return as
}

func TestDMARCAlignmentRule(t *testing.T) {
	const ip, other = "192.0.2.10", "192.0.2.11"
	c := &clock{t: day(1).Add(6 * time.Hour)} // reports of day 0 arrive the morning after
	e := NewEngine(reportConfig(), src)
	firstFail := dmarcRow(ip, "google.com", "acme.example", schemas.DMARCFail, 50, true, day(0))
	as := runSteps(t, e, c, []step{
		{"50 failing messages: under min_messages", firstFail, ""},
		{"the same record again (report mailed twice): counted once", firstFail, ""},
		{"another reporter's passes do not dilute google's", dmarcRow(ip, "yahoo.com", "acme.example", schemas.DMARCPass, 5000, true, day(0)), ""},
		{"a spoofer's failures are not our IP's", dmarcRow("203.0.113.9", "google.com", "acme.example", schemas.DMARCFail, 500, false, day(0)), ""},
		{"another of our IPs failing at google is its own condition", dmarcRow(other, "google.com", "acme.example", schemas.DMARCFail, 10, true, day(0)), ""},
		{"1000 passes: 50 of 1050 fail, 4.8 %", dmarcRow(ip, "google.com", "acme.example", schemas.DMARCPass, 1000, true, day(0)), ""},
		{"a report of the day before, arriving late: 10 more fail, 5.6 %", dmarcRow(ip, "google.com", "news.acme.example", schemas.DMARCFail, 10, true, day(-1)), schemas.AlertFiring},
		{"more failures: still firing, not raised again", dmarcRow(ip, "google.com", "acme.example", schemas.DMARCFail, 300, true, day(0)), ""},
		{"a report older than the window changes nothing", dmarcRow(ip, "google.com", "acme.example", schemas.DMARCPass, 100000, true, day(-3)), ""},
	})
	a := as[0]
	if a.Rule != RuleDMARCAlignment || a.Subject != "ip:"+ip || a.SourceIP != ip || a.Severity != schemas.AlertWarning ||
		a.DedupeKey != "dmarc_alignment/ip:"+ip+"/reporter:google.com" {
		t.Errorf("alert %+v", a)
	}
	for name, want := range map[string]string{"reporter": "google.com", "messages": "1060", "pass": "1000", "fail": "60",
		"threshold": "0.05", "window": "2d", "domains": "acme.example,news.acme.example", "reports": "2",
		"report_ids": "google.com-" + day(-1).Format("20060102") + ",google.com-" + day(0).Format("20060102"), "rejected": "60"} {
		if got := evidence(a, name); got != want {
			t.Errorf("evidence %s = %q, want %q", name, got, want)
		}
	}
	if len(a.EventIDs) != 2 || !slices.Contains(a.EventIDs, firstFail.ID) {
		t.Errorf("event ids %v, want the two failing records", a.EventIDs)
	}
	if !strings.Contains(a.Summary, "google.com") || !strings.Contains(a.Summary, "5.66 %") {
		t.Errorf("summary %q", a.Summary)
	}

	// The next day's report passes, but day 0's failures are still within
	// the window: 350 of 6350 fail, 5.5 %.
	c.t = day(2).Add(6 * time.Hour)
	runSteps(t, e, c, []step{{"day 1 passes, day 0 still in the window", dmarcRow(ip, "google.com", "acme.example", schemas.DMARCPass, 5000, true, day(1)), ""}})
	// Day 0's report leaves the window at the end of day 2: day 1 alone
	// judges, and passes.
	if as := tick(t, e, day(3).Add(time.Minute)); len(as) != 1 || as[0].Status != schemas.AlertResolved || as[0].DedupeKey != a.DedupeKey ||
		evidence(as[0], "messages") != "5000" {
		t.Fatalf("day 0 out of the window: %+v, want one resolved", as)
	}
	if as := tick(t, e, day(3).Add(time.Hour)); len(as) != 0 {
		t.Fatalf("resolved twice: %+v", as)
	}
	if n := len(e.alerts.reports); n != 1 {
		t.Errorf("%d conditions kept, want 1 (day 1's at google; day 0's left the window)", n)
	}
}

// A firing alignment condition whose reports all leave the window (the IP
// stopped sending, or the reporter stopped reporting) is resolved by the
// passing of time alone.
func TestDMARCAlignmentResolvesWhenReportsAgeOut(t *testing.T) {
	const ip = "192.0.2.10"
	c := &clock{t: day(1).Add(6 * time.Hour)}
	e := NewEngine(reportConfig(), src)
	runSteps(t, e, c, []step{{"all fail", dmarcRow(ip, "google.com", "acme.example", schemas.DMARCFail, 200, true, day(0)), schemas.AlertFiring}})
	if as := tick(t, e, day(2).Add(23*time.Hour)); len(as) != 0 {
		t.Fatalf("still within the window: %+v", as)
	}
	as := tick(t, e, day(3).Add(time.Minute))
	if len(as) != 1 || as[0].Status != schemas.AlertResolved || !strings.Contains(as[0].Summary, "no DMARC reports") {
		t.Fatalf("aged out: %+v", as)
	}
	if len(e.alerts.reports) != 0 || len(e.alerts.conds) != 0 {
		t.Errorf("state left: %d reports, %d conditions", len(e.alerts.reports), len(e.alerts.conds))
	}
}

func TestDMARCUnknownSourceRule(t *testing.T) {
	const spoofer = "203.0.113.9"
	cfg := reportConfig()
	cfg.DMARCUnknownSource.Domains = []string{"acme.example"}
	c := &clock{t: day(1).Add(6 * time.Hour)}
	e := NewEngine(cfg, src)
	as := runSteps(t, e, c, []step{
		{"600 messages as acme.example", dmarcRow(spoofer, "google.com", "acme.example", schemas.DMARCFail, 600, false, day(0)), ""},
		{"a domain not ours", dmarcRow(spoofer, "google.com", "other.example", schemas.DMARCFail, 50000, false, day(0)), ""},
		{"our own IP is no unknown source", dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, 50000, true, day(0)), ""},
		{"another day: counted apart", dmarcRow(spoofer, "yahoo.com", "acme.example", schemas.DMARCFail, 900, false, day(-1)), ""},
		{"1000 the same day: the limit, not over it", dmarcRow(spoofer, "yahoo.com", "acme.example", schemas.DMARCFail, 400, false, day(0)), ""},
		{"one more: 1001 as acme.example on day 0", dmarcRow(spoofer, "mail.ru", "acme.example", schemas.DMARCPass, 1, false, day(0)), schemas.AlertFiring},
		{"the next day over too: fired once", dmarcRow(spoofer, "google.com", "acme.example", schemas.DMARCFail, 5000, false, day(1)), ""},
	})
	a := as[0]
	if a.Rule != RuleDMARCUnknownSource || a.Subject != "domain:acme.example" || a.SourceIP != "" ||
		a.DedupeKey != "dmarc_unknown_source/domain:acme.example/ip:"+spoofer {
		t.Errorf("alert %+v", a)
	}
	for name, want := range map[string]string{"source_ip": spoofer, "domain": "acme.example", "day": day(0).Format(time.DateOnly),
		"messages": "1001", "max_messages": "1000", "dmarc_fail": "1000", "rejected": "1000", "reporters": "google.com,mail.ru,yahoo.com", "reports": "3"} {
		if got := evidence(a, name); got != want {
			t.Errorf("evidence %s = %q, want %q", name, got, want)
		}
	}
	if len(a.EventIDs) != 3 {
		t.Errorf("event ids %v, want the day's three records", a.EventIDs)
	}
	// Days 0 and 1 leave the window; day 2 is under: resolved.
	c.t = day(3).Add(6 * time.Hour)
	runSteps(t, e, c, []step{{"day 2 under, day 1 still in the window", dmarcRow(spoofer, "google.com", "acme.example", schemas.DMARCFail, 20, false, day(2)), ""}})
	// Day 1's report, read early on day 1, counts until 48h after that.
	as = tick(t, e, day(3).Add(7*time.Hour))
	if len(as) != 1 || as[0].Status != schemas.AlertResolved || evidence(as[0], "messages") != "20" {
		t.Fatalf("the next days under: %+v, want one resolved", as)
	}

	t.Run("with no domains configured, every reported domain is ours", func(t *testing.T) {
		e := NewEngine(reportConfig(), src)
		c := &clock{t: day(1).Add(6 * time.Hour)}
		runSteps(t, e, c, []step{{"2000 as other.example", dmarcRow(spoofer, "google.com", "other.example", schemas.DMARCFail, 2000, false, day(0)), schemas.AlertFiring}})
	})
	t.Run("a subdomain of ours, by its header From", func(t *testing.T) {
		e := NewEngine(cfg, src)
		c := &clock{t: day(1).Add(6 * time.Hour)}
		row := dmarcRow(spoofer, "google.com", "lookalike.example", schemas.DMARCFail, 2000, false, day(0))
		row.HeaderFrom = "news.acme.example"
		as := runSteps(t, e, c, []step{{"2000 as news.acme.example", row, schemas.AlertFiring}})
		if as[0].Subject != "domain:lookalike.example" || evidence(as[0], "header_from") != "news.acme.example" {
			t.Errorf("alert %+v", as[0])
		}
	})
}

func TestTLSRPTFailureRule(t *testing.T) {
	c := &clock{t: day(1).Add(6 * time.Hour)}
	e := NewEngine(reportConfig(), src)
	as := runSteps(t, e, c, []step{
		{"60 sessions, all failed: under min_sessions", tlsRow("google.com", "acme.example", 0, 60, day(0)), ""},
		{"another domain", tlsRow("google.com", "other.example", 10000, 0, day(0)), ""},
		{"1000 good sessions: 60 of 1060 failed", tlsRow("microsoft.com", "acme.example", 1000, 0, day(0)), schemas.AlertFiring},
		{"no sessions at all: ignored", tlsRow("yahoo.com", "acme.example", 0, 0, day(0)), ""},
	})
	a := as[0]
	if a.Rule != RuleTLSRPTFailure || a.Subject != "domain:acme.example" || a.DedupeKey != "tlsrpt_failure/domain:acme.example" {
		t.Errorf("alert %+v", a)
	}
	for name, want := range map[string]string{"policy_domain": "acme.example", "sessions": "1060", "failure": "60", "success": "1000",
		"result_types": "certificate-expired", "organizations": "google.com,microsoft.com"} {
		if got := evidence(a, name); got != want {
			t.Errorf("evidence %s = %q, want %q", name, got, want)
		}
	}
	c.t = day(2).Add(6 * time.Hour)
	runSteps(t, e, c, []step{{"day 1 fine, but day 0 in the window: 60 of 3060 is under the share", tlsRow("google.com", "acme.example", 2000, 0, day(1)), schemas.AlertResolved}})
}

// The report rules' state is rebuilt like the other alert rules': a
// restarted engine reads its alerts back, replays the reports (in any
// order), and publishes only the difference.
func TestReportRulesRebuild(t *testing.T) {
	now := day(1).Add(6 * time.Hour)
	signals := []schemas.Event{
		dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCFail, 200, true, day(0)),
		dmarcRow("203.0.113.9", "google.com", "acme.example", schemas.DMARCFail, 3000, false, day(0)),
		tlsRow("google.com", "acme.example", 100, 100, day(0)),
	}
	first := NewEngine(reportConfig(), src)
	published := alertsIn(feed(first, now, signals...))
	if len(published) != 3 {
		t.Fatalf("first run published %d alerts, want 3", len(published))
	}
	restart := func(at time.Time, alerts []*schemas.AlertRaised, replay []schemas.Event) (*Engine, []*schemas.AlertRaised) {
		t.Helper()
		e := NewEngine(reportConfig(), src)
		e.Replaying = true
		for _, a := range alerts {
			e.Observe(a, at, true)
		}
		if out := feed(e, at, replay...); len(out) != 0 {
			t.Fatalf("outputs while replaying: %v", kinds(out))
		}
		e.Replaying = false
		return e, alertsIn(e.EvaluateAll(at))
	}
	reversed := slices.Clone(signals)
	slices.Reverse(reversed)
	t.Run("nothing changed: nothing is raised again", func(t *testing.T) {
		e, out := restart(now.Add(time.Hour), published, reversed)
		if len(out) != 0 {
			t.Fatalf("raised again after a restart: %+v", out)
		}
		if as := tick(t, e, now.Add(2*time.Hour)); len(as) != 0 {
			t.Fatalf("raised again at the first tick: %+v", as)
		}
	})
	t.Run("conditions that ended while down are resolved once", func(t *testing.T) {
		more := append(slices.Clone(reversed),
			dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, 10000, true, day(0)),
			tlsRow("microsoft.com", "acme.example", 10000, 0, day(0)))
		_, out := restart(now.Add(time.Hour), published, more)
		if len(out) != 2 || out[0].Rule != RuleDMARCAlignment || out[1].Rule != RuleTLSRPTFailure ||
			out[0].Status != schemas.AlertResolved || out[1].Status != schemas.AlertResolved {
			t.Fatalf("after the end: %+v", out)
		}
	})
	t.Run("an alert judged but never published goes out", func(t *testing.T) {
		_, out := restart(now.Add(time.Hour), published[1:], signals)
		if len(out) != 1 || out[0].Rule != RuleDMARCAlignment || out[0].Status != schemas.AlertFiring {
			t.Fatalf("lost alert: %+v", out)
		}
	})
	t.Run("reports that left the window while down resolve at start", func(t *testing.T) {
		// Three days on, the replay (reports that arrived within the
		// window) holds none of them.
		_, out := restart(day(4), published, nil)
		if len(out) != 3 {
			t.Fatalf("after the window: %+v, want three resolved", out)
		}
		for _, a := range out {
			if a.Status != schemas.AlertResolved {
				t.Errorf("%s: %s", a.DedupeKey, a.Status)
			}
		}
	})
	t.Run("a seeded condition with too few messages to judge stays firing", func(t *testing.T) {
		e, out := restart(now.Add(time.Hour), published[:1], []schemas.Event{dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, 10, true, day(0))})
		if len(out) != 0 {
			t.Fatalf("too few to judge: %+v", out)
		}
		as := tick(t, e, day(3).Add(time.Minute))
		if len(as) != 1 || as[0].Status != schemas.AlertResolved {
			t.Fatalf("aged out: %+v", as)
		}
	})
	t.Run("a rule turned off resolves its firing alert", func(t *testing.T) {
		cfg := reportConfig()
		cfg.TLSRPTFailure.Enabled = false
		e := NewEngine(cfg, src)
		e.Replaying = true
		for _, a := range published {
			e.Observe(a, now, true)
		}
		feed(e, now, signals...)
		e.Replaying = false
		out := alertsIn(e.EvaluateAll(now))
		if len(out) != 1 || out[0].Rule != RuleTLSRPTFailure || out[0].Status != schemas.AlertResolved {
			t.Fatalf("rule off: %+v", out)
		}
	})
}

// Partitions split the report conditions by subject, like the other
// alert rules.
func TestReportRulesPartitions(t *testing.T) {
	now := day(1).Add(6 * time.Hour)
	fired := 0
	for p := range 3 {
		cfg := reportConfig()
		cfg.Partitions, cfg.Partition = 3, p
		e := NewEngine(cfg, src)
		for i := range 12 {
			fired += len(alertsIn(feed(e, now, dmarcRow(fmt.Sprintf("192.0.2.%d", i), "google.com", "acme.example", schemas.DMARCFail, 200, true, day(0)))))
		}
	}
	if fired != 12 {
		t.Errorf("%d alerts over three partitions, want each of 12 IPs once", fired)
	}
}

// A flood of records, as anyone can mail reports to our rua address,
// keeps a bounded number of entries per condition.
func TestReportEntriesBounded(t *testing.T) {
	now := day(1).Add(6 * time.Hour)
	e := NewEngine(reportConfig(), src)
	for range maxReportEntries + 50 {
		feed(e, now, dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, 1, true, day(0)))
	}
	g := e.alerts.reports["dmarc_alignment/ip:192.0.2.10/reporter:google.com"]
	if g == nil || len(g.entries) != maxReportEntries {
		t.Fatalf("entries not bounded: %v", g)
	}
}

func TestReportRulesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		keys []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"turned off is not checked", func(c *Config) {
			c.DMARCAlignment, c.DMARCUnknownSource, c.TLSRPTFailure = DMARCAlignmentRule{}, DMARCUnknownSourceRule{}, TLSRPTFailureRule{}
		}, nil},
		{"shares", func(c *Config) { c.DMARCAlignment.Share, c.TLSRPTFailure.Share = 0, 5 },
			[]string{"dmarc_alignment.share", "tlsrpt_failure.share"}},
		{"minimums", func(c *Config) {
			c.DMARCAlignment.MinMessages, c.DMARCUnknownSource.MaxMessages, c.TLSRPTFailure.MinSessions = 0, 0, 0
		}, []string{"dmarc_alignment.min_messages", "dmarc_unknown_source.max_messages", "tlsrpt_failure.min_sessions"}},
		{"windows", func(c *Config) {
			c.DMARCAlignment.Window, c.DMARCUnknownSource.Window, c.TLSRPTFailure.Window = 0, config.Duration(time.Hour), -1
		}, []string{"dmarc_alignment.window", "dmarc_unknown_source.window", "tlsrpt_failure.window"}},
		{"a window longer than the stream keeps", func(c *Config) { c.DMARCAlignment.Window = config.Duration(90 * 24 * time.Hour) },
			[]string{"dmarc_alignment.window"}},
		{"domains", func(c *Config) { c.DMARCUnknownSource.Domains = []string{"acme.example", "Acme.Example", "", "x@y"} },
			[]string{"dmarc_unknown_source.domains[1]", "dmarc_unknown_source.domains[2]", "dmarc_unknown_source.domains[3]"}},
		{"severities", func(c *Config) {
			c.DMARCAlignment.Severity, c.DMARCUnknownSource.Severity, c.TLSRPTFailure.Severity = "", "page", "ok"
		}, []string{"dmarc_alignment.severity", "dmarc_unknown_source.severity", "tlsrpt_failure.severity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.set(&cfg)
			err := cfg.Validate()
			if len(tc.keys) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var problems config.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("error %v is not config.Problems", err)
			}
			var paths []string
			for _, p := range problems {
				paths = append(paths, p.Path)
			}
			slices.Sort(paths)
			want := slices.Sorted(slices.Values(tc.keys))
			if !slices.Equal(paths, want) {
				t.Errorf("problems at %v, want %v", paths, want)
			}
		})
	}
}

// BenchmarkObserveDMARCRecord measures one record of a large report, all
// of whose records are about one of our IPs at one reporter (the worst
// case: one condition holds them all). A record costs the same however
// many the condition holds already: the totals are kept as records come.
func BenchmarkObserveDMARCRecord(b *testing.B) {
	now := day(1).Add(6 * time.Hour)
	e := NewEngine(reportConfig(), src)
	rows := make([]*schemas.DMARCRecord, maxReportEntries)
	for i := range rows {
		verdict := schemas.DMARCPass
		if i%10 == 0 {
			verdict = schemas.DMARCFail
		}
		rows[i] = dmarcRow("192.0.2.10", "google.com", "acme.example", verdict, 7, true, day(0))
	}
	b.ResetTimer()
	for i := range b.N {
		if i%len(rows) == 0 {
			b.StopTimer()
			e = NewEngine(reportConfig(), src)
			b.StartTimer()
		}
		e.Observe(rows[i%len(rows)], now, false)
	}
}

// Counts a hostile report makes up cannot overflow a condition's totals:
// each record counts at most maxReportCount messages.
func TestReportCountsCapped(t *testing.T) {
	now := day(1).Add(6 * time.Hour)
	e := NewEngine(reportConfig(), src)
	const huge = ^uint64(0)
	out := alertsIn(feed(e, now,
		dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, huge, true, day(0)),
		dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCPass, huge, true, day(0)),
		dmarcRow("192.0.2.10", "google.com", "acme.example", schemas.DMARCFail, huge, true, day(0))))
	// A third fail: 33 %, not the wrapped-around nonsense of 2^64 sums.
	if len(out) != 1 || evidence(out[0], "messages") != fmt.Sprint(3*uint64(maxReportCount)) || evidence(out[0], "fail") != fmt.Sprint(uint64(maxReportCount)) {
		t.Fatalf("huge counts: %+v", out)
	}
}
