package complaintevaluator

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// clock is a controlled clock for the engine tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) advance(d time.Duration)      { c.t = c.t.Add(d) }
func (c *clock) at(d time.Duration) time.Time { return c.t.Add(d) }

var src = schemas.Source{Worker: WorkerName, Host: "test"}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Customer.MinDelivered = 100
	cfg.SourceIP.MinDelivered = 100
	cfg.CustomerProvider.MinDelivered = 100
	return cfg
}

var seq int

func nextID() string { seq++; return fmt.Sprintf("00000000-0000-7000-8000-%012d", seq) }

func complaint(customer, ip, provider string, at time.Time) *schemas.ComplaintReceived {
	return &schemas.ComplaintReceived{
		Header:   schemas.Header{ID: nextID(), Type: schemas.TypeComplaintReceived, Time: at},
		Customer: customer, SourceIP: ip, Provider: provider, Counted: true, Trusted: true, Trust: schemas.TrustOperatorDKIM,
		TraceMethod: schemas.TraceTrackingHeader, Format: "arf", ReceivedVia: schemas.ReceivedViaFile, FeedbackType: "abuse",
	}
}

func delivery(customer, ip, provider, status string, at time.Time) *schemas.DeliveryAttempted {
	return &schemas.DeliveryAttempted{
		Header:          schemas.Header{ID: nextID(), Type: schemas.TypeDeliveryAttempted, Time: at},
		OutgoingMessage: schemas.OutgoingMessage{Customer: customer, SourceIP: ip, Provider: provider, RecipientDomain: provider + ".test"},
		Status:          status, TrackingStatus: schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mx", Recipient: "r@" + provider + ".test",
	}
}

// feed observes events and returns all outputs.
func feed(e *Engine, now time.Time, evs ...schemas.Event) []Output {
	var out []Output
	for _, ev := range evs {
		out = append(out, e.Observe(ev, now, false)...)
	}
	return out
}

func deliveries(n int, customer, ip, provider string, at time.Time) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = delivery(customer, ip, provider, schemas.StatusSent, at)
	}
	return out
}

func complaints(n int, customer, ip, provider string, at time.Time) []schemas.Event {
	out := make([]schemas.Event, n)
	for i := range out {
		out[i] = complaint(customer, ip, provider, at)
	}
	return out
}

func kinds(out []Output) map[OutputKind]int {
	m := map[OutputKind]int{}
	for _, o := range out {
		m[o.Kind]++
	}
	return m
}

func decisionsIn(out []Output) []enforcement.Record {
	var recs []enforcement.Record
	for _, o := range out {
		if o.Kind == OutDecide {
			recs = append(recs, *o.Record)
		}
	}
	return recs
}

func TestRateNeedsMinimumVolume(t *testing.T) {
	c := &clock{t: t0}
	e := NewEngine(testConfig(), src)
	// 5 complaints, 50 deliveries: 10 %, but under min_delivered (100).
	out := feed(e, c.now(), deliveries(50, "acme", "", "gmail", c.at(-time.Minute))...)
	out = append(out, feed(e, c.now(), complaints(5, "acme", "", "gmail", c.now())...)...)
	if len(out) != 0 {
		t.Fatalf("outputs under the minimum volume: %v", kinds(out))
	}
	// 100 more deliveries: 5 / 150 = 3.3 %, now judged.
	out = feed(e, c.now(), deliveries(100, "acme", "", "gmail", c.now())...)
	recs := decisionsIn(out)
	if len(recs) != 2 { // customer:acme and customer:acme/provider:gmail
		t.Fatalf("decisions = %d (%v), want 2", len(recs), kinds(out))
	}
	// The decision is made on the delivery that brings the count to
	// min_delivered (the 50th of the 100), not after the batch: 5 / 100.
	for _, r := range recs {
		if r.Evidence.Complaints != 5 || r.Evidence.Delivered != 100 || r.Evidence.Rate != 0.05 {
			t.Errorf("%s: evidence %+v, want 5 complaints / 100 delivered = 0.05", r.Subject, r.Evidence)
		}
	}
}

