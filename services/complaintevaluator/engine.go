package complaintevaluator

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// OutputKind says what the worker must do for one Output.
type OutputKind int

const (
	// OutDecide: create the record in the KV bucket (with its TTL), then
	// publish the decision event and its alert. If the key already holds
	// another decision, adopt that one instead (Engine.Adopt).
	OutDecide OutputKind = iota
	// OutRepublish: the record is in the bucket already; publish the
	// decision event and its alert (a crash came between the two).
	OutRepublish
	// OutAlert: publish the alert.
	OutAlert
	// OutRelease: the decision expired. Delete the key if it still holds
	// this decision, then publish the release event and the resolved alert.
	OutRelease
	// OutLifted: an operator lifted the decision. Delete the key if it
	// still holds this decision, then publish the resolved alert.
	OutLifted
)

func (k OutputKind) String() string {
	return [...]string{"decide", "republish", "alert", "release", "lifted"}[k]
}

// Output is one side effect the engine asks the worker to carry out.
// Outputs are carried out in order, each retried until it succeeds; all of
// them are idempotent (event ids are derived from the decision).
type Output struct {
	Kind    OutputKind
	Record  *enforcement.Record
	Alert   *schemas.AlertRaised
	Release *schemas.DecisionRelease
}

// Engine is the complaint evaluator's state and logic, free of I/O and of
// clocks: every method takes the current time, and returns what the
// worker must do. It is not safe for concurrent use.
//
// Counting: a counted complaint adds to the windows of its customer, its
// sending IP and its customer × provider; a sent delivery adds to the
// same subjects' denominators. Only subjects this copy owns (its
// partition) are kept. After a decision on a subject, its windows restart:
// only events after the decision count towards the next one, so the same
// complaints never decide twice and a release is not followed at once by
// a new cut-off on the old evidence.
type Engine struct {
	cfg       Config
	src       schemas.Source
	subjects  map[string]*subjectState
	complaint *idSet
	delivery  *idSet
	// decisions remembers every decision id seen (in the stream or made
	// here) within the memory window, so a decision event read back is not
	// taken for a new one.
	decisions map[string]time.Time
	// ended remembers decision ids released or lifted, so a record read
	// from the bucket after its release is not adopted again.
	ended map[string]time.Time
	// Replaying suppresses rule evaluation while state is rebuilt from the
	// streams; EvaluateAll judges every subject once it is over.
	Replaying bool
	// Hold defers complaint judgments while the deliveries (the rates'
	// denominators) lag behind; EvaluateAll catches up when it ends.
	Hold   bool
	lastGC time.Time
	stats  Stats
	// alerts is the state of the rules that only alert (alertrules.go).
	alerts alertState
}

// Stats counts what the engine saw.
type Stats struct {
	Complaints, Deliveries, Listings, Missing, Rejections uint64
	Duplicates, Ignored, Stale                            uint64
}

type subjectState struct {
	s       enforcement.Subject
	windows []*Window
	// hits are trigger windows of an IP: "rejection_burst/<provider>" and
	// "probe_missing/<provider>".
	hits    map[string]*Window
	samples []sample
	// since: events at or before it do not count (the last decision).
	since    time.Time
	active   *enforcement.Record
	offences []time.Time
	// alerted is the level last alerted per rule key, so an alert goes out
	// when a finding first reaches a level, not on every event.
	alerted map[string]Level
}

type sample struct {
	id string
	t  time.Time
}

// NewEngine returns an empty engine. src is stamped on the events it
// builds.
func NewEngine(cfg Config, src schemas.Source) *Engine {
	return &Engine{
		cfg:       cfg,
		src:       src,
		subjects:  map[string]*subjectState{},
		complaint: newIDSet(cfg.longestWindow()),
		delivery:  newIDSet(cfg.DedupeWindow.Std()),
		decisions: map[string]time.Time{},
		ended:     map[string]time.Time{},
		alerts:    newAlertState(cfg.DedupeWindow.Std()),
	}
}

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// Owns reports whether this copy owns subject s.
func (e *Engine) Owns(s enforcement.Subject) bool {
	return s.Partition(e.cfg.Partitions) == e.cfg.Partition
}

