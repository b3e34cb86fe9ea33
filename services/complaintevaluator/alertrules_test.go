package complaintevaluator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
)

// alertsIn returns the alerts among outputs.
func alertsIn(out []Output) []*schemas.AlertRaised {
	var as []*schemas.AlertRaised
	for _, o := range out {
		if o.Kind == OutAlert && o.Alert != nil {
			as = append(as, o.Alert)
		}
	}
	return as
}

// evidence returns the value of one evidence name of an alert.
func evidence(a *schemas.AlertRaised, name string) string {
	if i := slices.Index(a.EvidenceNames, name); i >= 0 {
		return a.EvidenceValues[i]
	}
	return ""
}

// alertConfig turns off the rules the alert tests do not look at, so every
// output comes from the rule under test.
func alertConfig() Config {
	cfg := testConfig()
	cfg.ProbeMissing.Enabled = false
	return cfg
}

func probeRoute(ip, route, provider string) schemas.ProbeRoute {
	return schemas.ProbeRoute{ProbeID: nextID(), SourceIP: ip, Provider: provider, RecipientDomain: provider + ".test", Route: route}
}

func missingProbe(ip, route, provider string, sentAt, at time.Time) *schemas.ProbeMissing {
	return &schemas.ProbeMissing{Header: schemas.Header{ID: nextID(), Type: schemas.TypeProbeMissing, Time: at},
		ProbeRoute: probeRoute(ip, route, provider), ProbeSeed: schemas.ProbeSeed{Target: "t", SeedAddress: "seed@" + provider + ".test"},
		Account: "a", MessageID: "m", SentAt: sentAt, DeadlineMs: 600000, WaitedMs: at.Sub(sentAt).Milliseconds()}
}

func receivedProbe(ip, route, provider, placement string, sentAt, at time.Time) *schemas.ProbeReceived {
	return &schemas.ProbeReceived{Header: schemas.Header{ID: nextID(), Type: schemas.TypeProbeReceived, Time: at},
		ProbeRoute: probeRoute(ip, route, provider), ProbeSeed: schemas.ProbeSeed{Target: "t", SeedAddress: "seed@" + provider + ".test"},
		ProbeFiling: schemas.ProbeFiling{Account: "a", Protocol: schemas.ProtocolIMAP, Placement: placement, Folder: "INBOX"},
		MessageID:   "m", SentAt: sentAt, ArrivedAt: at, ArrivalSource: schemas.ArrivalInternalDate, LatencyMs: at.Sub(sentAt).Milliseconds()}
}

func sentProbe(ip, route, outcome, phase string, code uint16, reply, errText string, at time.Time) *schemas.ProbeSent {
	return &schemas.ProbeSent{Header: schemas.Header{ID: nextID(), Type: schemas.TypeProbeSent, Time: at},
		ProbeRoute: probeRoute(ip, route, "gmail"), Submission: schemas.SubmissionSMTP, Relay: "127.0.0.1:25",
		ProbeSeed: schemas.ProbeSeed{Target: "t", SeedAddress: "seed@gmail.test"}, MessageID: "m",
		Outcome: outcome, FailedPhase: phase, ReplyCode: code, ReplyText: reply, Error: errText}
}

func listedOn(kind, target, zone string, weight float64, at time.Time) *schemas.DNSBLListed {
	l := &schemas.DNSBLListed{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDNSBLListed, Time: at},
		DNSBLLookup: schemas.DNSBLLookup{Target: target, TargetKind: kind, Zone: zone, List: strings.ToUpper(zone), Weight: weight, QueryName: "q." + zone},
		AnswerCodes: []string{"127.0.0.2"}, AnswerMeanings: []string{"listed"}, TXT: "listed for spam, see https://" + zone + "/why",
		DelistURL: "https://" + zone + "/delist", PreviousState: schemas.StateClean, SweepID: "s", Resolver: "r"}
	if kind == schemas.TargetIP {
		l.SourceIP = target
	}
	return l
}

func delistedFrom(kind, target, zone string, weight float64, at time.Time) *schemas.DNSBLDelisted {
	d := &schemas.DNSBLDelisted{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDNSBLDelisted, Time: at},
		DNSBLLookup: schemas.DNSBLLookup{Target: target, TargetKind: kind, Zone: zone, List: strings.ToUpper(zone), Weight: weight, QueryName: "q." + zone},
		ListedMs:    int64(time.Hour / time.Millisecond), SweepID: "s", Resolver: "r"}
	if kind == schemas.TargetIP {
		d.SourceIP = target
	}
	return d
}

