package complaintevaluator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/silence"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// alertLog is what the ALERT stream holds, per dedupe key: the statuses in
// order.
func alertLog(t testing.TB, l *loop) map[string][]string {
	t.Helper()
	log := map[string][]string{}
	for _, ev := range streamEvents(t, l.js, "ALERT") {
		if a, ok := ev.(*schemas.AlertRaised); ok {
			log[a.DedupeKey] = append(log[a.DedupeKey], a.Status)
		}
	}
	return log
}

func probeEvents(route string, sentAt time.Time) (missing *schemas.ProbeMissing, received *schemas.ProbeReceived) {
	r := schemas.ProbeRoute{ProbeID: schemas.NewID(), Provider: "gmail", RecipientDomain: "gmail.test", Route: route}
	seed := schemas.ProbeSeed{Target: "gmail-seed", SeedAddress: "seed@gmail.test"}
	missing = stamp(&schemas.ProbeMissing{ProbeRoute: r, ProbeSeed: seed, Account: "gmail", MessageID: r.ProbeID + "@example.test",
		SentAt: sentAt, DeadlineMs: 600000, WaitedMs: 600000}, sentAt.Add(10*time.Minute))
	received = stamp(&schemas.ProbeReceived{ProbeRoute: r, ProbeSeed: seed, MessageID: r.ProbeID + "@example.test",
		ProbeFiling: schemas.ProbeFiling{Account: "gmail", Protocol: schemas.ProtocolIMAP, Placement: schemas.PlacementInbox, Folder: "INBOX"},
		SentAt:      sentAt, ArrivedAt: sentAt.Add(time.Second), ArrivalSource: schemas.ArrivalInternalDate, LatencyMs: 1000}, sentAt.Add(2*time.Second))
	return missing, received
}

func probeSent(route, outcome string, at time.Time) *schemas.ProbeSent {
	ev := &schemas.ProbeSent{ProbeRoute: schemas.ProbeRoute{ProbeID: schemas.NewID(), Provider: "gmail", RecipientDomain: "gmail.test", Route: route},
		Submission: schemas.SubmissionSendmail, ProbeSeed: schemas.ProbeSeed{Target: "gmail-seed", SeedAddress: "seed@gmail.test"},
		MessageID: "m@example.test", Outcome: outcome, ConnectMs: -1, BannerMs: -1, EhloMs: -1, StarttlsMs: -1, AuthMs: -1, MailMs: -1, RcptMs: -1, DataMs: -1}
	if outcome != schemas.OutcomeAccepted {
		ev.FailedPhase, ev.Error = "submit", "sendmail: exit status 75"
	}
	return stamp(ev, at)
}

func listingChange(listed bool, kind, target, zone string, at time.Time) schemas.Event {
	lookup := schemas.DNSBLLookup{Target: target, TargetKind: kind, Zone: zone, List: zone, Weight: 2, QueryName: "x." + zone}
	if kind == schemas.TargetIP {
		lookup.SourceIP = target
	}
	if listed {
		return stamp(&schemas.DNSBLListed{DNSBLLookup: lookup, AnswerCodes: []string{"127.0.0.2"}, AnswerMeanings: []string{"spam source"},
			TXT: "listed: see https://" + zone, DelistURL: "https://" + zone + "/remove", PreviousState: schemas.StateClean, SweepID: "s1", Resolver: "127.0.0.1:53"}, at)
	}
	return stamp(&schemas.DNSBLDelisted{DNSBLLookup: lookup, SweepID: "s2", Resolver: "127.0.0.1:53"}, at)
}