func TestWarnThenActWithEvidence(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Customer.MinDelivered = 1000
	cfg.CustomerProvider.Act = false
	cfg.CustomerProvider.WarnRate = 0 // keep this test to the customer scope
	cfg.CustomerProvider.ActRate = 0
	e := NewEngine(cfg, src)
	feed(e, c.now(), deliveries(1000, "acme", "", "gmail", c.at(-30*time.Minute))...)

	// 1 / 1000 = 0.1 %: a warning, once.
	out := feed(e, c.now(), complaint("acme", "", "gmail", c.now()))
	if len(out) != 1 || out[0].Kind != OutAlert || out[0].Alert.Severity != schemas.AlertWarning {
		t.Fatalf("first complaint: %+v", out)
	}
	if out[0].Alert.Subject != "customer:acme" || out[0].Alert.Rule != RuleComplaintRate {
		t.Errorf("warning alert: %+v", out[0].Alert)
	}
	if err := schemas.Validate(out[0].Alert); err != nil {
		t.Error(err)
	}
	c.advance(time.Minute)
	if out := feed(e, c.now(), complaint("acme", "", "gmail", c.now())); len(out) != 0 {
		t.Fatalf("second complaint at warn level alerted again: %v", kinds(out))
	}
	// The third: 3 / 1000 = 0.3 % — act.
	c.advance(time.Minute)
	third := complaint("acme", "", "gmail", c.now())
	out = feed(e, c.now(), third)
	recs := decisionsIn(out)
	if len(recs) != 1 {
		t.Fatalf("third complaint: %v, want one decision", kinds(out))
	}
	r := recs[0]
	if r.Action != schemas.ActionCutoff || r.Subject != "customer:acme" || r.Offence != 1 || r.Rule != RuleComplaintRate {
		t.Errorf("decision %+v", r)
	}
	if r.Until.Sub(r.DecidedAt) != 6*time.Hour || r.DurationMs != (6*time.Hour).Milliseconds() {
		t.Errorf("first offence lasts %s, want 6h", r.Until.Sub(r.DecidedAt))
	}
	ev := r.Evidence
	if ev.Complaints != 3 || ev.Delivered != 1000 || ev.Rate != 0.003 || ev.Threshold != 0.003 || ev.WindowMs != time.Hour.Milliseconds() {
		t.Errorf("evidence %+v", ev)
	}
	if len(ev.SampleComplaintIDs) != 3 || ev.SampleComplaintIDs[2] != third.ID {
		t.Errorf("sample ids %v, want the 3 complaints ending with %s", ev.SampleComplaintIDs, third.ID)
	}
	if r.PolicyAction != "DEFER_IF_PERMIT" || r.PolicyText[:6] != "4.7.1 " {
		t.Errorf("policy answer %q %q", r.PolicyAction, r.PolicyText)
	}
	if err := schemas.Validate(r.Event()); err != nil {
		t.Errorf("decision event: %v", err)
	}
	if a := out[0].Alert; a.Status != schemas.AlertFiring || a.DecisionID != r.DecisionID || a.DedupeKey != enforcement.DedupeKey("customer:acme") {
		t.Errorf("decision alert %+v", a)
	}
	// While cut off, more complaints decide nothing.
	if out := feed(e, c.now(), complaints(10, "acme", "", "gmail", c.now())...); len(decisionsIn(out)) != 0 {
		t.Errorf("decided again while in force: %v", kinds(out))
	}
}

func TestCountThreshold(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Customer.ActCount = 4
	cfg.Customer.WarnRate, cfg.Customer.ActRate = 0, 0
	cfg.CustomerProvider.Act = false
	e := NewEngine(cfg, src)
	out := feed(e, c.now(), complaints(3, "acme", "", "yahoo", c.now())...)
	if len(decisionsIn(out)) != 0 {
		t.Fatal("decided under the count")
	}
	out = feed(e, c.now(), complaint("acme", "", "yahoo", c.now()))
	recs := decisionsIn(out)
	if len(recs) != 1 || recs[0].Rule != RuleComplaintCount || recs[0].Evidence.Threshold != 4 || recs[0].Evidence.Complaints != 4 {
		t.Fatalf("count decision: %+v", recs)
	}
}