// auditOf builds a dns.audit event; findings are check, severity pairs.
func auditOf(kind, target string, at time.Time, findings ...[2]string) *schemas.DNSAudit {
	a := &schemas.DNSAudit{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDNSAudit, Time: at},
		AuditID: nextID(), Target: target, TargetKind: kind, WorstSeverity: schemas.SeverityOK}
	if kind == schemas.TargetIP {
		a.SourceIP = target
	}
	for _, f := range findings {
		a.FindingChecks = append(a.FindingChecks, f[0])
		a.FindingSeverities = append(a.FindingSeverities, f[1])
		a.FindingMessages = append(a.FindingMessages, f[0]+" is "+f[1])
		if severityRank[f[1]] > severityRank[a.WorstSeverity] {
			a.WorstSeverity = f[1]
		}
	}
	return a
}

// step is one event fed to the engine and the alerts it must produce:
// none (want == ""), or one with that status.
type step struct {
	name string
	ev   schemas.Event
	want string
}

// runSteps feeds the steps one by one, each at its own minute, and checks
// that each produced exactly the alerts it expects; it returns the alerts.
func runSteps(t *testing.T, e *Engine, c *clock, steps []step) []*schemas.AlertRaised {
	t.Helper()
	var all []*schemas.AlertRaised
	for _, s := range steps {
		c.advance(time.Minute)
		out := feed(e, c.now(), s.ev)
		as := alertsIn(out)
		if len(as) != len(out) {
			t.Fatalf("%s: outputs other than alerts: %v", s.name, kinds(out))
		}
		switch {
		case s.want == "" && len(as) != 0:
			t.Fatalf("%s: unexpected alert %s %q", s.name, as[0].Status, as[0].Summary)
		case s.want != "" && (len(as) != 1 || as[0].Status != s.want):
			t.Fatalf("%s: alerts %+v, want one %s", s.name, as, s.want)
		}
		for _, a := range as {
			if err := schemas.Validate(a); err != nil {
				t.Fatalf("%s: invalid alert: %v", s.name, err)
			}
		}
		all = append(all, as...)
	}
	return all
}

func TestProbeMissingProviderRule(t *testing.T) {
	for _, tc := range []struct {
		name, ip, route, subject string
	}{
		{"source with an IP", "192.0.2.3", "mta1", "ip:192.0.2.3"},
		{"source without an IP is judged by its route name", "", "sendmail-local", "route:sendmail-local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0}
			e := NewEngine(alertConfig(), src)
			sent := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
			miss := func(n int, provider string) schemas.Event {
				return missingProbe(tc.ip, tc.route, provider, sent(n), c.at(time.Minute))
			}
			recv := func(n int, provider string) schemas.Event {
				return receivedProbe(tc.ip, tc.route, provider, schemas.PlacementInbox, sent(n), c.at(time.Minute))
			}
			as := runSteps(t, e, c, []step{
				{"first miss", miss(1, "gmail"), ""},
				{"another provider delivers", recv(2, "yahoo"), ""},
				{"second miss in a row fires", miss(3, "gmail"), schemas.AlertFiring},
				{"third miss: still firing, no repeat", miss(4, "gmail"), ""},
				{"a probe sent before the misses arrives: no resolve", recv(0, "gmail"), ""},
				{"the provider delivers a newer probe: resolved", recv(5, "gmail"), schemas.AlertResolved},
				{"delivered again: nothing more", recv(6, "gmail"), ""},
				{"one miss after the resolve", miss(7, "gmail"), ""},
			})
			firing, resolved := as[0], as[1]
			wantKey := "probe_missing_provider/" + tc.subject + "/provider:gmail"
			if firing.DedupeKey != wantKey || resolved.DedupeKey != wantKey || firing.Subject != tc.subject || firing.Provider != "gmail" {
				t.Errorf("keys: firing %q %q, resolved %q; want %q", firing.DedupeKey, firing.Subject, resolved.DedupeKey, wantKey)
			}
			if firing.Rule != RuleProbeMissingProvider || firing.Severity != schemas.AlertCritical || evidence(firing, "missing") != "2" ||
				evidence(firing, "route") != tc.route || len(firing.EventIDs) != 2 {
				t.Errorf("firing alert %+v", firing)
			}
		})
	}
}

func TestProbeMissingProviderFor(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.ProbeMissingProvider.For = 3
	e := NewEngine(cfg, src)
	miss := func() schemas.Event { return missingProbe("192.0.2.3", "mta1", "gmail", c.now(), c.at(time.Minute)) }
	runSteps(t, e, c, []step{{"1", miss(), ""}, {"2", miss(), ""}, {"3 fires", miss(), schemas.AlertFiring}, {"4", miss(), ""}})
}

