// Package consoletest seeds a ClickHouse database (and the NATS KV buckets
// the console reads) with a small, known set of raw events, and returns
// the figures the console's pages must show for them: the truth the
// console's own tests and its browser tests compare the pages against.
//
// Seed inserts raw events only; the rollups the console reads fill
// through their materialised views, as they do in production. Every row
// is inserted once (the rollups count rows inserted). The figures in
// Truth are computed here, in Go, from the events Seed inserted, never
// read back from ClickHouse.
//
// The data, for the default range (the 24 hours before now):
//
//   - SourceIP 192.0.2.10 sends for customer acme to provider gmail:
//     970 sent, 20 deferred (rate_limited) and 10 bounced
//     (blocked_ip_or_blocklist) in the last hour: 97.0 % delivered,
//     2.0 % deferred. The seven days before the range hold 100 attempts a
//     day with known deferral rates (the 7-day baseline).
//   - 4 trusted complaints (and 1 untrusted one, not counted) from acme's
//     gmail recipients: 4/970 = 0.41 %, above the default act threshold.
//   - 5 probes from 192.0.2.10 to gmail: 3 inbox, 1 spam, 1 missing; the
//     last one is in the inbox.
//   - 192.0.2.10 listed on b.barracudacentral.org two hours ago (TXT and
//     delist link), and an older listing on psbl.surriel.com that ended.
//   - A reroute decision in force on customer:acme/provider:gmail, an
//     older cut-off of customer:beta that expired.
//   - Alerts: one firing, one fired and resolved, one silenced.
//   - A clean cell: 192.0.2.11 sends 200 messages for beta to yahoo, all
//     delivered, probes in the inbox.
//   - One message to trace by tracking id, queue id or recipient: deferred
//     once, then delivered, then complained about; another delivered, then
//     bounced in a DSN.
//   - DNS audits: the IP passes, the domain example.com lacks DMARC.
package consoletest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
)

// The seeded names.
const (
	SourceIP      = "192.0.2.10"
	Provider      = "gmail"
	Customer      = "acme"
	CleanIP       = "192.0.2.11"
	CleanProvider = "yahoo"
	CleanCustomer = "beta"

	ListedZone     = "b.barracudacentral.org"
	ListedTXT      = "Client host 192.0.2.10 blocked using Barracuda Reputation"
	ListedDelist   = "https://www.barracudacentral.org/rbl/removal-request/192.0.2.10"
	DelistedZone   = "psbl.surriel.com"
	AuditDomain    = "example.com"
	DecisionSubjct = "customer:acme/provider:gmail"

	TraceTrackingID = "trk-seed-0001"
	TraceQueueID    = "4SEEDQ0001"
	TraceRecipient  = "alice@gmail.com"
	TraceProbeID    = "probe-seed-0005"
	// TraceBounceTrackingID is a message the remote accepted and then
	// bounced in a DSN (bounce_received).
	TraceBounceTrackingID = "trk-00500"
)

// DefaultRange is the range the Truth figures are for: the console's
// default, the 24 hours before now.
const DefaultRange = 24 * time.Hour

// Truth is what the console must show for the seeded events with the
// default range and no filters. Percentages are percent (97.0 means
// 97.0 %); the HTML pages print them with one decimal ("97.0 %") and
// complaint rates with two ("0.41 %").
type Truth struct {
	// Now is the time Seed was given, in UTC, to the second.
	Now time.Time
	// From and To bound the default range as the console computes it:
	// Now minus 24 h rounded down to 5 minutes, and Now.
	From, To time.Time

	// Cell is the overview cell SourceIP × Provider; CustomerCell the
	// cell Customer × Provider of ?by=customer (the same delivery and
	// complaint figures: acme sends only from SourceIP; no listings and no
	// probe figures, which belong to IPs); CleanCell is CleanIP ×
	// CleanProvider.
	Cell, CustomerCell, CleanCell Cell

	// Probes are the per provider × source probe figures over the range.
	Probes []ProbeRow
	// Deliveries are the attempt counts by status over the range, summed
	// over every provider, IP and customer.
	Deliveries map[string]uint64
	// Rejections are the deferrals and failures by category over the range.
	Rejections map[string]uint64
	// TopReply is the most frequent remote reply of Customer at Provider.
	TopReply Reply

	// Listings are the current listings; DelistedZone's listing of
	// SourceIP ended and is only in the history.
	Listings []Listing
	// History is every listing and delisting event in the range, newest first.
	History []ListingEvent
	// Audits are the latest DNS audit per target.
	Audits []Audit

	// Complaints are the complaint rates per customer × provider.
	Complaints []ComplaintRow
	// Decision is the decision in force; DecisionHistory every decision
	// made in the range, newest first.
	Decision        Decision
	DecisionHistory []Decision

	// Alerts by state.
	Firing, Resolved, Silenced []Alert
	// Silences are the silences SeedKV stores that are active or pending
	// (an expired one is stored too and must not show).
	Silences []Silence

	// Trace is the journey of TraceTrackingID (also found by
	// TraceQueueID and TraceRecipient); ProbeTrace that of TraceProbeID.
	Trace      []TraceStep
	ProbeTrace []TraceStep
	// BounceTrace is the journey of TraceBounceTrackingID: delivered,
	// then bounced asynchronously, then the decision over its customer.
	BounceTrace []TraceStep
}