func TestReleaseAndEscalation(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.CustomerProvider.Act = false
	cfg.Decisions.First = config.Duration(6 * time.Hour)
	cfg.Decisions.Repeat = []config.Duration{config.Duration(24 * time.Hour), 0}
	e := NewEngine(cfg, src)

	offend := func() enforcement.Record {
		t.Helper()
		out := feed(e, c.now(), deliveries(100, "acme", "", "gmail", c.now())...)
		out = append(out, feed(e, c.now(), complaints(1, "acme", "", "gmail", c.now())...)...)
		recs := decisionsIn(out)
		if len(recs) != 1 {
			t.Fatalf("at %s: %v, want one decision", c.now(), kinds(out))
		}
		return recs[0]
	}
	first := offend()
	if first.Offence != 1 || first.Until.Sub(first.DecidedAt) != 6*time.Hour {
		t.Fatalf("first: %+v", first.DecisionTerm)
	}
	c.advance(6*time.Hour - time.Second)
	if out := e.Tick(c.now()); len(out) != 0 {
		t.Fatalf("released early: %v", kinds(out))
	}
	c.advance(2 * time.Second)
	out := e.Tick(c.now())
	if len(out) != 1 || out[0].Kind != OutRelease {
		t.Fatalf("tick after until: %v", kinds(out))
	}
	rel := out[0].Release
	if rel.DecisionID != first.DecisionID || !rel.Time.Equal(first.Until) || rel.HeldMs != (6*time.Hour).Milliseconds() {
		t.Errorf("release %+v", rel)
	}
	if err := schemas.Validate(rel); err != nil {
		t.Error(err)
	}
	if a := out[0].Alert; a.Status != schemas.AlertResolved || a.DedupeKey != enforcement.DedupeKey("customer:acme") || a.DecisionID != first.DecisionID {
		t.Errorf("resolved alert %+v", a)
	}
	// The evidence restarted at the decision: the old complaint does not
	// decide again after the release.
	if out := feed(e, c.now(), deliveries(10, "acme", "", "gmail", c.now())...); len(out) != 0 {
		t.Fatalf("old evidence decided again: %v", kinds(out))
	}
	c.advance(time.Hour)
	second := offend()
	if second.Offence != 2 || second.Until.Sub(second.DecidedAt) != 24*time.Hour {
		t.Errorf("second: %+v", second.DecisionTerm)
	}
	c.advance(25 * time.Hour)
	e.Tick(c.now())
	third := offend()
	if third.Offence != 3 || !third.Until.IsZero() || third.DurationMs != 0 {
		t.Errorf("third lasts until lifted: %+v", third.DecisionTerm)
	}
	c.advance(365 * 24 * time.Hour)
	if out := e.Tick(c.now()); len(out) != 0 {
		t.Errorf("a decision until lifted was released: %v", kinds(out))
	}
	// A lift event ends it, with a resolved notice.
	lift := &schemas.DecisionLift{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDecisionLift, Time: c.now()}, EndedDecision: third.Ended(c.now()), LiftedBy: "ops"}
	out = feed(e, c.now(), lift)
	if len(out) != 1 || out[0].Kind != OutLifted || out[0].Alert.Status != schemas.AlertResolved {
		t.Fatalf("lift: %v", kinds(out))
	}
	// Memory is 30 d: a year later this is a first offence again.
	c.advance(time.Hour)
	if again := offend(); again.Offence != 1 {
		t.Errorf("offence after the memory window = %d, want 1", again.Offence)
	}
}

func TestDuplicateEventsCountOnce(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Customer.ActCount = 2
	cfg.Customer.WarnRate, cfg.Customer.ActRate = 0, 0
	cfg.CustomerProvider.Act = false
	e := NewEngine(cfg, src)
	comp := complaint("acme", "", "gmail", c.now())
	for range 5 {
		if out := feed(e, c.now(), comp); len(decisionsIn(out)) != 0 {
			t.Fatal("a complaint delivered again was counted again")
		}
	}
	if e.Stats().Duplicates != 4 {
		t.Errorf("duplicates = %d, want 4", e.Stats().Duplicates)
	}
	d := delivery("acme", "", "gmail", schemas.StatusSent, c.now())
	feed(e, c.now(), d, d, d)
	if got := e.subjects["customer:acme"].windows[0].Sum(c.now()).Delivered; got != 1 {
		t.Errorf("delivered = %d, want 1", got)
	}
	// Uncounted complaints (not-spam etc.) do not count.
	nc := complaint("acme", "", "gmail", c.now())
	nc.Counted = false
	feed(e, c.now(), nc)
	if got := e.subjects["customer:acme"].windows[0].Sum(c.now()).Complaints; got != 1 {
		t.Errorf("complaints = %d, want 1", got)
	}
}