// The new alert rules through the real worker on a real NATS: each
// failure fires once and resolves once, and restarts in between (one while
// a condition ends) neither repeat nor lose an alert.
func TestAlertRulesThroughTheWorker(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	cfg := evaluatorConfig(time.Hour, schemas.ActionCutoff)
	_, stop := startEvaluator(t, js, cfg)

	const route = "sendmail-local" // no source IP: judged by its route name
	const ip, domain = "192.0.2.44", "example.com"
	now := time.Now()
	miss1, _ := probeEvents(route, now.Add(-30*time.Minute))
	miss2, _ := probeEvents(route, now.Add(-20*time.Minute))
	l.publish(t, miss1, miss2,
		probeSent(route, schemas.OutcomeError, now), probeSent(route, schemas.OutcomeError, now),
		listingChange(true, schemas.TargetIP, ip, "zen.example", now),
		listingChange(true, schemas.TargetDomain, domain, "dbl.example", now),
		stamp(&schemas.DNSAudit{AuditID: "a1", Target: ip, TargetKind: schemas.TargetIP, SourceIP: ip, WorstSeverity: schemas.SeverityCritical,
			FindingChecks: []string{"ptr"}, FindingSeverities: []string{schemas.SeverityCritical}, FindingMessages: []string{"no PTR"}}, now))
	keys := map[string]string{
		"missing":    "probe_missing_provider/route:" + route + "/provider:gmail",
		"send":       "probe_send_failed/route:" + route,
		"ip":         "blocklist/ip:" + ip,
		"domain":     "blocklist/domain:" + domain,
		"hygiene":    "dns_hygiene/ip:" + ip + "/check:ptr",
		"secondZone": "blocklist/ip:" + ip,
	}
	want := func(name string, statuses ...string) func() bool {
		return func() bool { return fmt.Sprint(alertLog(t, l)[keys[name]]) == fmt.Sprint(statuses) }
	}
	for _, name := range []string{"missing", "send", "ip", "domain", "hygiene"} {
		testwait.Eventually(t, 30*time.Second, name+" firing", want(name, schemas.AlertFiring))
	}

	// A restart with nothing new: nothing is published again.
	stop()
	_, stop = startEvaluator(t, js, cfg)
	time.Sleep(500 * time.Millisecond)
	for _, name := range []string{"missing", "send", "ip", "domain", "hygiene"} {
		if !want(name, schemas.AlertFiring)() {
			t.Errorf("%s after a restart: %v, want one firing", name, alertLog(t, l)[keys[name]])
		}
	}

	// The conditions end, live and while the worker is down.
	_, received := probeEvents(route, time.Now())
	l.publish(t, received, probeSent(route, schemas.OutcomeAccepted, time.Now()),
		listingChange(true, schemas.TargetIP, ip, "bl.example", time.Now())) // a second zone: a new member
	testwait.Eventually(t, 30*time.Second, "missing resolved", want("missing", schemas.AlertFiring, schemas.AlertResolved))
	testwait.Eventually(t, 30*time.Second, "send resolved", want("send", schemas.AlertFiring, schemas.AlertResolved))
	testwait.Eventually(t, 30*time.Second, "second zone", want("ip", schemas.AlertFiring, schemas.AlertFiring))
	stop()
	l.publish(t, listingChange(false, schemas.TargetDomain, domain, "dbl.example", time.Now()),
		stamp(&schemas.DNSAudit{AuditID: "a2", Target: ip, TargetKind: schemas.TargetIP, SourceIP: ip, WorstSeverity: schemas.SeverityOK,
			FindingChecks: []string{"ptr"}, FindingSeverities: []string{schemas.SeverityOK}, FindingMessages: []string{"PTR mta.example.com"}}, time.Now()))
	startEvaluator(t, js, cfg)
	testwait.Eventually(t, 30*time.Second, "domain resolved after the restart", want("domain", schemas.AlertFiring, schemas.AlertResolved))
	testwait.Eventually(t, 30*time.Second, "hygiene resolved after the restart", want("hygiene", schemas.AlertFiring, schemas.AlertResolved))
	l.publish(t, listingChange(false, schemas.TargetIP, ip, "zen.example", time.Now()), listingChange(false, schemas.TargetIP, ip, "bl.example", time.Now()))
	testwait.Eventually(t, 30*time.Second, "ip resolved", want("ip", schemas.AlertFiring, schemas.AlertFiring, schemas.AlertFiring, schemas.AlertResolved))
	time.Sleep(300 * time.Millisecond)
	for name, key := range keys {
		if got := alertLog(t, l)[key]; len(got) == 0 || got[len(got)-1] != schemas.AlertResolved {
			t.Errorf("%s: %v, want it resolved at last", name, got)
		}
	}
	for _, ev := range streamEvents(t, l.js, "ALERT") {
		if a := ev.(*schemas.AlertRaised); a.Source.Worker != complaintevaluator.WorkerName {
			t.Errorf("alert from %s", a.Source.Worker)
		}
	}
}