func (e *Engine) state(s enforcement.Subject) *subjectState {
	key := s.String()
	st := e.subjects[key]
	if st == nil {
		st = &subjectState{s: s, alerted: map[string]Level{}}
		for _, w := range e.cfg.Windows {
			st.windows = append(st.windows, NewWindow(w.Std(), e.cfg.Resolution))
		}
		e.subjects[key] = st
	}
	return st
}

// Active returns the decision in force for subject at now, if any.
func (e *Engine) Active(s enforcement.Subject, now time.Time) (enforcement.Record, bool) {
	st := e.subjects[s.String()]
	if st == nil || st.active == nil || !st.active.Active(now) {
		return enforcement.Record{}, false
	}
	return *st.active, true
}

// Observe takes one event read from a stream and returns what must be
// done. Events of kinds the evaluator does not judge are ignored. backlog
// says a decision event was read while catching up with the DECISION
// stream at start: a lift read then was dealt with by an earlier run.
// (Signal events are not judged while Replaying, whatever backlog says.)
func (e *Engine) Observe(ev schemas.Event, now time.Time, backlog bool) []Output {
	switch ev := ev.(type) {
	case *schemas.ComplaintReceived:
		return e.complaintReceived(ev, now)
	case *schemas.DeliveryAttempted:
		return e.deliveryAttempted(ev, now)
	case *schemas.DNSBLListed:
		return e.listed(ev, now)
	case *schemas.DNSBLDelisted:
		return e.delistingAlert(ev, now)
	case *schemas.DNSAudit:
		return e.audit(ev, now)
	case *schemas.ProbeMissing:
		return append(e.probeMissingAt(ev, now), e.probeMissing(ev, now)...)
	case *schemas.ProbeSent:
		return e.probeSent(ev, now)
	case *schemas.ProbeReceived:
		return append(e.probeReceived(ev, now), e.probeLatency(ev.ProbeRoute, ev.ID, ev.Time, ev.LatencyMs, now)...)
	case *schemas.ProbeLate:
		return e.probeLatency(ev.ProbeRoute, ev.ID, ev.Time, ev.LatencyMs, now)
	case *schemas.DMARCRecord:
		return e.dmarcRecord(ev, now)
	case *schemas.TLSRPTResult:
		return e.tlsrptResult(ev, now)
	case *schemas.AlertRaised:
		// Our own alerts, read back at start: what is firing.
		if e.Replaying {
			e.alertSeen(ev)
		}
		return nil
	case *schemas.DecisionCutoff, *schemas.DecisionReroute:
		rec, _ := enforcement.FromEvent(ev)
		return e.decisionSeen(rec, now)
	case *schemas.DecisionRelease:
		return e.decisionEnded(ev.EndedDecision, ev.Time, false, backlog)
	case *schemas.DecisionLift:
		return e.decisionEnded(ev.EndedDecision, ev.Time, true, backlog)
	}
	e.stats.Ignored++
	return nil
}

// subjectsOf lists the owned subjects an event about customer, ip and
// provider counts for.
func (e *Engine) subjectsOf(customer, ip, provider string) []enforcement.Subject {
	var out []enforcement.Subject
	add := func(s enforcement.Subject) {
		if e.Owns(s) {
			out = append(out, s)
		}
	}
	if customer != "" {
		add(enforcement.Customer(customer))
		if provider != "" {
			add(enforcement.CustomerProvider(customer, provider))
		}
	}
	if ip != "" {
		add(enforcement.SourceIP(ip))
	}
	return out
}