// TestUntrustedComplaintsDoNotCount: a counted complaint from a report
// whose origin was not verified (anyone can send one) neither warns nor
// decides; the same complaints from a verified origin do.
func TestUntrustedComplaintsDoNotCount(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Customer.ActCount = 4
	cfg.Customer.WarnCount = 1
	cfg.Customer.WarnRate, cfg.Customer.ActRate = 0, 0
	cfg.CustomerProvider.Act = false
	e := NewEngine(cfg, src)
	for range 10 {
		forged := complaint("acme", "", "yahoo", c.now())
		forged.Trusted, forged.Trust = false, schemas.TrustUnverified
		if out := feed(e, c.now(), forged); len(out) != 0 {
			t.Fatalf("an untrusted complaint produced %+v", out)
		}
	}
	if st, ok := e.subjects["customer:acme"]; ok && st.windows[0].Sum(c.now()).Complaints != 0 {
		t.Fatalf("untrusted complaints counted: %d", st.windows[0].Sum(c.now()).Complaints)
	}
	out := feed(e, c.now(), complaints(4, "acme", "", "yahoo", c.now())...)
	if recs := decisionsIn(out); len(recs) != 1 || recs[0].Evidence.Complaints != 4 {
		t.Fatalf("trusted complaints: %+v, want one decision on 4", recs)
	}
}