// Cell is one cell of the overview matrix.
type Cell struct {
	Row      string // the IP, or the customer with ?by=customer
	Provider string

	Attempts, Sent, Deferred, Failed uint64
	DeliveredPct, DeferredPct        float64
	// Baseline*Pct are the medians of the daily rates of the 7 UTC days
	// before the range's first day (days with attempts only).
	BaselineDeliveredPct, BaselineDeferredPct float64
	// BaselineDays is how many of those days had attempts.
	BaselineDays int
	// TopRejection is the category of most deferrals and failures.
	TopRejection string

	// Listings are the zones listing the row's IP now (none by customer).
	Listings []string

	Complaints       uint64
	ComplaintRatePct float64 // complaints over sent
	// ComplaintLevel is "ok", "warn" or "act" against the evaluator's
	// thresholds of the cell's scope (source_ip by IP,
	// customer_provider by customer) with their default values.
	ComplaintLevel string

	// LastPlacement is the placement of the last probe ("inbox", "spam",
	// "missing"), LastLatencyMs its delivery latency.
	LastPlacement string
	LastLatencyMs float64

	// Enforcement are the subjects of the decisions in force that apply
	// to the cell.
	Enforcement []string
	// Signal is the worst signal: "ok", "warn" or "bad".
	Signal string
}

// ProbeRow is one provider × source line of the probes page.
type ProbeRow struct {
	Provider, SourceIP                string
	Sent, Inbox, Spam, Other, Missing uint64
	InboxPct, SpamPct, MissingPct     float64 // of received + missing
	LatencyP50Ms, LatencyP95Ms        float64 // over received probes
	LastPlacement                     string
	LastLatencyMs                     float64
}

// Reply is one line of the top remote replies.
type Reply struct {
	Provider, Customer, Status, Category, Signature, Sample string
	Attempts                                                uint64
}

// Listing is a current listing.
type Listing struct {
	Zone, Target, TargetKind, SourceIP, TXT, DelistURL string
	Since                                              time.Time
}

// ListingEvent is one listed or delisted event.
type ListingEvent struct {
	Time         time.Time
	Event        string // "listed" or "delisted"
	Zone, Target string
}

// Audit is the latest DNS audit of one target.
type Audit struct {
	Target, TargetKind, WorstSeverity string
	Time                              time.Time
	Checks, Severities, Messages      []string
}

// ComplaintRow is a customer × provider complaint rate.
type ComplaintRow struct {
	Customer, Provider string
	Complaints, Sent   uint64
	RatePct            float64
	Level              string // "ok", "warn" or "act"
	WarnPct, ActPct    float64
}

// Decision is one decision with its evidence.
type Decision struct {
	ID, Action, Scope, Subject, Rule string
	Time, Until                      time.Time
	Complaints, Delivered            uint64
	Rate, Threshold                  float64
	// LiftCommand is the command the page shows for a decision in force.
	LiftCommand string
}

// Alert is one alert_raised row.
type Alert struct {
	Rule, Status, Severity, Subject, Summary string
	Time                                     time.Time
	Silenced                                 bool
}

// Silence is a silence in the alert_silences bucket.
type Silence struct {
	ID            string
	Matchers      []string
	State         string // "active" or "pending"
	StartsAt      time.Time
	EndsAt        time.Time
	Comment       string
	CreatedBy     string
	ExpireCommand string
}

// TraceStep is one step of a message's journey.
type TraceStep struct {
	Time time.Time
	// Kind is "probe_sent", "probe_received", "probe_missing", "attempt",
	// "bounce", "complaint" or "decision".
	Kind   string
	Status string // the attempt status, placement, feedback type or action
	Detail string // the remote reply, folder, or decision subject
}

// Default thresholds of the complaint-evaluator (complaint_evaluator.*),
// the ones Truth's levels are judged against.
const (
	WarnRate = 0.001
	ActRate  = 0.003
)

// LiftCommand is the command the console shows to lift a decision.
func LiftCommand(subject string) string { return "mailmon enforcement lift " + subject }