func (e *Engine) complaintReceived(ev *schemas.ComplaintReceived, now time.Time) []Output {
	// Only a complaint whose report came from a verified origin may make
	// us act: anyone can send an ARF report to the listener (issue 13).
	if !ev.Counted || !ev.Trusted {
		e.stats.Ignored++
		return nil
	}
	if !e.complaint.add(ev.ID, now) {
		e.stats.Duplicates++
		return nil
	}
	e.stats.Complaints++
	var out []Output
	for _, s := range e.subjectsOf(ev.Customer, ev.SourceIP, ev.Provider) {
		st := e.state(s)
		if !ev.Time.After(st.since) {
			e.stats.Stale++
			continue
		}
		counted := false
		for _, w := range st.windows {
			counted = w.Add(ev.Time, now, Counts{Complaints: 1}) || counted
		}
		if !counted {
			e.stats.Stale++
			continue
		}
		st.samples = append(st.samples, sample{id: ev.ID, t: ev.Time})
		if n := e.cfg.SampleIDs; len(st.samples) > n {
			st.samples = append(st.samples[:0], st.samples[len(st.samples)-n:]...)
		}
		out = append(out, e.judgeComplaints(st, now)...)
	}
	return out
}

func (e *Engine) countsForDenominator(provider string) bool {
	return len(e.cfg.DenominatorProviders) == 0 || slices.Contains(e.cfg.DenominatorProviders, provider)
}

func (e *Engine) deliveryAttempted(ev *schemas.DeliveryAttempted, now time.Time) []Output {
	if !e.delivery.add(ev.ID, now) {
		e.stats.Duplicates++
		return nil
	}
	e.stats.Deliveries++
	out := e.stillRejected(ev, now)
	switch {
	case ev.Status == schemas.StatusSent:
		for _, s := range e.subjectsOf(ev.Customer, ev.SourceIP, ev.Provider) {
			if s.Scope != schemas.ScopeCustomerProvider && !e.countsForDenominator(ev.Provider) {
				continue
			}
			st := e.state(s)
			if !ev.Time.After(st.since) {
				continue
			}
			for _, w := range st.windows {
				w.Add(ev.Time, now, Counts{Delivered: 1})
			}
			// More deliveries can lift a window over min_delivered, where a
			// rate that was not judged yet may already be past a limit.
			if len(st.samples) > 0 {
				out = append(out, e.judgeComplaints(st, now)...)
			}
		}
	case e.cfg.RejectionBurst.Enabled && ev.SourceIP != "" && ev.Status != schemas.StatusExpired &&
		slices.Contains(e.cfg.RejectionBurst.Categories, ev.Category):
		s := enforcement.SourceIP(ev.SourceIP)
		if !e.Owns(s) {
			return nil
		}
		st := e.state(s)
		if !ev.Time.After(st.since) {
			return nil
		}
		provider := ev.Provider
		if provider == "" {
			provider = ev.RecipientDomain
		}
		w := st.hit(RuleRejectionBurst+"/"+provider, e.cfg.RejectionBurst.Window.Std(), e.cfg.Resolution)
		if !w.Add(ev.Time, now, Counts{Hits: 1}) {
			return nil
		}
		e.stats.Rejections++
		if !e.Replaying {
			f := judgeRejections(e.cfg.RejectionBurst, provider, w.Sum(now))
			f.Key = provider
			out = append(out, e.conclude(st, f, e.cfg.RejectionBurst.Act, e.cfg.RejectionBurst.Action, nil, now)...)
		}
	}
	return out
}