func TestProbeSendFailedRule(t *testing.T) {
	for _, tc := range []struct {
		name, outcome, phase string
		code                 uint16
		reply, err           string
	}{
		{"relay refuses", schemas.OutcomeRefused, "rcpt", 554, "5.7.1 relaying denied", ""},
		{"relay down (connect timeout)", schemas.OutcomeError, "connect", 0, "", "dial tcp 127.0.0.1:25: i/o timeout"},
		{"TLS failure", schemas.OutcomeError, "starttls", 0, "", "tls: failed to verify certificate"},
		{"authentication refused", schemas.OutcomeRefused, "auth", 535, "5.7.8 authentication failed", ""},
		{"relay tempfails", schemas.OutcomeTempfail, "mail", 451, "4.3.0 try later", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0}
			e := NewEngine(alertConfig(), src)
			fail := func() schemas.Event {
				return sentProbe("", "relay-a", tc.outcome, tc.phase, tc.code, tc.reply, tc.err, c.at(time.Minute))
			}
			ok := func() schemas.Event {
				return sentProbe("", "relay-a", schemas.OutcomeAccepted, "", 250, "2.0.0 queued", "", c.at(time.Minute))
			}
			as := runSteps(t, e, c, []step{
				{"first failure", fail(), ""},
				{"second failure fires", fail(), schemas.AlertFiring},
				{"third failure: no repeat", fail(), ""},
				{"accepted: resolved", ok(), schemas.AlertResolved},
				{"accepted again: nothing", ok(), ""},
				{"one failure after", fail(), ""},
			})
			f := as[0]
			if f.Subject != "route:relay-a" || f.DedupeKey != "probe_send_failed/route:relay-a" || as[1].DedupeKey != f.DedupeKey ||
				evidence(f, "outcome") != tc.outcome || evidence(f, "failed_phase") != tc.phase || evidence(f, "failures") != "2" {
				t.Errorf("firing alert %+v", f)
			}
			if want := tc.reply + tc.err; evidence(f, "reply") != want || !strings.Contains(f.Summary, want) {
				t.Errorf("reply evidence %q, summary %q; want %q", evidence(f, "reply"), f.Summary, want)
			}
			// The condition is the source's: a provider in the firing alert
			// alone would make the notifier take it and its resolution for
			// two conditions and hold the resolution back.
			if f.Provider != "" || evidence(f, "provider") != "" || evidence(f, "probe_provider") != "gmail" {
				t.Errorf("firing alert names provider %q, evidence provider %q, probe_provider %q; want only probe_provider gmail",
					f.Provider, evidence(f, "provider"), evidence(f, "probe_provider"))
			}
		})
	}
}

func TestProbeSendFailedOutcomes(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.ProbeSendFailed.Outcomes = []string{schemas.OutcomeError}
	cfg.ProbeSendFailed.For = 1
	e := NewEngine(cfg, src)
	runSteps(t, e, c, []step{
		{"a tempfail is not counted", sentProbe("192.0.2.1", "r", schemas.OutcomeTempfail, "rcpt", 450, "busy", "", c.now()), ""},
		{"an error fires at once (for 1)", sentProbe("192.0.2.1", "r", schemas.OutcomeError, "connect", 0, "", "refused", c.now()), schemas.AlertFiring},
	})
}