// A listing older than every window (the evaluator's clock ten days on)
// still finds its delisting at a restart: the DNS stream is replayed whole,
// so the firing alert read back from ALERT is resolved once.
func TestOldListingResolvedAfterRestart(t *testing.T) {
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	cfg := evaluatorConfig(time.Hour, schemas.ActionCutoff)
	_, stop := startEvaluator(t, js, cfg)
	const ip = "192.0.2.45"
	key := "blocklist/ip:" + ip
	l.publish(t, listingChange(true, schemas.TargetIP, ip, "zen.example", time.Now()))
	testwait.Eventually(t, 30*time.Second, "firing", func() bool { return fmt.Sprint(alertLog(t, l)[key]) == "[firing]" })
	stop()
	l.publish(t, listingChange(false, schemas.TargetIP, ip, "zen.example", time.Now()))

	s := settings(t, js, complaintevaluator.WorkerName)
	s.Now = func() time.Time { return time.Now().Add(10 * 24 * time.Hour) }
	ev, err := complaintevaluator.New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, ev)
	testwait.Eventually(t, 30*time.Second, "resolved after the restart", func() bool {
		return fmt.Sprint(alertLog(t, l)[key]) == "[firing resolved]"
	})
	time.Sleep(300 * time.Millisecond)
	if got := alertLog(t, l)[key]; len(got) != 2 {
		t.Errorf("alerts %v, want one firing and one resolved", got)
	}
}

// An alert raised while a silence matches it is recorded with silenced
// set; one the silence does not match is not.
func TestAlertsRaisedDuringASilenceAreMarked(t *testing.T) {
	js, kv := newNATS(t)
	ctx := context.Background()
	silences, err := silence.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	defer silences.Close()
	if _, err := silences.Add(ctx, silence.Silence{
		Matchers: []silence.Matcher{{Name: "rule", Value: "blocklist"}, {Name: "source_ip", Value: "192.0.2.45"}},
		EndsAt:   time.Now().Add(time.Hour), Comment: "planned delisting work", CreatedBy: "test",
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	l := &loop{js: js, kv: kv, pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})}
	_, stop := startEvaluator(t, js, evaluatorConfig(time.Hour, schemas.ActionCutoff))
	defer stop()
	now := time.Now()
	l.publish(t, listingChange(true, schemas.TargetIP, "192.0.2.45", "zen.example", now),
		listingChange(true, schemas.TargetIP, "192.0.2.46", "zen.example", now))
	silenced := map[string]bool{}
	testwait.Eventually(t, 30*time.Second, "both listing alerts", func() bool {
		for _, ev := range streamEvents(t, js, "ALERT") {
			if a, ok := ev.(*schemas.AlertRaised); ok && a.Status == schemas.AlertFiring {
				silenced[a.SourceIP] = a.Silenced
			}
		}
		return len(silenced) == 2
	})
	if !silenced["192.0.2.45"] || silenced["192.0.2.46"] {
		t.Fatalf("silenced by source IP = %v, want only 192.0.2.45 (the silence's) marked", silenced)
	}
}