func (e *Engine) listed(ev *schemas.DNSBLListed, now time.Time) []Output {
	// The listing alert (firing per target with its zones, resolved when
	// the last zone delists) goes out whether or not the rule acts; a
	// decision adds its own alert.
	out := e.listingAlert(ev, now)
	if !e.cfg.Blocklist.Act {
		return out
	}
	ip := ev.SourceIP
	if ip == "" && ev.TargetKind == schemas.TargetIP {
		ip = ev.Target
	}
	r := e.cfg.Blocklist
	if !r.Enabled || ip == "" || ev.Weight < r.MinWeight {
		e.stats.Ignored++
		return out
	}
	s := enforcement.SourceIP(ip)
	if !e.Owns(s) {
		return out
	}
	e.stats.Listings++
	st := e.state(s)
	// A listing is a transition, judged once when it happens: replayed
	// listings and listings older than the longest window are history.
	if e.Replaying || !ev.Time.After(st.since) || now.Sub(ev.Time) > e.cfg.longestWindow() {
		return out
	}
	f := Finding{Rule: RuleBlocklist, Level: LevelAct, Key: ev.Zone, Threshold: r.MinWeight,
		Evidence: [][2]string{{"zone", ev.Zone}, {"list", ev.List}, {"weight", strconv.FormatFloat(ev.Weight, 'g', -1, 64)}, {"answer_codes", strings.Join(ev.AnswerCodes, ",")}},
		Text:     fmt.Sprintf("listed on %s (%s, weight %g, minimum %g)", ev.List, ev.Zone, ev.Weight, r.MinWeight)}
	if ev.TXT != "" {
		f.Evidence = append(f.Evidence, [2]string{"txt", ev.TXT})
	}
	out = append(out, e.conclude(st, f, r.Act, r.Action, []string{ev.ID}, now)...)
	// Every listing is news: let the next one alert again.
	delete(st.alerted, f.Rule+"/"+f.Key)
	return out
}

func (e *Engine) probeMissing(ev *schemas.ProbeMissing, now time.Time) []Output {
	r := e.cfg.ProbeMissing
	if !r.Enabled || ev.SourceIP == "" {
		e.stats.Ignored++
		return nil
	}
	s := enforcement.SourceIP(ev.SourceIP)
	if !e.Owns(s) {
		return nil
	}
	st := e.state(s)
	if !ev.Time.After(st.since) {
		return nil
	}
	w := st.hit(RuleProbeMissing+"/"+ev.Provider, r.Window.Std(), e.cfg.Resolution)
	if !w.Add(ev.Time, now, Counts{Hits: 1}) {
		return nil
	}
	e.stats.Missing++
	if e.Replaying {
		return nil
	}
	return e.judgeMissing(st, now)
}

func (e *Engine) judgeMissing(st *subjectState, now time.Time) []Output {
	per := map[string]Counts{}
	for k, w := range st.hits {
		if p, ok := strings.CutPrefix(k, RuleProbeMissing+"/"); ok {
			per[p] = w.Sum(now)
		}
	}
	return e.conclude(st, judgeMissing(e.cfg.ProbeMissing, per), e.cfg.ProbeMissing.Act, e.cfg.ProbeMissing.Action, nil, now)
}

func (st *subjectState) hit(key string, length time.Duration, resolution int) *Window {
	if st.hits == nil {
		st.hits = map[string]*Window{}
	}
	w := st.hits[key]
	if w == nil {
		w = NewWindow(length, resolution)
		st.hits[key] = w
	}
	return w
}

func (e *Engine) judgeComplaints(st *subjectState, now time.Time) []Output {
	if e.Replaying || e.Hold {
		return nil
	}
	t := e.cfg.thresholds(st.s.Scope)
	rate, count := judgeComplaints(t, st.windows, now)
	ids := make([]string, len(st.samples))
	for i, s := range st.samples {
		ids[i] = s.id
	}
	out := e.conclude(st, rate, t.Act, t.Action, ids, now)
	if len(out) > 0 && out[0].Kind == OutDecide {
		return out // the windows restarted; the count rule has nothing left
	}
	return append(out, e.conclude(st, count, t.Act, t.Action, ids, now)...)
}