func TestPartitionsSplitSubjects(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Customer.ActCount = 1
	single := NewEngine(cfg, src)
	var parts []*Engine
	for i := range 2 {
		pc := cfg
		pc.Partitions, pc.Partition = 2, i
		parts = append(parts, NewEngine(pc, src))
	}
	var evs []schemas.Event
	for i := range 40 {
		cust := fmt.Sprintf("cust-%02d", i)
		ip := fmt.Sprintf("192.0.2.%d", i%7)
		evs = append(evs, deliveries(120, cust, ip, "gmail", c.now())...)
		evs = append(evs, complaint(cust, ip, "gmail", c.now()))
	}
	want := map[string]bool{}
	for _, r := range decisionsIn(feed(single, c.now(), evs...)) {
		want[r.Subject] = true
	}
	got := map[string]int{}
	for i, p := range parts {
		for _, r := range decisionsIn(feed(p, c.now(), evs...)) {
			got[r.Subject]++
			if r.SubjectOf().Partition(2) != i {
				t.Errorf("partition %d decided on %s of partition %d", i, r.Subject, r.SubjectOf().Partition(2))
			}
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("two partitions decided %d subjects, one engine %d", len(got), len(want))
	}
	for s, n := range got {
		if n != 1 || !want[s] {
			t.Errorf("%s decided %d times (single engine: %v)", s, n, want[s])
		}
	}
	if parts[0].Subjects()+parts[1].Subjects() != single.Subjects() {
		t.Errorf("partitions hold %d + %d subjects, single %d: some are counted twice", parts[0].Subjects(), parts[1].Subjects(), single.Subjects())
	}
}

// A restart rebuilds the same state from the streams: the decisions
// first (offences, what is in force), then the signals, judged only once
// the replay is over.
func TestReplayRebuildsWithoutDoubleCounting(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.CustomerProvider.Act = false
	live := NewEngine(cfg, src)
	var history []schemas.Event // what the streams hold, in order
	observe := func(evs ...schemas.Event) []Output {
		history = append(history, evs...)
		out := feed(live, c.now(), evs...)
		for _, o := range out {
			switch o.Kind {
			case OutDecide:
				history = append(history, o.Record.Event())
			case OutRelease:
				history = append(history, o.Release)
			}
		}
		return out
	}
	observe(deliveries(100, "acme", "", "gmail", c.now())...)
	first := decisionsIn(observe(complaint("acme", "", "gmail", c.now())))
	if len(first) != 1 {
		t.Fatal("no first decision")
	}
	c.advance(7 * time.Hour)
	for _, o := range live.Tick(c.now()) {
		history = append(history, o.Release)
	}
	observe(deliveries(500, "acme", "", "gmail", c.now())...)
	observe(complaints(1, "acme", "", "gmail", c.now())...) // 1/500: warn only

	// Restart: replay decisions, then signals, each message once.
	re := NewEngine(cfg, src)
	re.Replaying = true
	for _, ev := range history {
		switch ev.(type) {
		case *schemas.DecisionCutoff, *schemas.DecisionReroute, *schemas.DecisionRelease, *schemas.DecisionLift:
			if out := re.Observe(ev, c.now(), true); len(out) != 0 {
				t.Fatalf("replayed decision produced %v", kinds(out))
			}
		}
	}
	for _, ev := range history {
		if out := re.Observe(ev, c.now(), true); len(out) != 0 {
			t.Fatalf("replay produced %v before it was over", kinds(out))
		}
	}
	re.Replaying = false
	out := re.EvaluateAll(c.now())
	if len(decisionsIn(out)) != 0 {
		t.Fatalf("restart decided again on old evidence: %v", kinds(out))
	}
	got := re.subjects["customer:acme"].windows[0].Sum(c.now())
	want := live.subjects["customer:acme"].windows[0].Sum(c.now())
	if got != want {
		t.Errorf("rebuilt window %+v, live %+v", got, want)
	}
	// One more complaint: 2/500 = 0.4 % — the second offence, as live.
	more := complaint("acme", "", "gmail", c.now())
	a := decisionsIn(re.Observe(more, c.now(), false))
	b := decisionsIn(feed(live, c.now(), more))
	if len(a) != 1 || len(b) != 1 || a[0].Offence != 2 || b[0].Offence != 2 {
		t.Fatalf("after restart %+v, live %+v: want offence 2 in both", a, b)
	}
}

func TestAdoptFromBucket(t *testing.T) {
	c := &clock{t: t0}
	e := NewEngine(testConfig(), src)
	rec := enforcement.Record{
		DecisionID: enforcement.StableID(c.now(), "x"), Action: schemas.ActionReroute,
		DecisionTarget: enforcement.Customer("acme").Target(), DecisionTerm: schemas.DecisionTerm{Rule: RuleComplaintRate, Offence: 1, Until: c.at(time.Hour)},
		DecidedAt: c.now(), Transport: "ndr", Source: src,
	}
	out := e.Adopt(rec, c.now())
	if len(out) != 1 || out[0].Kind != OutRepublish {
		t.Fatalf("unknown record in the bucket: %v, want republish", kinds(out))
	}
	if out := e.Adopt(rec, c.now()); len(out) != 0 {
		t.Errorf("adopted twice: %v", kinds(out))
	}
	if _, ok := e.Active(enforcement.Customer("acme"), c.now()); !ok {
		t.Error("adopted decision not in force")
	}
	c.advance(2 * time.Hour)
	if out := e.Tick(c.now()); len(out) != 1 || out[0].Kind != OutRelease {
		t.Errorf("adopted decision not released: %v", kinds(out))
	}
}

func TestBlocklistRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.Blocklist.MinWeight = 2
	listing := func(weight float64) *schemas.DNSBLListed {
		return &schemas.DNSBLListed{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDNSBLListed, Time: c.now()},
			DNSBLLookup: schemas.DNSBLLookup{Target: "192.0.2.7", TargetKind: schemas.TargetIP, SourceIP: "192.0.2.7", Zone: "zen.example", List: "Zen", Weight: weight},
			AnswerCodes: []string{"127.0.0.2"}, AnswerMeanings: []string{"SBL"}, PreviousState: schemas.StateClean, SweepID: "s", Resolver: "r"}
	}
	e := NewEngine(cfg, src)
	if out := feed(e, c.now(), listing(1)); len(out) != 0 {
		t.Errorf("low-weight listing: %v", kinds(out))
	}
	out := feed(e, c.now(), listing(3))
	if len(out) != 1 || out[0].Kind != OutAlert || out[0].Alert.Subject != "ip:192.0.2.7" || out[0].Alert.Rule != RuleBlocklist {
		t.Fatalf("listing alert: %+v", out)
	}
	cfg.Blocklist.Act = true
	e = NewEngine(cfg, src)
	recs := decisionsIn(feed(e, c.now(), listing(3)))
	if len(recs) != 1 || recs[0].Action != schemas.ActionReroute || recs[0].Transport != "ndr" || recs[0].Scope != schemas.ScopeSourceIP {
		t.Fatalf("acting listing: %+v", recs)
	}
	if err := schemas.Validate(recs[0].Event()); err != nil {
		t.Error(err)
	}
}

func TestRejectionBurstRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.RejectionBurst.MinRejections = 5
	e := NewEngine(cfg, src)
	rej := func(provider, category string) *schemas.DeliveryAttempted {
		d := delivery("acme", "192.0.2.9", provider, schemas.StatusDeferred, c.now())
		d.Category = category
		return d
	}
	var out []Output
	for range 4 {
		out = append(out, feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist"), rej("gmail", "blocked_ip_or_blocklist"), rej("outlook", "user_unknown"))...)
	}
	if len(out) != 0 {
		t.Fatalf("under the burst: %v", kinds(out))
	}
	out = feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist"))
	if len(out) != 1 || out[0].Alert.Rule != RuleRejectionBurst || out[0].Alert.Subject != "ip:192.0.2.9" {
		t.Fatalf("burst: %+v", out)
	}
	// Each provider's burst is a condition of its own, named by the dedupe
	// key that the notifier and Alertmanager group on.
	if got, want := out[0].Alert.DedupeKey, "rejection_burst/ip:192.0.2.9/outlook"; got != want {
		t.Errorf("dedupe key %q, want %q", got, want)
	}
	if out := feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist")); len(out) != 0 {
		t.Errorf("alerted twice for one burst: %v", kinds(out))
	}
	// The burst window is 15 min: an hour later it has passed, and the
	// next burst alerts again.
	c.advance(time.Hour)
	feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist")) // judged below the limit: re-arms
	for range 3 {
		out = feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist"))
	}
	if out = feed(e, c.now(), rej("outlook", "blocked_ip_or_blocklist")); len(out) != 1 {
		t.Errorf("second burst: %v", kinds(out))
	}
}

func TestProbeMissingRule(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.ProbeMissing.MinProviders = 2
	cfg.ProbeMissing.Act = true
	cfg.ProbeMissingProvider.Enabled = false
	e := NewEngine(cfg, src)
	missing := func(provider string) *schemas.ProbeMissing {
		return &schemas.ProbeMissing{Header: schemas.Header{ID: nextID(), Type: schemas.TypeProbeMissing, Time: c.now()},
			ProbeRoute: schemas.ProbeRoute{ProbeID: "p", SourceIP: "192.0.2.3", Provider: provider, RecipientDomain: provider + ".test", Route: "r"}}
	}
	if out := feed(e, c.now(), missing("gmail"), missing("gmail")); len(out) != 0 {
		t.Fatalf("one provider: %v", kinds(out))
	}
	recs := decisionsIn(feed(e, c.now(), missing("yahoo")))
	if len(recs) != 1 || recs[0].Rule != RuleProbeMissing || recs[0].Subject != "ip:192.0.2.3" {
		t.Fatalf("missing at two providers: %+v", recs)
	}
}

func TestStableIDs(t *testing.T) {
	a := enforcement.StableID(t0, "decision", "customer:acme")
	b := enforcement.StableID(t0, "decision", "customer:acme")
	c := enforcement.StableID(t0, "decision", "customer:other")
	if a != b || a == c {
		t.Errorf("ids %s %s %s", a, b, c)
	}
	rel := &schemas.DecisionRelease{Header: schemas.Header{ID: a, Type: schemas.TypeDecisionRelease, Time: t0, Source: src},
		EndedDecision: schemas.EndedDecision{DecisionID: c, Action: schemas.ActionCutoff, DecisionTarget: enforcement.Customer("acme").Target(), Rule: "r", DecidedAt: t0}}
	if err := schemas.Validate(rel); err != nil {
		t.Error(err)
	}
}

// While deliveries lag, complaints are counted but not judged; the
// judgment comes once they caught up, against the whole denominator.
func TestHoldDefersJudgment(t *testing.T) {
	c := &clock{t: t0}
	cfg := testConfig()
	cfg.CustomerProvider.Act = false
	e := NewEngine(cfg, src)
	feed(e, c.now(), deliveries(100, "acme", "", "gmail", c.now())...)
	e.Hold = true
	if out := feed(e, c.now(), complaint("acme", "", "gmail", c.now())); len(out) != 0 {
		t.Fatalf("judged while holding: %v", kinds(out))
	}
	// The lagging deliveries arrive: 1 / 1000 is only 0.1 %.
	feed(e, c.now(), deliveries(900, "acme", "", "gmail", c.now())...)
	e.Hold = false
	out := e.EvaluateAll(c.now())
	if len(decisionsIn(out)) != 0 {
		t.Fatalf("decided on a stale denominator: %v", kinds(out))
	}
	for _, o := range out { // customer and customer x provider
		if o.Kind != OutAlert || o.Alert.Severity != schemas.AlertWarning {
			t.Errorf("after the hold: %v, want warnings", kinds(out))
		}
	}
	if len(out) == 0 {
		t.Error("nothing judged after the hold")
	}
}