type delivery struct {
	id, trackingID, customer, ip, provider, domain, queueID, recipient string
	status, dsn, reply, reason, category, signature                    string
	code                                                               uint16
	at                                                                 time.Time
}

// Seed applies the migrations to conn's database (idempotent), inserts
// the events described in the package doc relative to now, and returns
// the figures the console must show. Seed it into an empty database: the
// figures count only what Seed inserts.
func Seed(ctx context.Context, conn driver.Conn, now time.Time) (Truth, error) {
	now = now.UTC().Truncate(time.Second)
	var database string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&database); err != nil {
		return Truth{}, fmt.Errorf("consoletest: %w", err)
	}
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		return Truth{}, fmt.Errorf("consoletest: migrate: %w", err)
	}
	t := Truth{Now: now, From: now.Add(-DefaultRange).Truncate(5 * time.Minute), To: now}
	inRange := func(at time.Time) bool { return !at.Before(t.From) && !at.After(t.To) }
	min := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }

	// Deliveries.
	var ds []delivery
	add := func(d delivery) {
		d.id = fmt.Sprintf("seed-delivery-%05d", len(ds))
		if d.domain == "" {
			d.domain = "gmail.com"
		}
		if d.recipient == "" {
			d.recipient = fmt.Sprintf("user%d@%s", len(ds), d.domain)
		}
		if d.queueID == "" {
			d.queueID = fmt.Sprintf("SEEDQ%05d", len(ds))
		}
		if d.trackingID == "" {
			d.trackingID = fmt.Sprintf("trk-%05d", len(ds))
		}
		ds = append(ds, d)
	}
	const (
		deferReply  = "421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address."
		bounceReply = "550 5.7.1 Service unavailable; client host 192.0.2.10 blocked using b.barracudacentral.org"
	)
	deferred := func(at time.Time) delivery {
		return delivery{customer: Customer, ip: SourceIP, provider: Provider, status: schemas.StatusDeferred, dsn: "4.7.28", code: 421,
			reply: deferReply, reason: "speeding", category: "rate_limited", signature: "gmail-4.7.28", at: at}
	}
	sent := func(at time.Time) delivery {
		return delivery{customer: Customer, ip: SourceIP, provider: Provider, status: schemas.StatusSent, dsn: "2.0.0", code: 250,
			reply: "250 2.0.0 OK", reason: "delivered", category: "other", at: at}
	}
	// The traced message: deferred 40 minutes ago, delivered 30 minutes ago.
	tr1 := deferred(min(40))
	tr1.trackingID, tr1.queueID, tr1.recipient = TraceTrackingID, TraceQueueID, TraceRecipient
	add(tr1)
	tr2 := sent(min(30))
	tr2.trackingID, tr2.queueID, tr2.recipient = TraceTrackingID, TraceQueueID, TraceRecipient
	add(tr2)
	for i := 0; i < 969; i++ {
		add(sent(min(1 + i%50)))
	}
	for i := 0; i < 19; i++ {
		add(deferred(min(1 + i%50)))
	}
	for i := 0; i < 10; i++ {
		add(delivery{customer: Customer, ip: SourceIP, provider: Provider, status: schemas.StatusBounced, dsn: "5.7.1", code: 550,
			reply: bounceReply, reason: "blocked", category: "blocked_ip_or_blocklist", signature: "generic-5.7.1-blocklist", at: min(1 + i*5)})
	}
	for i := 0; i < 200; i++ {
		add(delivery{customer: CleanCustomer, ip: CleanIP, provider: CleanProvider, domain: "yahoo.com", status: schemas.StatusSent,
			dsn: "2.0.0", code: 250, reply: "250 ok dirdel", reason: "delivered", category: "other", at: min(1 + i%55)})
	}
	// The seven days before the range's first day: 100 attempts a day.
	firstDay := startOfDay(t.From)
	baselineDeferred := []int{1, 2, 3, 1, 2, 5, 1}
	for j, nDeferred := range baselineDeferred {
		day := firstDay.AddDate(0, 0, -(j + 1)).Add(12 * time.Hour)
		for i := 0; i < 100; i++ {
			if i < nDeferred {
				add(deferred(day.Add(time.Duration(i) * time.Second)))
			} else {
				add(sent(day.Add(time.Duration(i) * time.Second)))
			}
		}
	}
	if err := insertDeliveries(ctx, conn, ds); err != nil {
		return Truth{}, err
	}

	// An asynchronous bounce of a message the remote had accepted.
	const bounceDiagnostic = "550 5.1.1 The email account that you tried to reach does not exist"
	for _, d := range ds {
		if d.trackingID != TraceBounceTrackingID {
			continue
		}
		bouncedAt := d.at.Add(10 * time.Second)
		if err := insert(ctx, conn, "INSERT INTO bounce_received (id, type, time, tracking_id, customer, source_ip, provider, recipient_domain, recipient, action, status, reply_code, diagnostic, reason, category)", [][]any{
			{"seed-bounce-1", schemas.TypeBounceReceived, bouncedAt, d.trackingID, d.customer, d.ip, d.provider, d.domain, d.recipient, "failed", "5.1.1", uint16(550), bounceDiagnostic, "userunknown", "user_unknown"},
		}); err != nil {
			return Truth{}, err
		}
		t.BounceTrace = []TraceStep{
			{Time: d.at, Kind: "attempt", Status: d.status, Detail: d.reply},
			{Time: bouncedAt, Kind: "bounce", Status: "5.1.1", Detail: bounceDiagnostic},
		}
	}

	// Probes: sent, received, missing.
	type probe struct {
		id, ip, provider, placement, folder string
		latencyMs                           int64
		at                                  time.Time // arrival or deadline
		sentAt                              time.Time
	}
	probes := []probe{
		{id: "probe-seed-0001", ip: SourceIP, provider: Provider, placement: schemas.PlacementSpam, folder: "[Gmail]/Spam", latencyMs: 3000, at: min(50)},
		{id: "probe-seed-0002", ip: SourceIP, provider: Provider, placement: "missing", at: min(40)},
		{id: "probe-seed-0003", ip: SourceIP, provider: Provider, placement: schemas.PlacementInbox, folder: "INBOX", latencyMs: 2000, at: min(30)},
		{id: "probe-seed-0004", ip: SourceIP, provider: Provider, placement: schemas.PlacementInbox, folder: "INBOX", latencyMs: 4000, at: min(20)},
		{id: TraceProbeID, ip: SourceIP, provider: Provider, placement: schemas.PlacementInbox, folder: "INBOX", latencyMs: 1000, at: min(5)},
		{id: "probe-seed-0006", ip: CleanIP, provider: CleanProvider, placement: schemas.PlacementInbox, folder: "Inbox", latencyMs: 1500, at: min(25)},
		{id: "probe-seed-0007", ip: CleanIP, provider: CleanProvider, placement: schemas.PlacementInbox, folder: "Inbox", latencyMs: 2500, at: min(10)},
	}
	for i := range probes {
		p := &probes[i]
		if p.placement == "missing" {
			p.sentAt = p.at.Add(-15 * time.Minute)
		} else {
			p.sentAt = p.at.Add(-time.Duration(p.latencyMs) * time.Millisecond)
		}
	}
	var sentRows, recvRows, missRows [][]any
	for _, p := range probes {
		domain := p.provider + ".example"
		sentRows = append(sentRows, []any{p.id + "-sent", schemas.TypeProbeSent, p.sentAt, p.id, "trk-" + p.id, p.ip, p.provider, domain, "seed@" + domain, schemas.OutcomeAccepted, "Q" + p.id})
		if p.placement == "missing" {
			missRows = append(missRows, []any{p.id + "-missing", schemas.TypeProbeMissing, p.at, p.id, "trk-" + p.id, p.ip, p.provider, domain, "seed@" + domain, p.sentAt, int64(15 * 60 * 1000)})
			continue
		}
		recvRows = append(recvRows, []any{p.id + "-received", schemas.TypeProbeReceived, p.at, p.id, "trk-" + p.id, p.ip, p.provider, domain, "seed@" + domain, p.placement, p.folder, p.sentAt, p.at, p.latencyMs})
	}
	if err := insert(ctx, conn, "INSERT INTO probe_sent (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, outcome, queue_id)", sentRows); err != nil {
		return Truth{}, err
	}
	if err := insert(ctx, conn, "INSERT INTO probe_received (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, placement, folder, sent_at, arrived_at, latency_ms)", recvRows); err != nil {
		return Truth{}, err
	}
	if err := insert(ctx, conn, "INSERT INTO probe_missing (id, type, time, probe_id, tracking_id, source_ip, provider, recipient_domain, seed_address, sent_at, deadline_ms)", missRows); err != nil {
		return Truth{}, err
	}

	// Complaints: 4 trusted and counted, one forged. The first is about
	// the traced message.
	type complaint struct {
		id, trackingID string
		trusted        uint8
		at             time.Time
	}
	complaints := []complaint{
		{"seed-complaint-1", TraceTrackingID, 1, min(25)},
		{"seed-complaint-2", "trk-00100", 1, min(24)},
		{"seed-complaint-3", "trk-00200", 1, min(23)},
		{"seed-complaint-4", "trk-00300", 1, min(22)},
		{"seed-complaint-5", "trk-00400", 0, min(21)},
	}
	var complaintRows [][]any
	for _, c := range complaints {
		complaintRows = append(complaintRows, []any{c.id, schemas.TypeComplaintReceived, c.at, c.trackingID, Customer, SourceIP, Provider, "gmail.com",
			uint8(1), c.trusted, "abuse", "Weekly offers from acme"})
	}
	if err := insert(ctx, conn, "INSERT INTO complaint_received (id, type, time, tracking_id, customer, source_ip, provider, recipient_domain, counted, trusted, feedback_type, original_subject)", complaintRows); err != nil {
		return Truth{}, err
	}

	// Listings.
	listedAt := now.Add(-2 * time.Hour)
	oldListed, oldDelisted := now.Add(-20*time.Hour), now.Add(-10*time.Hour)
	if err := insert(ctx, conn, "INSERT INTO dnsbl_listed (id, type, time, target, target_kind, source_ip, zone, list, weight, txt, delist_url)", [][]any{
		{"seed-listed-1", schemas.TypeDNSBLListed, oldListed, SourceIP, "ip", SourceIP, DelistedZone, "PSBL", 1.0, "Listed in PSBL", "https://psbl.org/listing?ip=192.0.2.10"},
		{"seed-listed-2", schemas.TypeDNSBLListed, listedAt, SourceIP, "ip", SourceIP, ListedZone, "Barracuda", 1.0, ListedTXT, ListedDelist},
	}); err != nil {
		return Truth{}, err
	}
	if err := insert(ctx, conn, "INSERT INTO dnsbl_delisted (id, type, time, target, target_kind, source_ip, zone, list, weight, listed_since)", [][]any{
		{"seed-delisted-1", schemas.TypeDNSBLDelisted, oldDelisted, SourceIP, "ip", SourceIP, DelistedZone, "PSBL", 1.0, oldListed},
	}); err != nil {
		return Truth{}, err
	}
	t.Listings = []Listing{{Zone: ListedZone, Target: SourceIP, TargetKind: "ip", SourceIP: SourceIP, TXT: ListedTXT, DelistURL: ListedDelist, Since: listedAt}}
	t.History = []ListingEvent{
		{Time: listedAt, Event: "listed", Zone: ListedZone, Target: SourceIP},
		{Time: oldDelisted, Event: "delisted", Zone: DelistedZone, Target: SourceIP},
		{Time: oldListed, Event: "listed", Zone: DelistedZone, Target: SourceIP},
	}

	// DNS audits: an older and a newer audit of the IP, one of the domain.
	auditRows := [][]any{
		{"seed-audit-1", schemas.TypeDNSAudit, now.Add(-3 * time.Hour), "audit-1", SourceIP, "ip", SourceIP, "critical", []string{"ptr"}, []string{"critical"}, []string{"no PTR record"}},
		{"seed-audit-2", schemas.TypeDNSAudit, now.Add(-1 * time.Hour), "audit-2", SourceIP, "ip", SourceIP, "ok", []string{}, []string{}, []string{}},
		{"seed-audit-3", schemas.TypeDNSAudit, now.Add(-1 * time.Hour), "audit-2", AuditDomain, "domain", "", "critical", []string{"dmarc"}, []string{"critical"}, []string{"no DMARC record at _dmarc.example.com"}},
	}
	if err := insert(ctx, conn, "INSERT INTO dns_audit (id, type, time, audit_id, target, target_kind, source_ip, worst_severity, finding_checks, finding_severities, finding_messages)", auditRows); err != nil {
		return Truth{}, err
	}
	t.Audits = []Audit{
		{Target: SourceIP, TargetKind: "ip", WorstSeverity: "ok", Time: now.Add(-1 * time.Hour), Checks: []string{}, Severities: []string{}, Messages: []string{}},
		{Target: AuditDomain, TargetKind: "domain", WorstSeverity: "critical", Time: now.Add(-1 * time.Hour), Checks: []string{"dmarc"}, Severities: []string{"critical"}, Messages: []string{"no DMARC record at _dmarc.example.com"}},
	}
	sort.Slice(t.Audits, func(i, j int) bool { return t.Audits[i].Target < t.Audits[j].Target })

	// Decisions: one in force, one expired.
	var counted uint64
	for _, c := range complaints {
		if c.trusted == 1 {
			counted++
		}
	}
	var acmeSent uint64
	for _, d := range ds {
		if d.customer == Customer && d.provider == Provider && d.status == schemas.StatusSent && inRange(d.at) {
			acmeSent++
		}
	}
	decidedAt := min(20)
	t.Decision = Decision{ID: "seed-decision-1", Action: schemas.ActionReroute, Scope: schemas.ScopeCustomerProvider, Subject: DecisionSubjct,
		Rule: "complaint_rate", Time: decidedAt, Until: decidedAt.Add(6 * time.Hour), Complaints: counted, Delivered: acmeSent,
		Rate: float64(counted) / float64(acmeSent), Threshold: ActRate, LiftCommand: LiftCommand(DecisionSubjct)}
	old := Decision{ID: "seed-decision-0", Action: schemas.ActionCutoff, Scope: schemas.ScopeCustomer, Subject: "customer:" + CleanCustomer,
		Rule: "complaint_count", Time: now.Add(-20 * time.Hour), Until: now.Add(-14 * time.Hour), Complaints: 12, Delivered: 3000, Rate: 0.004, Threshold: 10}
	t.DecisionHistory = []Decision{t.Decision, old}
	if err := insert(ctx, conn, "INSERT INTO decision_reroute (id, type, time, scope, subject, customer, provider, rule, offence, until, duration_ms, transport, window_ms, complaints, delivered, rate, threshold, sample_complaint_ids)", [][]any{
		{t.Decision.ID, schemas.TypeDecisionReroute, t.Decision.Time, t.Decision.Scope, t.Decision.Subject, Customer, Provider, t.Decision.Rule, uint16(1),
			t.Decision.Until, int64(6 * time.Hour / time.Millisecond), "ndr", int64(time.Hour / time.Millisecond), t.Decision.Complaints, t.Decision.Delivered,
			t.Decision.Rate, t.Decision.Threshold, []string{"seed-complaint-1", "seed-complaint-2"}},
	}); err != nil {
		return Truth{}, err
	}
	if err := insert(ctx, conn, "INSERT INTO decision_cutoff (id, type, time, scope, subject, customer, rule, offence, until, duration_ms, policy_action, window_ms, complaints, delivered, rate, threshold)", [][]any{
		{old.ID, schemas.TypeDecisionCutoff, old.Time, old.Scope, old.Subject, CleanCustomer, old.Rule, uint16(1), old.Until, int64(6 * time.Hour / time.Millisecond),
			"DEFER_IF_PERMIT", int64(24 * time.Hour / time.Millisecond), old.Complaints, old.Delivered, old.Rate, old.Threshold},
	}); err != nil {
		return Truth{}, err
	}
	if err := insert(ctx, conn, "INSERT INTO decision_release (id, type, time, decision_id, action, scope, subject, customer, rule, offence, decided_at, held_ms)", [][]any{
		{"seed-release-0", schemas.TypeDecisionRelease, old.Until, old.ID, old.Action, old.Scope, old.Subject, CleanCustomer, old.Rule, uint16(1), old.Time, int64(6 * time.Hour / time.Millisecond)},
	}); err != nil {
		return Truth{}, err
	}

	// Alerts.
	t.Firing = []Alert{{Rule: "complaint_rate", Status: schemas.AlertFiring, Severity: schemas.AlertCritical, Subject: DecisionSubjct,
		Summary: "complaint rate 0.41 % above 0.30 % for customer:acme/provider:gmail", Time: decidedAt}}
	t.Resolved = []Alert{{Rule: "dnsbl_listed", Status: schemas.AlertResolved, Severity: schemas.AlertCritical, Subject: "ip:" + SourceIP,
		Summary: "192.0.2.10 no longer listed on psbl.surriel.com", Time: oldDelisted}}
	t.Silenced = []Alert{{Rule: "probe_in_spam", Status: schemas.AlertFiring, Severity: schemas.AlertWarning, Subject: "ip:" + CleanIP,
		Summary: "probes from 192.0.2.11 in spam at yahoo", Time: min(45), Silenced: true}}
	alertRows := [][]any{}
	addAlert := func(id string, a Alert) {
		var silenced uint8
		if a.Silenced {
			silenced = 1
		}
		alertRows = append(alertRows, []any{id, schemas.TypeAlertRaised, a.Time, a.Rule, a.Status, a.Severity, a.Subject, a.Summary, a.Rule + "/" + a.Subject, silenced})
	}
	t.Silences = []Silence{
		{ID: "seed-silence-active", Matchers: []string{"rule=probe_in_spam", "source_ip=" + CleanIP}, State: "active",
			StartsAt: min(60), EndsAt: now.Add(2 * time.Hour), Comment: "yahoo seed mailbox moved", CreatedBy: "ops",
			ExpireCommand: "mailmon silence expire seed-silence-active"},
		{ID: "seed-silence-pending", Matchers: []string{"provider=gmail"}, State: "pending",
			StartsAt: now.Add(3 * time.Hour), EndsAt: now.Add(5 * time.Hour), Comment: "gmail maintenance window", CreatedBy: "ops",
			ExpireCommand: "mailmon silence expire seed-silence-pending"},
	}
	addAlert("seed-alert-1", t.Firing[0])
	addAlert("seed-alert-2", Alert{Rule: "dnsbl_listed", Status: schemas.AlertFiring, Severity: schemas.AlertCritical, Subject: "ip:" + SourceIP,
		Summary: "192.0.2.10 listed on psbl.surriel.com", Time: oldListed})
	addAlert("seed-alert-3", t.Resolved[0])
	addAlert("seed-alert-4", t.Silenced[0])
	if err := insert(ctx, conn, "INSERT INTO alert_raised (id, type, time, rule, status, severity, subject, summary, dedupe_key, silenced)", alertRows); err != nil {
		return Truth{}, err
	}

	// The figures.
	t.Deliveries = map[string]uint64{}
	t.Rejections = map[string]uint64{}
	for _, d := range ds {
		if !inRange(d.at) {
			continue
		}
		t.Deliveries[d.status]++
		if d.status != schemas.StatusSent {
			t.Rejections[d.category]++
		}
	}
	t.TopReply = Reply{Provider: Provider, Customer: Customer, Status: schemas.StatusDeferred, Category: "rate_limited", Signature: "gmail-4.7.28", Sample: deferReply}
	for _, d := range ds {
		if inRange(d.at) && d.customer == Customer && d.signature == t.TopReply.Signature {
			t.TopReply.Attempts++
		}
	}

	inForce := []string{DecisionSubjct}
	cell := func(row string, match func(delivery) bool, ip, provider string, complaintsIn uint64, warn, act float64, enf []string, listed []string) Cell {
		c := Cell{Row: row, Provider: provider, Listings: listed, Enforcement: enf}
		byCat := map[string]uint64{}
		daily := map[time.Time][3]uint64{} // attempts, sent, deferred
		for _, d := range ds {
			if !match(d) {
				continue
			}
			if inRange(d.at) {
				c.Attempts++
				switch d.status {
				case schemas.StatusSent:
					c.Sent++
				case schemas.StatusDeferred:
					c.Deferred++
					byCat[d.category]++
				default:
					c.Failed++
					byCat[d.category]++
				}
			}
			day := startOfDay(d.at)
			if !day.Before(firstDay.AddDate(0, 0, -7)) && day.Before(firstDay) {
				v := daily[day]
				v[0]++
				if d.status == schemas.StatusSent {
					v[1]++
				}
				if d.status == schemas.StatusDeferred {
					v[2]++
				}
				daily[day] = v
			}
		}
		c.DeliveredPct = pct(c.Sent, c.Attempts)
		c.DeferredPct = pct(c.Deferred, c.Attempts)
		var dRates, fRates []float64
		for _, v := range daily {
			dRates = append(dRates, pct(v[1], v[0]))
			fRates = append(fRates, pct(v[2], v[0]))
		}
		c.BaselineDeliveredPct, c.BaselineDeferredPct = Median(dRates), Median(fRates)
		c.BaselineDays = len(daily)
		c.TopRejection = topKey(byCat)
		c.Complaints = complaintsIn
		c.ComplaintRatePct = pct(complaintsIn, c.Sent)
		c.ComplaintLevel = Level(float64(complaintsIn)/float64(c.Sent), warn, act)
		for _, p := range probes { // probes are listed oldest first
			if p.ip == ip && p.provider == provider {
				c.LastPlacement, c.LastLatencyMs = p.placement, float64(p.latencyMs)
			}
		}
		c.Signal = "ok"
		if c.ComplaintLevel == "warn" || c.LastPlacement == schemas.PlacementSpam {
			c.Signal = "warn"
		}
		if len(c.Listings) > 0 || len(c.Enforcement) > 0 || c.ComplaintLevel == "act" || c.LastPlacement == "missing" {
			c.Signal = "bad"
		}
		return c
	}
	t.Cell = cell(SourceIP, func(d delivery) bool { return d.ip == SourceIP && d.provider == Provider }, SourceIP, Provider, counted, WarnRate, ActRate, inForce, []string{ListedZone})
	t.CustomerCell = cell(Customer, func(d delivery) bool { return d.customer == Customer && d.provider == Provider }, "", Provider, counted, WarnRate, ActRate, inForce, nil)
	t.CleanCell = cell(CleanIP, func(d delivery) bool { return d.ip == CleanIP && d.provider == CleanProvider }, CleanIP, CleanProvider, 0, WarnRate, ActRate, nil, nil)

	for _, key := range [][2]string{{Provider, SourceIP}, {CleanProvider, CleanIP}} {
		r := ProbeRow{Provider: key[0], SourceIP: key[1]}
		var lat []float64
		for _, p := range probes {
			if p.provider != r.Provider || p.ip != r.SourceIP {
				continue
			}
			r.Sent++
			switch p.placement {
			case schemas.PlacementInbox:
				r.Inbox++
			case schemas.PlacementSpam:
				r.Spam++
			case "missing":
				r.Missing++
			default:
				r.Other++
			}
			if p.placement != "missing" {
				lat = append(lat, float64(p.latencyMs))
			}
			r.LastPlacement, r.LastLatencyMs = p.placement, float64(p.latencyMs)
		}
		total := r.Inbox + r.Spam + r.Other + r.Missing
		r.InboxPct, r.SpamPct, r.MissingPct = pct(r.Inbox, total), pct(r.Spam, total), pct(r.Missing, total)
		r.LatencyP50Ms, r.LatencyP95Ms = Quantile(lat, 0.5), Quantile(lat, 0.95)
		t.Probes = append(t.Probes, r)
	}

	t.Complaints = []ComplaintRow{
		{Customer: Customer, Provider: Provider, Complaints: counted, Sent: acmeSent, RatePct: pct(counted, acmeSent),
			Level: Level(float64(counted)/float64(acmeSent), WarnRate, ActRate), WarnPct: WarnRate * 100, ActPct: ActRate * 100},
		{Customer: CleanCustomer, Provider: CleanProvider, Complaints: 0, Sent: t.CleanCell.Sent, RatePct: 0, Level: "ok", WarnPct: WarnRate * 100, ActPct: ActRate * 100},
	}

	t.Trace = []TraceStep{
		{Time: tr1.at, Kind: "attempt", Status: schemas.StatusDeferred, Detail: deferReply},
		{Time: tr2.at, Kind: "attempt", Status: schemas.StatusSent, Detail: tr2.reply},
		{Time: complaints[0].at, Kind: "complaint", Status: "abuse", Detail: "Weekly offers from acme"},
		{Time: decidedAt, Kind: "decision", Status: schemas.ActionReroute, Detail: DecisionSubjct},
	}
	// A decision over the message's customer and provider after it was
	// sent is part of its journey.
	if len(t.BounceTrace) > 0 && !t.Decision.Time.Before(t.BounceTrace[0].Time) {
		t.BounceTrace = append(t.BounceTrace, TraceStep{Time: t.Decision.Time, Kind: "decision", Status: t.Decision.Action, Detail: t.Decision.Subject})
	}
	last := probes[4]
	t.ProbeTrace = []TraceStep{
		{Time: last.sentAt, Kind: "probe_sent", Status: schemas.OutcomeAccepted, Detail: "seed@" + last.provider + ".example"},
		{Time: last.at, Kind: "probe_received", Status: last.placement, Detail: last.folder},
	}
	return t, nil
}