// conclude turns a finding into outputs: a decision when it reached the
// act level and the rule acts (and no decision is in force), else one
// alert per level reached.
func (e *Engine) conclude(st *subjectState, f Finding, act bool, action string, ids []string, now time.Time) []Output {
	key := f.Rule
	if f.Key != "" {
		key += "/" + f.Key
	}
	if f.Level == LevelNone {
		delete(st.alerted, key)
		return nil
	}
	if st.active != nil && st.active.Active(now) {
		return nil // enforced already; the evidence restarts after it
	}
	if f.Level == LevelAct && act {
		return e.decide(st, f, action, ids, now)
	}
	if st.alerted[key] >= f.Level {
		return nil
	}
	st.alerted[key] = f.Level
	severity := schemas.AlertWarning
	verb := "warning"
	if f.Level == LevelAct {
		severity, verb = schemas.AlertCritical, "over the act limit (alert only)"
	}
	// The dedupe key names one condition: findings of one rule told apart
	// by Key (a rejection burst per provider) are conditions of their own.
	dedupe := f.Rule + "/" + st.s.String()
	if f.Key != "" {
		dedupe += "/" + f.Key
	}
	a := e.alert(st.s, f.Rule, schemas.AlertFiring, severity, dedupe,
		fmt.Sprintf("%s %s: %s", st.s, verb, f.Text), ids, now)
	a.EvidenceNames, a.EvidenceValues = evidenceOf(f)
	a.ID = enforcement.StableID(now, "alert", key, st.s.String(), f.Level.String(), strconv.FormatInt(st.since.UnixMilli(), 10))
	return []Output{{Kind: OutAlert, Alert: a}}
}