func TestListingAlerts(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.Blocklist.MinWeight = 1
	e := NewEngine(cfg, src)
	const ip = "192.0.2.7"
	as := runSteps(t, e, c, []step{
		{"low weight: ignored", listedOn(schemas.TargetIP, ip, "weak.example", 0.5, c.now()), ""},
		{"first zone fires", listedOn(schemas.TargetIP, ip, "zen.example", 2, c.now()), schemas.AlertFiring},
		{"the same zone again: no repeat", listedOn(schemas.TargetIP, ip, "zen.example", 2, c.now()), ""},
		{"a second zone: a new member", listedOn(schemas.TargetIP, ip, "bl.example", 1, c.now()), schemas.AlertFiring},
		{"delisted from one zone: still listed, members shrink", delistedFrom(schemas.TargetIP, ip, "zen.example", 2, c.now()), schemas.AlertFiring},
		{"delisted from the last zone: resolved", delistedFrom(schemas.TargetIP, ip, "bl.example", 1, c.now()), schemas.AlertResolved},
		{"a delisting of an unknown listing: nothing", delistedFrom(schemas.TargetIP, ip, "bl.example", 1, c.now()), ""},
		{"a domain listing fires", listedOn(schemas.TargetDomain, "example.com", "dbl.example", 2, c.now()), schemas.AlertFiring},
		{"the domain is delisted: resolved", delistedFrom(schemas.TargetDomain, "example.com", "dbl.example", 2, c.now()), schemas.AlertResolved},
	})
	first, second, shrunk, resolved := as[0], as[1], as[2], as[3]
	for _, a := range as[:4] {
		if a.DedupeKey != "blocklist/ip:192.0.2.7" || a.Subject != "ip:192.0.2.7" || a.SourceIP != ip || a.Rule != RuleBlocklist {
			t.Errorf("IP listing alert keys: %q %q %q", a.DedupeKey, a.Subject, a.SourceIP)
		}
	}
	if evidence(first, "zone") != "zen.example" || evidence(first, "weight") != "2" || evidence(first, "delist_url") != "https://zen.example/delist" ||
		!strings.Contains(evidence(first, "txt"), "listed for spam") || evidence(first, "zones") != "zen.example" || !strings.Contains(first.Summary, "listed for spam") {
		t.Errorf("first listing evidence: %v %v", first.EvidenceNames, first.EvidenceValues)
	}
	if evidence(second, "zone") != "bl.example" || evidence(second, "zones") != "bl.example,zen.example" || len(second.EventIDs) != 2 {
		t.Errorf("second zone: zone %q zones %q ids %v", evidence(second, "zone"), evidence(second, "zones"), second.EventIDs)
	}
	if evidence(shrunk, "zones") != "bl.example" || evidence(shrunk, "delisted_zone") != "zen.example" {
		t.Errorf("partial delisting: %v %v", shrunk.EvidenceNames, shrunk.EvidenceValues)
	}
	if resolved.Severity != schemas.AlertCritical || evidence(resolved, "delisted_zone") != "bl.example" {
		t.Errorf("resolved %+v", resolved)
	}
	if d := as[4]; d.DedupeKey != "blocklist/domain:example.com" || d.Subject != "domain:example.com" || d.SourceIP != "" ||
		evidence(d, "delist_url") != "https://dbl.example/delist" {
		t.Errorf("domain listing %+v", d)
	}
}

func TestListingAlertsWithActingRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.Blocklist.Act = true
	cfg.Blocklist.Domains = false
	e := NewEngine(cfg, src)
	out := feed(e, c.now(), listedOn(schemas.TargetIP, "192.0.2.8", "zen.example", 2, c.now()))
	if k := kinds(out); k[OutDecide] != 1 || k[OutAlert] != 1 || out[0].Alert.DedupeKey != "blocklist/ip:192.0.2.8" {
		t.Fatalf("acting listing: %v", k)
	}
	if out := feed(e, c.now(), listedOn(schemas.TargetDomain, "example.com", "dbl.example", 2, c.now())); len(out) != 0 {
		t.Errorf("domain listing with domains off: %v", kinds(out))
	}
	if as := alertsIn(feed(e, c.now(), delistedFrom(schemas.TargetIP, "192.0.2.8", "zen.example", 2, c.now()))); len(as) != 1 || as[0].Status != schemas.AlertResolved {
		t.Errorf("delisting while a decision is in force: %+v", as)
	}
}