func insertDeliveries(ctx context.Context, conn driver.Conn, ds []delivery) error {
	rows := make([][]any, 0, len(ds))
	for _, d := range ds {
		rows = append(rows, []any{d.id, schemas.TypeDeliveryAttempted, d.at, d.trackingID, d.customer, d.ip, d.provider, d.domain, d.queueID,
			d.recipient, d.status, d.dsn, d.code, d.reply, d.reason, d.category, d.signature})
	}
	return insert(ctx, conn, "INSERT INTO delivery_attempted (id, type, time, tracking_id, customer, source_ip, provider, recipient_domain, queue_id, recipient, status, dsn, reply_code, reply, reason, category, signature)", rows)
}

// insert sends rows in one batch; the statement names its columns.
func insert(ctx context.Context, conn driver.Conn, statement string, rows [][]any) error {
	batch, err := conn.PrepareBatch(ctx, statement)
	if err != nil {
		return fmt.Errorf("consoletest: %s: %w", statement, err)
	}
	for _, row := range rows {
		if err := batch.Append(row...); err != nil {
			batch.Abort()
			return fmt.Errorf("consoletest: %s: append %v: %w", statement, row, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("consoletest: %s: %w", statement, err)
	}
	return nil
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func pct(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// Level judges a rate (a fraction) against warn and act thresholds.
func Level(rate, warn, act float64) string {
	switch {
	case act > 0 && rate >= act:
		return "act"
	case warn > 0 && rate >= warn:
		return "warn"
	}
	return "ok"
}

// Median is the median of vs (the mean of the middle two for an even
// count), 0 for none.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Quantile is ClickHouse's exact interpolated quantile of vs at level:
// the value at index level*(n-1), interpolated linearly between its
// neighbours.
func Quantile(vs []float64, level float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	idx := level * float64(len(s)-1)
	lo := math.Floor(idx)
	hi := math.Ceil(idx)
	return s[int(lo)] + (idx-lo)*(s[int(hi)]-s[int(lo)])
}

func topKey(m map[string]uint64) string {
	best, bestN := "", uint64(0)
	for k, n := range m {
		if n > bestN || n == bestN && k < best {
			best, bestN = k, n
		}
	}
	return best
}