// decide makes a decision on st from finding f.
func (e *Engine) decide(st *subjectState, f Finding, action string, ids []string, now time.Time) []Output {
	now = now.UTC().Truncate(time.Millisecond)
	memory := e.cfg.Decisions.Memory.Std()
	st.offences = slices.DeleteFunc(st.offences, func(t time.Time) bool { return now.Sub(t) > memory })
	offence := len(st.offences) + 1
	d := e.cfg.Decisions.durationFor(offence)
	rec := enforcement.Record{
		Action:         action,
		DecisionTarget: st.s.Target(),
		DecisionTerm:   schemas.DecisionTerm{Rule: f.Rule, Offence: uint16(min(offence, 65535))},
		DecidedAt:      now,
		Source:         e.src,
		Severity:       schemas.AlertCritical,
	}
	if d > 0 {
		rec.Until = now.Add(d)
		rec.DurationMs = d.Milliseconds()
	}
	rec.DecisionID = enforcement.StableID(now, "decision", st.s.String(), f.Rule, strconv.Itoa(offence), strconv.FormatInt(now.UnixMilli(), 10))
	rec.Evidence = schemas.DecisionEvidence{
		WindowMs:           f.Window.Milliseconds(),
		Complaints:         f.Counts.Complaints,
		Delivered:          f.Counts.Delivered,
		Rate:               f.Rate,
		Threshold:          f.Threshold,
		SampleComplaintIDs: nil,
	}
	if f.Rule == RuleComplaintRate || f.Rule == RuleComplaintCount {
		rec.Evidence.SampleComplaintIDs = slices.Clone(ids)
	}
	for _, kv := range f.Evidence {
		rec.Evidence.EvidenceNames = append(rec.Evidence.EvidenceNames, kv[0])
		rec.Evidence.EvidenceValues = append(rec.Evidence.EvidenceValues, kv[1])
	}
	how := "until lifted"
	if d > 0 {
		how = "for " + formatDuration(d)
	}
	switch action {
	case schemas.ActionReroute:
		rec.Transport = e.cfg.Decisions.NDRTransport
		rec.Summary = fmt.Sprintf("%s rerouted to %s %s (offence %d): %s", st.s, rec.Transport, how, offence, f.Text)
	default:
		rec.PolicyAction = e.cfg.Decisions.CutoffAction
		until := "lifted"
		if d > 0 {
			until = rec.Until.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		text := strings.NewReplacer("{subject}", st.s.String(), "{rule}", strings.ReplaceAll(f.Rule, "_", " "), "{until}", until).Replace(e.cfg.Decisions.CutoffText)
		rec.PolicyText = e.cfg.Decisions.CutoffStatus + " " + text
		rec.Summary = fmt.Sprintf("%s cut off %s (offence %d): %s", st.s, how, offence, f.Text)
	}
	e.adopt(st, rec)
	a := e.decisionAlert(rec, schemas.AlertFiring, now)
	a.EvidenceNames, a.EvidenceValues = evidenceOf(f)
	return []Output{{Kind: OutDecide, Record: &rec, Alert: a}}
}

// adopt makes rec the decision in force on st and restarts its evidence.
func (e *Engine) adopt(st *subjectState, rec enforcement.Record) {
	r := rec
	st.active = &r
	if !slices.Contains(st.offences, rec.DecidedAt) {
		st.offences = append(st.offences, rec.DecidedAt)
		slices.SortFunc(st.offences, func(a, b time.Time) int { return a.Compare(b) })
	}
	if rec.DecidedAt.After(st.since) {
		st.since = rec.DecidedAt
		for _, w := range st.windows {
			w.Reset()
		}
		for _, w := range st.hits {
			w.Reset()
		}
		st.samples = nil
		clear(st.alerted)
	}
	e.decisions[rec.DecisionID] = rec.DecidedAt
}

// Adopt takes a decision found in the KV bucket: one another copy (or an
// earlier run) made. It returns OutRepublish when the decision's event was
// never seen in the stream, so the event and alert are (re)published.
func (e *Engine) Adopt(rec enforcement.Record, now time.Time) []Output {
	s := rec.SubjectOf()
	if !e.Owns(s) {
		return nil
	}
	if _, gone := e.ended[rec.DecisionID]; gone {
		// Released or lifted, but the key survived (a lift whose delete
		// failed): remove it, quietly.
		return []Output{{Kind: OutLifted, Record: &rec}}
	}
	_, known := e.decisions[rec.DecisionID]
	st := e.state(s)
	if !rec.Active(now) {
		// Expired while nobody watched: release it now.
		e.adopt(st, rec)
		return nil // Tick releases it
	}
	e.adopt(st, rec)
	if known {
		return nil
	}
	return []Output{{Kind: OutRepublish, Record: &rec, Alert: e.decisionAlert(rec, schemas.AlertFiring, rec.DecidedAt)}}
}

// Replace undoes our decision ours on its subject and adopts theirs,
// which another copy or an earlier run stored first.
func (e *Engine) Replace(ours, theirs enforcement.Record) {
	st := e.subjects[ours.Subject]
	if st == nil {
		return
	}
	st.offences = slices.DeleteFunc(st.offences, func(t time.Time) bool { return t.Equal(ours.DecidedAt) })
	delete(e.decisions, ours.DecisionID)
	e.ended[ours.DecisionID] = ours.DecidedAt
	st.active = nil
	e.adopt(st, theirs)
}

// decisionSeen takes a decision event read from the DECISION stream.
func (e *Engine) decisionSeen(rec enforcement.Record, now time.Time) []Output {
	s := rec.SubjectOf()
	if !s.Valid() || !e.Owns(s) {
		return nil
	}
	if _, gone := e.ended[rec.DecisionID]; gone {
		return nil
	}
	if _, known := e.decisions[rec.DecisionID]; known {
		return nil // ours, read back
	}
	st := e.state(s)
	if st.active != nil && st.active.DecisionID != rec.DecisionID && st.active.DecidedAt.After(rec.DecidedAt) {
		// An older decision read after a newer one: history only.
		if !slices.Contains(st.offences, rec.DecidedAt) {
			st.offences = append(st.offences, rec.DecidedAt)
			slices.SortFunc(st.offences, func(a, b time.Time) int { return a.Compare(b) })
		}
		e.decisions[rec.DecisionID] = rec.DecidedAt
		return nil
	}
	e.adopt(st, rec)
	return nil
}

// ended_ takes a release or lift event read from the DECISION stream.
func (e *Engine) decisionEnded(d schemas.EndedDecision, at time.Time, lifted, backlog bool) []Output {
	e.ended[d.DecisionID] = at
	s := enforcement.Subject{Scope: d.Scope, Customer: d.Customer, SourceIP: d.SourceIP, Provider: d.Provider}
	if !s.Valid() || !e.Owns(s) {
		return nil
	}
	st := e.state(s)
	if st.active == nil || st.active.DecisionID != d.DecisionID {
		return nil
	}
	rec := *st.active
	st.active = nil
	if !lifted || backlog {
		return nil // a release is published by us; a lift in the backlog was handled then
	}
	return []Output{{Kind: OutLifted, Record: &rec, Alert: e.decisionAlert(rec, schemas.AlertResolved, at)}}
}

// Forget drops a decision whose key disappeared from the bucket before
// it expired without a lift event (deleted by hand). It returns the
// resolved alert.
func (e *Engine) Forget(rec enforcement.Record, now time.Time) []Output {
	st := e.subjects[rec.Subject]
	if st == nil || st.active == nil || st.active.DecisionID != rec.DecisionID {
		return nil
	}
	st.active = nil
	e.ended[rec.DecisionID] = now
	return []Output{{Kind: OutAlert, Alert: e.decisionAlert(rec, schemas.AlertResolved, now)}}
}

// Tick releases the decisions that expired by now, and forgets state no
// window or memory needs any more.
func (e *Engine) Tick(now time.Time) []Output {
	var out []Output
	for _, st := range e.subjects {
		if st.active == nil || st.active.Active(now) {
			continue
		}
		rec := *st.active
		st.active = nil
		e.ended[rec.DecisionID] = rec.Until
		rel := &schemas.DecisionRelease{
			Header:        schemas.Header{ID: enforcement.StableID(rec.Until, "release", rec.DecisionID), Type: schemas.TypeDecisionRelease, Time: rec.Until, Source: e.src},
			EndedDecision: rec.Ended(rec.Until),
		}
		out = append(out, Output{Kind: OutRelease, Record: &rec, Release: rel, Alert: e.decisionAlert(rec, schemas.AlertResolved, rec.Until)})
	}
	slices.SortFunc(out, func(a, b Output) int { return a.Record.Until.Compare(b.Record.Until) })
	out = append(out, e.reportsTick(now)...)
	if now.Sub(e.lastGC) >= time.Minute {
		e.gc(now)
		e.lastGC = now
	}
	return out
}

// EvaluateAll judges every subject once: after a replay, to act on what
// happened while the worker was down.
func (e *Engine) EvaluateAll(now time.Time) []Output {
	var out []Output
	for _, st := range e.subjects {
		out = append(out, e.judgeComplaints(st, now)...)
		if e.cfg.RejectionBurst.Enabled {
			for k, w := range st.hits {
				if p, ok := strings.CutPrefix(k, RuleRejectionBurst+"/"); ok {
					out = append(out, e.conclude(st, judgeRejections(e.cfg.RejectionBurst, p, w.Sum(now)), e.cfg.RejectionBurst.Act, e.cfg.RejectionBurst.Action, nil, now)...)
				}
			}
		}
		if e.cfg.ProbeMissing.Enabled && st.s.Scope == schemas.ScopeSourceIP {
			out = append(out, e.judgeMissing(st, now)...)
		}
	}
	out = append(out, e.judgeReports(now)...)
	return append(out, e.settleAll(now)...)
}

// ActiveRecords lists the decisions in force, for reconciliation.
func (e *Engine) ActiveRecords() []enforcement.Record {
	var out []enforcement.Record
	for _, st := range e.subjects {
		if st.active != nil {
			out = append(out, *st.active)
		}
	}
	return out
}

func (e *Engine) gc(now time.Time) {
	memory := e.cfg.Decisions.Memory.Std()
	for k, st := range e.subjects {
		st.offences = slices.DeleteFunc(st.offences, func(t time.Time) bool { return now.Sub(t) > memory })
		if st.active != nil || len(st.offences) > 0 {
			continue
		}
		empty := true
		for _, w := range st.windows {
			empty = empty && w.Empty(now)
		}
		for hk, w := range st.hits {
			if w.Empty(now) {
				delete(st.hits, hk)
			} else {
				empty = false
			}
		}
		if empty {
			delete(e.subjects, k)
		}
	}
	for id, t := range e.decisions {
		if now.Sub(t) > memory+24*time.Hour {
			delete(e.decisions, id)
		}
	}
	for id, t := range e.ended {
		if now.Sub(t) > memory+24*time.Hour {
			delete(e.ended, id)
		}
	}
	e.complaint.prune(now)
	e.delivery.prune(now)
	e.alerts.gc(now, e.cfg)
}

// Subjects is the number of subjects held.
func (e *Engine) Subjects() int { return len(e.subjects) }

func (e *Engine) alert(s enforcement.Subject, rule, status, severity, dedupe, summary string, ids []string, now time.Time) *schemas.AlertRaised {
	return &schemas.AlertRaised{
		Header:    schemas.Header{ID: schemas.NewID(), Type: schemas.TypeAlertRaised, Time: now.UTC().Truncate(time.Millisecond), Source: e.src},
		Rule:      rule,
		Status:    status,
		Severity:  severity,
		Subject:   s.String(),
		Summary:   summary,
		DedupeKey: dedupe,
		Customer:  s.Customer,
		SourceIP:  s.SourceIP,
		Provider:  s.Provider,
		EventIDs:  slices.Clone(ids),
	}
}

// decisionAlert is the alert of a decision (firing) or of its end
// (resolved); both share the decision's dedupe key and severity.
func (e *Engine) decisionAlert(rec enforcement.Record, status string, at time.Time) *schemas.AlertRaised {
	s := rec.SubjectOf()
	summary := rec.Summary
	if status == schemas.AlertResolved {
		summary = fmt.Sprintf("%s: %s ended, mail flows normally again (decided %s)", s, rec.Action, rec.DecidedAt.Format(time.RFC3339))
	}
	severity := rec.Severity
	if severity == "" {
		severity = schemas.AlertCritical
	}
	a := e.alert(s, rec.Rule, status, severity, enforcement.DedupeKey(s.String()), summary, rec.Evidence.SampleComplaintIDs, at)
	a.DecisionID = rec.DecisionID
	a.ID = enforcement.StableID(at, "alert", status, rec.DecisionID)
	if status == schemas.AlertFiring {
		a.EvidenceNames = []string{"rate", "threshold", "window", "complaints", "delivered"}
		a.EvidenceValues = []string{strconv.FormatFloat(rec.Evidence.Rate, 'g', 4, 64), strconv.FormatFloat(rec.Evidence.Threshold, 'g', -1, 64),
			formatDuration(time.Duration(rec.Evidence.WindowMs) * time.Millisecond), strconv.FormatUint(rec.Evidence.Complaints, 10), strconv.FormatUint(rec.Evidence.Delivered, 10)}
	}
	return a
}

func evidenceOf(f Finding) (names, values []string) {
	names = []string{"level", "window", "complaints", "delivered", "rate", "threshold"}
	values = []string{f.Level.String(), formatDuration(f.Window), strconv.FormatUint(f.Counts.Complaints, 10), strconv.FormatUint(f.Counts.Delivered, 10),
		strconv.FormatFloat(f.Rate, 'g', 4, 64), strconv.FormatFloat(f.Threshold, 'g', -1, 64)}
	for _, kv := range f.Evidence {
		names = append(names, kv[0])
		values = append(values, kv[1])
	}
	return names, values
}

// idSet remembers event ids for at least ttl and at most twice as long,
// as 64-bit hashes in two generations that rotate.
type idSet struct {
	ttl     time.Duration
	cur     map[uint64]struct{}
	prev    map[uint64]struct{}
	rotated time.Time
}

func newIDSet(ttl time.Duration) *idSet {
	return &idSet{ttl: ttl, cur: map[uint64]struct{}{}, prev: map[uint64]struct{}{}}
}

// add records id and reports whether it was new.
func (s *idSet) add(id string, now time.Time) bool {
	s.prune(now)
	h := fnv.New64a()
	h.Write([]byte(id))
	k := h.Sum64()
	if _, ok := s.cur[k]; ok {
		return false
	}
	if _, ok := s.prev[k]; ok {
		return false
	}
	s.cur[k] = struct{}{}
	return true
}

func (s *idSet) prune(now time.Time) {
	if s.rotated.IsZero() {
		s.rotated = now
	}
	if now.Sub(s.rotated) < s.ttl {
		return
	}
	s.prev, s.cur = s.cur, map[uint64]struct{}{}
	s.rotated = now
}

func (s *idSet) len() int { return len(s.cur) + len(s.prev) }