func TestDNSHygieneRule(t *testing.T) {
	c := &clock{t: t0}
	e := NewEngine(alertConfig(), src)
	const ip, domain = "192.0.2.9", "example.com"
	ok, crit, warn, info := schemas.SeverityOK, schemas.SeverityCritical, schemas.SeverityWarning, schemas.SeverityInfo
	as := runSteps(t, e, c, []step{
		{"clean IP", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", ok}, [2]string{"fcrdns", ok}), ""},
		{"no PTR fires", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", crit}), schemas.AlertFiring},
		{"still no PTR: no repeat", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", crit}), ""},
		{"PTR back, but a warning only", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", warn}, [2]string{"fcrdns", ok}), schemas.AlertResolved},
		{"FCrDNS mismatch fires", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", ok}, [2]string{"fcrdns", crit}), schemas.AlertFiring},
		{"FCrDNS fixed", auditOf(schemas.TargetIP, ip, c.now(), [2]string{"ptr", ok}, [2]string{"fcrdns", ok}), schemas.AlertResolved},
		{"SPF does not authorise a sending IP (a warning)", auditOf(schemas.TargetDomain, domain, c.now(), [2]string{"spf", ok}, [2]string{"spf_authorizes_ip", warn}, [2]string{"dkim", info}), schemas.AlertFiring},
	})
	if a := as[0]; a.DedupeKey != "dns_hygiene/ip:192.0.2.9/check:ptr" || as[1].DedupeKey != a.DedupeKey || a.SourceIP != ip ||
		evidence(a, "check") != "ptr" || evidence(a, "finding") != "ptr is critical" || a.Severity != schemas.AlertCritical {
		t.Errorf("ptr alert %+v", a)
	}
	if as[2].DedupeKey != "dns_hygiene/ip:192.0.2.9/check:fcrdns" {
		t.Errorf("fcrdns key %q", as[2].DedupeKey)
	}
	if a := as[4]; a.DedupeKey != "dns_hygiene/domain:example.com/check:spf_authorizes_ip" || a.SourceIP != "" {
		t.Errorf("spf alert %+v", a)
	}
	// Two findings at once: one alert each; fixing one resolves only it.
	out := alertsIn(feed(e, c.now(), auditOf(schemas.TargetDomain, domain, c.now(), [2]string{"spf_authorizes_ip", warn}, [2]string{"dkim", crit}, [2]string{"dmarc", crit})))
	if len(out) != 2 || out[0].DedupeKey != "dns_hygiene/domain:example.com/check:dkim" || out[1].DedupeKey != "dns_hygiene/domain:example.com/check:dmarc" {
		t.Fatalf("two new findings: %+v", out)
	}
	out = alertsIn(feed(e, c.now(), auditOf(schemas.TargetDomain, domain, c.now(), [2]string{"spf_authorizes_ip", warn}, [2]string{"dkim", ok}, [2]string{"dmarc", crit})))
	if len(out) != 1 || out[0].Status != schemas.AlertResolved || !strings.HasSuffix(out[0].DedupeKey, "check:dkim") {
		t.Fatalf("dkim fixed: %+v", out)
	}
	// Hundreds of sending IPs SPF does not authorise: one alert that quotes
	// a few of them.
	many := [][2]string{{"dmarc", ok}}
	for range 300 {
		many = append(many, [2]string{"spf", crit})
	}
	out = alertsIn(feed(e, c.now(), auditOf(schemas.TargetDomain, domain, c.now(), many...)))
	if len(out) != 3 { // dmarc resolved, spf firing, spf_authorizes_ip resolved
		t.Fatalf("many findings: %d alerts", len(out))
	}
	for _, a := range out {
		if strings.HasSuffix(a.DedupeKey, "check:spf") && (evidence(a, "findings") != "300" || len(a.EvidenceNames) != 3+maxQuotedFindings || len(a.Summary) > 400) {
			t.Errorf("many findings: %d evidence, summary of %d bytes", len(a.EvidenceNames), len(a.Summary))
		}
	}
}

func TestProbeInSpamRule(t *testing.T) {
	c := &clock{t: t0}
	e := NewEngine(alertConfig(), src) // 3 of the last 5
	recv := func(placement string) schemas.Event {
		return receivedProbe("192.0.2.4", "mta1", "outlook", placement, c.now(), c.at(time.Minute))
	}
	inbox, spam := schemas.PlacementInbox, schemas.PlacementSpam
	as := runSteps(t, e, c, []step{
		{"spam 1", recv(spam), ""}, {"inbox", recv(inbox), ""}, {"spam 2", recv(spam), ""},
		{"spam 3 of 4 fires", recv(spam), schemas.AlertFiring},
		{"inbox: 3 of 5 still", recv(inbox), ""},
		{"spam 4 of 5: no repeat", recv(spam), ""},
		{"inbox: 3 of 5", recv(inbox), ""},
		{"inbox: 2 of 5, resolved", recv(inbox), schemas.AlertResolved},
	})
	if a := as[0]; a.DedupeKey != "probe_in_spam/ip:192.0.2.4/provider:outlook" || a.Severity != schemas.AlertWarning || evidence(a, "spam") != "3" {
		t.Errorf("spam alert %+v", a)
	}
}

// The alert rules' state is rebuilt like the rest: a restarted engine
// reads its own alerts back (what is firing), replays the signals, and
// publishes only the difference.
func TestAlertRulesRebuild(t *testing.T) {
	const ip = "192.0.2.3"
	miss := func(n int) schemas.Event {
		return missingProbe(ip, "mta1", "gmail", t0.Add(time.Duration(n)*time.Minute), t0.Add(time.Duration(n+10)*time.Minute))
	}
	recv := func(n int) schemas.Event {
		return receivedProbe(ip, "mta1", "gmail", schemas.PlacementInbox, t0.Add(time.Duration(n)*time.Minute), t0.Add(time.Duration(n+1)*time.Minute))
	}
	listing := listedOn(schemas.TargetIP, ip, "zen.example", 2, t0)
	noPTR := auditOf(schemas.TargetIP, ip, t0, [2]string{"ptr", schemas.SeverityCritical})
	signals := []schemas.Event{listing, noPTR, miss(1), miss(2), miss(3)}

	// The first run, live: three alerts go out.
	first := NewEngine(alertConfig(), src)
	now := t0.Add(time.Hour)
	published := alertsIn(feed(first, now, signals...))
	if len(published) != 3 {
		t.Fatalf("first run published %d alerts, want 3", len(published))
	}
	restart := func(alerts []*schemas.AlertRaised, replay []schemas.Event) []*schemas.AlertRaised {
		t.Helper()
		e := NewEngine(alertConfig(), src)
		e.Replaying = true
		for _, a := range alerts {
			e.Observe(a, now, true)
		}
		if out := feed(e, now, replay...); len(out) != 0 {
			t.Fatalf("outputs while replaying: %v", kinds(out))
		}
		e.Replaying = false
		return alertsIn(e.EvaluateAll(now.Add(time.Minute)))
	}
	t.Run("nothing changed: nothing re-fires", func(t *testing.T) {
		if out := restart(published, signals); len(out) != 0 {
			t.Errorf("re-fired after a restart: %+v", out)
		}
	})
	t.Run("a condition that ended while down is resolved once", func(t *testing.T) {
		out := restart(published, append(slices.Clone(signals), recv(4), delistedFrom(schemas.TargetIP, ip, "zen.example", 2, t0)))
		if len(out) != 2 || out[0].Status != schemas.AlertResolved || out[1].Status != schemas.AlertResolved {
			t.Fatalf("after the end: %+v", out)
		}
	})
	t.Run("an alert judged but never published goes out", func(t *testing.T) {
		out := restart(published[:2], signals)
		if len(out) != 1 || out[0].Rule != RuleProbeMissingProvider || out[0].Status != schemas.AlertFiring {
			t.Fatalf("lost alert: %+v", out)
		}
	})
	t.Run("evidence older than the replay is not forgotten", func(t *testing.T) {
		e := NewEngine(alertConfig(), src)
		e.Replaying = true
		for _, a := range published {
			e.Observe(a, now, true)
		}
		e.Replaying = false
		if out := e.EvaluateAll(now); len(out) != 0 {
			t.Fatalf("outputs without signals: %v", kinds(out))
		}
		// The events that end the conditions, live: one resolved each.
		for _, ev := range []schemas.Event{recv(4), delistedFrom(schemas.TargetIP, ip, "zen.example", 2, now),
			auditOf(schemas.TargetIP, ip, now, [2]string{"ptr", schemas.SeverityOK})} {
			as := alertsIn(feed(e, now, ev))
			if len(as) != 1 || as[0].Status != schemas.AlertResolved {
				t.Fatalf("%T: %+v, want one resolved", ev, as)
			}
		}
		// A second zone on a seeded listing is a new member.
		feed(e, now, listing)
		if as := alertsIn(feed(e, now, listedOn(schemas.TargetIP, ip, "bl.example", 2, now))); len(as) != 1 || evidence(as[0], "zones") != "bl.example,zen.example" {
			t.Errorf("new member after a seed: %+v", as)
		}
	})
	t.Run("a rule turned off resolves its firing alerts", func(t *testing.T) {
		cfg := alertConfig()
		cfg.DNSHygiene.Enabled = false
		e := NewEngine(cfg, src)
		e.Replaying = true
		for _, a := range published {
			e.Observe(a, now, true)
		}
		feed(e, now, signals...)
		e.Replaying = false
		out := alertsIn(e.EvaluateAll(now))
		if len(out) != 1 || out[0].Rule != RuleDNSHygiene || out[0].Status != schemas.AlertResolved {
			t.Fatalf("rule off: %+v", out)
		}
	})
	t.Run("alerts of other workers and other rules are not ours", func(t *testing.T) {
		other := *published[0]
		other.Source.Worker = "mailbox-retriever"
		if out := restart([]*schemas.AlertRaised{&other}, nil); len(out) != 0 {
			t.Errorf("took another worker's alert: %+v", out)
		}
	})
}

func TestAlertRulesPartitions(t *testing.T) {
	cfg := alertConfig()
	cfg.Partitions = 2
	var alerts int
	for p := range 2 {
		cfg.Partition = p
		e := NewEngine(cfg, src)
		for i := range 20 {
			ip := "192.0.2." + string(rune('a'+i))
			alerts += len(alertsIn(feed(e, t0, listedOn(schemas.TargetIP, ip, "zen.example", 2, t0))))
		}
	}
	if alerts != 20 {
		t.Errorf("%d listing alerts from two partitions, want 20 (each once)", alerts)
	}
}

func TestProbeLateRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.ProbeLate.MinProbes = 4
	cfg.ProbeLate.Threshold = config.Duration(10 * time.Minute)
	cfg.ProbeLate.Window = config.Duration(time.Hour)
	e := NewEngine(cfg, src)
	// Latency is arrival minus sending; receivedProbe sets it from the
	// two times. Probes from two sources count together: the rule is per
	// provider.
	recv := func(ip string, latency time.Duration) schemas.Event {
		return receivedProbe(ip, "mta", "yahoo", schemas.PlacementInbox, c.now().Add(-latency), c.now())
	}
	late := func(latency time.Duration) schemas.Event {
		return &schemas.ProbeLate{Header: schemas.Header{ID: nextID(), Type: schemas.TypeProbeLate, Time: c.now()},
			ProbeRoute: probeRoute("192.0.2.1", "mta", "yahoo"), ProbeSeed: schemas.ProbeSeed{Target: "t", SeedAddress: "s@yahoo.test"},
			ProbeFiling: schemas.ProbeFiling{Account: "a", Protocol: schemas.ProtocolIMAP, Placement: schemas.PlacementInbox, Folder: "INBOX"},
			MessageID:   "m", SentAt: c.now().Add(-latency), ArrivedAt: c.now(), LatencyMs: latency.Milliseconds(), DeadlineMs: 600000,
			LateByMs: (latency - 10*time.Minute).Milliseconds()}
	}
	as := runSteps(t, e, c, []step{
		{"slow 1: too few to judge", recv("192.0.2.1", 30*time.Minute), ""},
		{"fast", recv("192.0.2.2", time.Minute), ""},
		{"fast", recv("192.0.2.1", time.Minute), ""},
		{"4 probes, p95 is the slow one: fires", recv("192.0.2.2", time.Minute), schemas.AlertFiring},
		{"a late probe: still firing, no repeat", late(40 * time.Minute), ""},
	})
	if a := as[0]; a.DedupeKey != "probe_late/provider:yahoo" || a.Provider != "yahoo" || evidence(a, "p95") != "30m" || a.Severity != schemas.AlertWarning {
		t.Errorf("late alert %+v %v", a, a.EvidenceValues)
	}
	// An hour on, the slow ones left the window: fast probes resolve it.
	c.advance(time.Hour)
	fast := []step{{"fast", recv("192.0.2.1", time.Minute), ""}, {"fast", recv("192.0.2.1", time.Minute), ""},
		{"fast", recv("192.0.2.1", time.Minute), ""}, {"fast: 4 in the window, resolved", recv("192.0.2.1", time.Minute), schemas.AlertResolved},
		{"fast: nothing more", recv("192.0.2.1", time.Minute), ""}}
	runSteps(t, e, c, fast)
}

func TestStillRejectedRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.RejectionBurst.Enabled = false
	e := NewEngine(cfg, src) // after 24h, within 7d
	const ip = "192.0.2.50"
	rejected := func(provider string) schemas.Event {
		d := delivery("acme", ip, provider, schemas.StatusBounced, c.now())
		d.Category, d.Reply = "blocked_ip_or_blocklist", "554 5.7.1 Service unavailable; client host blocked using zen.example"
		return d
	}
	accepted := func(provider string) schemas.Event {
		return delivery("acme", ip, provider, schemas.StatusSent, c.at(time.Minute)) // after the rejections built with it
	}
	runSteps(t, e, c, []step{
		{"rejected before any listing: not this rule", rejected("outlook"), ""},
		{"listed", listedOn(schemas.TargetIP, ip, "zen.example", 2, c.now()), schemas.AlertFiring},
		{"delisted", delistedFrom(schemas.TargetIP, ip, "zen.example", 2, c.now()), schemas.AlertResolved},
		{"rejected right after the delisting: caches take a while", rejected("outlook"), ""},
	})
	c.advance(25 * time.Hour)
	as := runSteps(t, e, c, []step{
		{"rejected a day later: fires", rejected("outlook"), schemas.AlertFiring},
		{"rejected again: no repeat", rejected("outlook"), ""},
		{"another provider accepts: nothing", accepted("gmail"), ""},
		{"the provider accepts: resolved", accepted("outlook"), schemas.AlertResolved},
		{"accepted again: nothing", accepted("outlook"), ""},
	})
	if a := as[0]; a.DedupeKey != "listed_but_delisted_still_rejected/ip:192.0.2.50/provider:outlook" || evidence(a, "delisted_zone") != "zen.example" ||
		evidence(a, "since_delisting") != "25h" || !strings.Contains(a.Summary, "client host blocked") {
		t.Errorf("still rejected alert %+v %v", a, a.EvidenceValues)
	}
	c.advance(7 * 24 * time.Hour)
	runSteps(t, e, c, []step{{"a week later the delisting is not blamed", rejected("outlook"), ""}})
}

// Seeds of the rules not in TestAlertRulesRebuild: a firing alert read
// back is resolved by the event that ends it, and turning domains off
// resolves the domain listings.
func TestAlertRulesSeedsResolve(t *testing.T) {
	c := &clock{t: t0}
	cfg := alertConfig()
	cfg.RejectionBurst.Enabled = false
	first := NewEngine(cfg, src)
	const ip = "192.0.2.60"
	rejected := delivery("acme", ip, "outlook", schemas.StatusBounced, t0.Add(30*time.Hour))
	rejected.Category = "blocked_ip_or_blocklist"
	var published []*schemas.AlertRaised
	for _, ev := range []schemas.Event{
		listedOn(schemas.TargetIP, ip, "zen.example", 2, t0), delistedFrom(schemas.TargetIP, ip, "zen.example", 2, t0), rejected,
		listedOn(schemas.TargetDomain, "example.org", "dbl.example", 2, t0),
	} {
		published = append(published, alertsIn(feed(first, c.now(), ev))...)
	}
	if len(published) != 4 {
		t.Fatalf("first run: %d alerts, want listing, delisting, still rejected, domain listing", len(published))
	}
	restarted := func(cfg Config) *Engine {
		e := NewEngine(cfg, src)
		e.Replaying = true
		for _, a := range published {
			e.Observe(a, c.now(), true)
		}
		e.Replaying = false
		return e
	}
	e := restarted(cfg)
	if out := e.EvaluateAll(c.now()); len(out) != 0 {
		t.Fatalf("seeded engine published %v", kinds(out))
	}
	// A delivery accepted before the alert (read in the replay after the
	// alert) does not resolve it; one after it does.
	if as := alertsIn(feed(e, c.now(), delivery("acme", ip, "outlook", schemas.StatusSent, c.at(-time.Hour)))); len(as) != 0 {
		t.Fatalf("accepted before the alert: %+v", as)
	}
	as := alertsIn(feed(e, c.now(), delivery("acme", ip, "outlook", schemas.StatusSent, c.at(31*time.Hour))))
	if len(as) != 1 || as[0].Rule != RuleStillRejected || as[0].Status != schemas.AlertResolved {
		t.Fatalf("accepted after a seed: %+v", as)
	}
	cfg.Blocklist.Domains = false
	as = alertsIn(restarted(cfg).EvaluateAll(c.now()))
	if len(as) != 1 || as[0].DedupeKey != "blocklist/domain:example.org" || as[0].Status != schemas.AlertResolved {
		t.Fatalf("domains turned off: %+v", as)
	}
}

// Each alert rule's config is checked, every problem under its own key.
func TestAlertRulesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		keys []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"a rule turned off is not checked", func(c *Config) { c.ProbeInSpam = ProbeInSpamRule{} }, nil},
		{"for", func(c *Config) { c.ProbeMissingProvider.For, c.ProbeSendFailed.For = 0, 65 },
			[]string{"probe_missing_provider.for", "probe_send_failed.for"}},
		{"severities", func(c *Config) {
			c.Blocklist.Severity, c.ProbeMissingProvider.Severity, c.ProbeSendFailed.Severity = "page", "", "high"
			c.ProbeInSpam.Severity, c.DNSHygiene.Severity, c.ProbeLate.Severity, c.StillRejected.Severity = "x", "ok", "none", "fatal"
		}, []string{"blocklist.severity", "probe_missing_provider.severity", "probe_send_failed.severity", "probe_in_spam.severity",
			"dns_hygiene.severity", "probe_late.severity", "listed_but_delisted_still_rejected.severity"}},
		{"outcomes", func(c *Config) { c.ProbeSendFailed.Outcomes = []string{"refused", "accepted"} }, []string{"probe_send_failed.outcomes[1]"}},
		{"no outcomes", func(c *Config) { c.ProbeSendFailed.Outcomes = nil }, []string{"probe_send_failed.outcomes"}},
		{"spam of", func(c *Config) { c.ProbeInSpam.Spam, c.ProbeInSpam.Of = 6, 5 }, []string{"probe_in_spam.spam"}},
		{"checks", func(c *Config) {
			c.DNSHygiene.Checks = map[string]string{"ptr": "critical", "rdns": "critical", "dmarc": "ok"}
		}, []string{"dns_hygiene.checks.rdns", "dns_hygiene.checks.dmarc"}},
		{"late", func(c *Config) { c.ProbeLate.Threshold, c.ProbeLate.MinProbes = 0, 0 }, []string{"probe_late.threshold", "probe_late.min_probes"}},
		{"still rejected", func(c *Config) {
			c.StillRejected.After, c.StillRejected.Within, c.StillRejected.Categories = config.Duration(48*time.Hour), config.Duration(24*time.Hour), nil
		}, []string{"listed_but_delisted_still_rejected.within", "listed_but_delisted_still_rejected.categories"}},
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
			for _, k := range tc.keys {
				if !slices.Contains(paths, k) {
					t.Errorf("no problem at %s in %v", k, paths)
				}
			}
			if len(paths) != len(tc.keys) {
				t.Errorf("problems at %v, want only %v", paths, tc.keys)
			}
		})
	}
}
