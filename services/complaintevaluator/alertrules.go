package complaintevaluator

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// Rule names of the alert-only rules (alerts.go): they never decide, they
// raise a firing alert when their condition starts and a resolved alert
// when it ends.
const (
	RuleProbeMissingProvider = "probe_missing_provider"
	RuleProbeSendFailed      = "probe_send_failed"
	RuleProbeInSpam          = "probe_in_spam"
	RuleDNSHygiene           = "dns_hygiene"
	RuleProbeLate            = "probe_late"
	RuleStillRejected        = "listed_but_delisted_still_rejected"
	// RuleBlocklist (rules.go) names the listing alerts of IPs and
	// domains too.
)

// trackedRules are the rules whose alerts the engine reads back from the
// ALERT stream at start, to know what is firing.
var trackedRules = []string{RuleProbeMissingProvider, RuleProbeSendFailed, RuleProbeInSpam, RuleDNSHygiene, RuleBlocklist,
	RuleProbeLate, RuleStillRejected, RuleDMARCAlignment, RuleDMARCUnknownSource, RuleTLSRPTFailure}

// maxKeptIDs bounds the sample event ids and the remembered misses of one
// condition: a provider missing for weeks must not grow without limit.
const maxKeptIDs = 64

// condition is what one alert rule says about one fingerprint (its dedupe
// key) right now.
type condition struct {
	rule, subject, dedupeKey string
	firing                   bool
	severity                 string
	// members are the parts of a firing condition that each deserve a
	// notification when they join (the zones listing one target), sorted.
	members  []string
	summary  string
	evidence [][2]string
	eventIDs []string
	sourceIP string
	provider string
	probeID  string
}

// publishedAlert is the last alert published under a dedupe key, as read
// back from the ALERT stream or as sent since.
type publishedAlert struct {
	status, severity, members string
}

// streak counts probes in a row that failed one way (missing at a
// provider, refused by our relay) for one source, since the last good one.
type streak struct {
	count int
	// lastGood is when the newest good probe was sent; a failure of a probe
	// sent before it does not count (a later one got through).
	lastGood time.Time
	// failedSent are the send times of the failures counted (the newest
	// maxKeptIDs), so a good probe sent in between discounts the older ones.
	failedSent []time.Time
	ids        []string
	last       [][2]string // evidence of the newest failure
	sourceIP   string
	provider   string
	probeID    string
}

// zoneListing is one blocklist zone listing a target.
type zoneListing struct {
	list, delistURL, txt string
	weight               float64
	answerCodes          []string
	eventID              string
}

// placements are the newest placements of probes (true: spam) of one
// source at one provider, oldest first.
type placements struct {
	spam     []bool
	ids      []string
	sourceIP string
	provider string
}

// alertState is the alert rules' state: each rule's own memory plus the
// conditions it derives and what was last published per dedupe key.
type alertState struct {
	conds     map[string]*condition
	published map[string]publishedAlert
	streaks   map[string]*streak
	listings  map[string]map[string]zoneListing
	spam      map[string]*placements
	latency   map[string][]latencySample
	// delisted holds, per IP subject, when the last zone listing it
	// delisted it, and stillRejected the keys firing, for
	// listed_but_delisted_still_rejected.
	delisted map[string]delisting
	// stillRejected maps the keys firing to the time of the rejection that
	// fired (or of the alert read back): only a delivery accepted after it
	// resolves, whatever order the DELIVERY and ALERT streams are read in.
	stillRejected map[string]time.Time
	signals       *idSet
	// reports are the conditions of the DMARC and TLS report rules
	// (reportalerts.go) by dedupe key, and reportsJudged when they were
	// last judged as time passes.
	reports       map[string]*reportAgg
	reportsJudged time.Time
}

func newAlertState(dedupe time.Duration) alertState {
	return alertState{
		conds:         map[string]*condition{},
		published:     map[string]publishedAlert{},
		streaks:       map[string]*streak{},
		listings:      map[string]map[string]zoneListing{},
		spam:          map[string]*placements{},
		latency:       map[string][]latencySample{},
		delisted:      map[string]delisting{},
		stillRejected: map[string]time.Time{},
		signals:       newIDSet(dedupe),
		reports:       map[string]*reportAgg{},
	}
}

// ownsAlertSubject says whether this copy judges the alert subject text
// ("ip:…", "route:…", "domain:…"); the hash is the one subjects use, so
// an IP's alerts and decisions fall to the same copy.
func (e *Engine) ownsAlertSubject(subject string) bool {
	if e.cfg.Partitions <= 1 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(subject))
	return int(h.Sum32()%uint32(e.cfg.Partitions)) == e.cfg.Partition
}

// probeSource is the subject a probe is judged under: its sending IP, or
// the name of its route when the route has no known IP (a sendmail source,
// a relay that picks its own).
func probeSource(r schemas.ProbeRoute) string {
	if r.SourceIP != "" {
		return "ip:" + r.SourceIP
	}
	if r.Route != "" {
		return "route:" + r.Route
	}
	return ""
}

func providerOf(r schemas.ProbeRoute) string {
	if r.Provider != "" {
		return r.Provider
	}
	return r.RecipientDomain
}

func dedupeKey(rule, subject, part string) string {
	if part == "" {
		return rule + "/" + subject
	}
	return rule + "/" + subject + "/" + part
}

// newSignal reports whether a probe or DNS event was not seen before (a
// copy republished after the stream's duplicate window is dropped).
func (e *Engine) newSignal(id string, now time.Time) bool {
	if e.alerts.signals.add(id, now) {
		return true
	}
	e.stats.Duplicates++
	return false
}

// probeSent judges probe_send_failed: probes our own relay (or sendmail)
// did not accept, in a row, per source.
func (e *Engine) probeSent(ev *schemas.ProbeSent, now time.Time) []Output {
	r := e.cfg.ProbeSendFailed
	subject := probeSource(ev.ProbeRoute)
	if !r.Enabled || subject == "" {
		e.stats.Ignored++
		return nil
	}
	if !e.ownsAlertSubject(subject) || !e.newSignal(ev.ID, now) {
		return nil
	}
	key := dedupeKey(RuleProbeSendFailed, subject, "")
	s := e.alerts.streak(key)
	s.sourceIP = ev.SourceIP
	switch {
	case ev.Outcome == schemas.OutcomeAccepted:
		s.good(ev.Time)
	case slices.Contains(r.Outcomes, ev.Outcome):
		reply := ev.ReplyText
		if reply == "" {
			reply = ev.Error
		}
		// The failed probe's provider is probe_provider, not provider: the
		// condition is the source's whatever the probe was for, and the
		// notifier takes a provider evidence as part of an alert's identity
		// (and routes and silences by it), so the resolution, which names
		// no provider, would not end the firing it was told of.
		s.fail(ev.Time, ev.ID, ev.ProbeID, [][2]string{
			{"route", ev.Route}, {"submission", ev.Submission}, {"relay", ev.Relay}, {"outcome", ev.Outcome},
			{"failed_phase", ev.FailedPhase}, {"reply_code", strconv.Itoa(int(ev.ReplyCode))},
			{"enhanced_status", ev.EnhancedStatus}, {"reply", cut(reply, 300)}, {"probe_provider", ev.Provider},
		})
	default:
		return nil
	}
	c := &condition{rule: RuleProbeSendFailed, subject: subject, dedupeKey: key, severity: r.Severity,
		firing: s.count >= r.For, sourceIP: s.sourceIP, probeID: s.probeID}
	if c.firing {
		c.summary = fmt.Sprintf("%s: %d probes in a row not accepted by our own MTA (limit %d); last: %s", subject, s.count, r.For, failureText(s.last))
		c.evidence = append([][2]string{{"failures", strconv.Itoa(s.count)}, {"for", strconv.Itoa(r.For)}}, s.last...)
		c.eventIDs = slices.Clone(s.ids)
	} else {
		c.summary = fmt.Sprintf("%s: our own MTA accepts probes again", subject)
	}
	return e.settle(c, now)
}

func failureText(ev [][2]string) string {
	get := func(name string) string {
		for _, kv := range ev {
			if kv[0] == name {
				return kv[1]
			}
		}
		return ""
	}
	text := get("outcome")
	if p := get("failed_phase"); p != "" {
		text += " at " + p
	}
	if r := get("reply"); r != "" {
		text += ": " + r
	}
	return text
}

// probeMissingAt judges probe_missing_provider: probes of one source that
// one provider did not deliver, in a row.
func (e *Engine) probeMissingAt(ev *schemas.ProbeMissing, now time.Time) []Output {
	r := e.cfg.ProbeMissingProvider
	subject := probeSource(ev.ProbeRoute)
	provider := providerOf(ev.ProbeRoute)
	if !r.Enabled || subject == "" || provider == "" {
		return nil
	}
	if !e.ownsAlertSubject(subject) || !e.newSignal(ev.ID, now) {
		return nil
	}
	key := dedupeKey(RuleProbeMissingProvider, subject, "provider:"+provider)
	s := e.alerts.streak(key)
	s.sourceIP, s.provider = ev.SourceIP, provider
	s.fail(ev.SentAt, ev.ID, ev.ProbeID, [][2]string{
		{"route", ev.Route}, {"provider", provider}, {"seed", ev.SeedAddress}, {"account", ev.Account},
		{"sent_at", ev.SentAt.UTC().Format(time.RFC3339)}, {"waited", formatDuration(time.Duration(ev.WaitedMs) * time.Millisecond)},
	})
	return e.settle(e.missingCondition(key, subject, s), now)
}

// probeReceived ends a provider's missing streak and feeds the
// placements of probe_in_spam.
func (e *Engine) probeReceived(ev *schemas.ProbeReceived, now time.Time) []Output {
	subject := probeSource(ev.ProbeRoute)
	provider := providerOf(ev.ProbeRoute)
	if subject == "" || provider == "" {
		e.stats.Ignored++
		return nil
	}
	if !e.ownsAlertSubject(subject) || !e.newSignal(ev.ID, now) {
		return nil
	}
	var out []Output
	if e.cfg.ProbeMissingProvider.Enabled {
		key := dedupeKey(RuleProbeMissingProvider, subject, "provider:"+provider)
		s := e.alerts.streak(key)
		s.sourceIP, s.provider = ev.SourceIP, provider
		s.good(ev.SentAt)
		out = append(out, e.settle(e.missingCondition(key, subject, s), now)...)
	}
	if r := e.cfg.ProbeInSpam; r.Enabled {
		key := dedupeKey(RuleProbeInSpam, subject, "provider:"+provider)
		p := e.alerts.spam[key]
		if p == nil {
			p = &placements{}
			e.alerts.spam[key] = p
		}
		p.sourceIP, p.provider = ev.SourceIP, provider
		p.add(ev.Placement == schemas.PlacementSpam, ev.ID, r.Of)
		out = append(out, e.settle(e.spamCondition(key, subject, p), now)...)
	}
	return out
}

func (e *Engine) missingCondition(key, subject string, s *streak) *condition {
	r := e.cfg.ProbeMissingProvider
	c := &condition{rule: RuleProbeMissingProvider, subject: subject, dedupeKey: key, severity: r.Severity,
		firing: s.count >= r.For, sourceIP: s.sourceIP, provider: s.provider, probeID: s.probeID}
	if c.firing {
		c.summary = fmt.Sprintf("%s: %d probes in a row missing at %s (limit %d)", subject, s.count, s.provider, r.For)
		c.evidence = append([][2]string{{"missing", strconv.Itoa(s.count)}, {"for", strconv.Itoa(r.For)}}, s.last...)
		c.eventIDs = slices.Clone(s.ids)
	} else {
		c.summary = fmt.Sprintf("%s: %s delivers probes again", subject, s.provider)
	}
	return c
}

func (e *Engine) spamCondition(key, subject string, p *placements) *condition {
	r := e.cfg.ProbeInSpam
	n := p.spamCount()
	c := &condition{rule: RuleProbeInSpam, subject: subject, dedupeKey: key, severity: r.Severity,
		firing: n >= r.Spam, sourceIP: p.sourceIP, provider: p.provider}
	if c.firing {
		c.summary = fmt.Sprintf("%s: %d of the last %d probes filed as spam at %s (limit %d)", subject, n, len(p.spam), p.provider, r.Spam)
		c.evidence = [][2]string{{"spam", strconv.Itoa(n)}, {"of", strconv.Itoa(len(p.spam))}, {"limit", strconv.Itoa(r.Spam)}, {"provider", p.provider}}
		c.eventIDs = slices.Clone(p.ids)
	} else {
		c.summary = fmt.Sprintf("%s: %s files probes in the inbox again (%d of the last %d as spam)", subject, p.provider, n, len(p.spam))
	}
	return c
}

func (p *placements) add(spam bool, id string, keep int) {
	p.spam = append(p.spam, spam)
	if len(p.spam) > keep {
		p.spam = p.spam[len(p.spam)-keep:]
	}
	if spam {
		p.ids = append(p.ids, id)
		if len(p.ids) > keep {
			p.ids = p.ids[len(p.ids)-keep:]
		}
	}
}

func (p *placements) spamCount() int {
	n := 0
	for _, s := range p.spam {
		if s {
			n++
		}
	}
	return n
}

func (a *alertState) streak(key string) *streak {
	s := a.streaks[key]
	if s == nil {
		s = &streak{}
		a.streaks[key] = s
	}
	return s
}

// fail counts a failed probe sent at sent, unless a probe sent later
// already got through.
func (s *streak) fail(sent time.Time, id, probeID string, evidence [][2]string) {
	if !sent.IsZero() && !sent.After(s.lastGood) {
		return
	}
	s.count++
	s.failedSent = append(s.failedSent, sent)
	s.ids = append(s.ids, id)
	if len(s.ids) > maxKeptIDs {
		s.ids = s.ids[len(s.ids)-maxKeptIDs:]
		s.failedSent = s.failedSent[len(s.failedSent)-maxKeptIDs:]
	}
	s.last, s.probeID = evidence, probeID
}

// good records a probe sent at sent that got through: only failures of
// probes sent after it still count.
func (s *streak) good(sent time.Time) {
	if !sent.After(s.lastGood) {
		return
	}
	s.lastGood = sent
	kept := 0
	var ids []string
	var times []time.Time
	for i, t := range s.failedSent {
		if t.After(sent) {
			kept++
			ids = append(ids, s.ids[i])
			times = append(times, t)
		}
	}
	s.count, s.ids, s.failedSent = kept, ids, times
}

// listingAlert records a zone listing one of our IPs or domains.
func (e *Engine) listingAlert(ev *schemas.DNSBLListed, now time.Time) []Output {
	subject, ok := e.listingSubject(ev.DNSBLLookup)
	if !ok || !e.newSignal(ev.ID, now) {
		return nil
	}
	key := dedupeKey(RuleBlocklist, subject, "")
	zones := e.alerts.listings[key]
	if zones == nil {
		zones = map[string]zoneListing{}
		e.alerts.listings[key] = zones
	}
	delete(e.alerts.delisted, subject)
	zones[ev.Zone] = zoneListing{list: ev.List, weight: ev.Weight, delistURL: ev.DelistURL, txt: ev.TXT,
		answerCodes: slices.Clone(ev.AnswerCodes), eventID: ev.ID}
	c := e.listingCondition(key, subject, ev.DNSBLLookup, zones)
	c.summary = fmt.Sprintf("%s listed on %s (%s, weight %g)", subject, ev.Zone, ev.List, ev.Weight)
	if len(zones) > 1 {
		c.summary += fmt.Sprintf("; listed on %d zones: %s", len(zones), strings.Join(c.members, ", "))
	}
	if ev.TXT != "" {
		c.summary += ": " + cut(ev.TXT, 200)
	}
	c.evidence = append(c.evidence, [][2]string{{"zone", ev.Zone}, {"list", ev.List},
		{"weight", strconv.FormatFloat(ev.Weight, 'g', -1, 64)}, {"answer_codes", strings.Join(ev.AnswerCodes, ",")}}...)
	if ev.DelistURL != "" {
		c.evidence = append(c.evidence, [2]string{"delist_url", ev.DelistURL})
	}
	if ev.TXT != "" {
		c.evidence = append(c.evidence, [2]string{"txt", cut(ev.TXT, 500)})
	}
	return e.settle(c, now)
}

// delistingAlert records a zone no longer listing a target; the last zone
// to go resolves the target's alert.
func (e *Engine) delistingAlert(ev *schemas.DNSBLDelisted, now time.Time) []Output {
	subject, ok := e.listingSubject(ev.DNSBLLookup)
	if !ok || !e.newSignal(ev.ID, now) {
		return nil
	}
	key := dedupeKey(RuleBlocklist, subject, "")
	zones := e.alerts.listings[key]
	_, wasListed := zones[ev.Zone]
	delete(zones, ev.Zone)
	if len(zones) == 0 {
		delete(e.alerts.listings, key)
		if wasListed || e.alerts.published[key].status == schemas.AlertFiring {
			e.alerts.delisted[subject] = delisting{at: ev.Time, zone: ev.Zone, list: ev.List}
		}
	}
	c := e.listingCondition(key, subject, ev.DNSBLLookup, zones)
	if c.firing {
		c.summary = fmt.Sprintf("%s delisted from %s (%s); still listed on %s", subject, ev.Zone, ev.List, strings.Join(c.members, ", "))
	} else {
		c.summary = fmt.Sprintf("%s delisted from %s (%s); no longer listed on any zone", subject, ev.Zone, ev.List)
	}
	c.evidence = append(c.evidence, [2]string{"delisted_zone", ev.Zone})
	if ev.ListedMs > 0 {
		c.evidence = append(c.evidence, [2]string{"listed_for", formatDuration(time.Duration(ev.ListedMs) * time.Millisecond)})
	}
	c.eventIDs = append(c.eventIDs, ev.ID)
	return e.settle(c, now)
}

// listingSubject is the alert subject of a listing change, false when the
// listing rule does not alert on it.
func (e *Engine) listingSubject(l schemas.DNSBLLookup) (string, bool) {
	r := e.cfg.Blocklist
	if !r.Enabled || l.Weight < r.MinWeight || l.Zone == "" {
		return "", false
	}
	var subject string
	switch {
	case l.SourceIP != "":
		subject = "ip:" + l.SourceIP
	case l.TargetKind == schemas.TargetIP && l.Target != "":
		subject = "ip:" + l.Target
	case l.TargetKind == schemas.TargetDomain && l.Target != "" && r.Domains:
		subject = "domain:" + l.Target
	default:
		return "", false
	}
	return subject, e.ownsAlertSubject(subject)
}

func (e *Engine) listingCondition(key, subject string, l schemas.DNSBLLookup, zones map[string]zoneListing) *condition {
	c := &condition{rule: RuleBlocklist, subject: subject, dedupeKey: key, severity: e.cfg.Blocklist.Severity,
		firing: len(zones) > 0, sourceIP: l.SourceIP}
	if c.sourceIP == "" && l.TargetKind == schemas.TargetIP {
		c.sourceIP = l.Target
	}
	for z, zl := range zones {
		c.members = append(c.members, z)
		if zl.eventID != "" {
			c.eventIDs = append(c.eventIDs, zl.eventID)
		}
	}
	sort.Strings(c.members)
	sort.Strings(c.eventIDs)
	c.evidence = [][2]string{{"zones", strings.Join(c.members, ",")}}
	return c
}

// audit judges dns_hygiene: per check and target, the findings of the
// newest audit at or above the check's configured severity.
func (e *Engine) audit(ev *schemas.DNSAudit, now time.Time) []Output {
	r := e.cfg.DNSHygiene
	if !r.Enabled || ev.Target == "" {
		e.stats.Ignored++
		return nil
	}
	subject := "domain:" + ev.Target
	sourceIP := ""
	if ev.TargetKind == schemas.TargetIP {
		subject, sourceIP = "ip:"+ev.Target, ev.Target
	}
	if !e.ownsAlertSubject(subject) || !e.newSignal(ev.ID, now) {
		return nil
	}
	var out []Output
	checks := make([]string, 0, len(r.Checks))
	for check := range r.Checks {
		checks = append(checks, check)
	}
	sort.Strings(checks)
	for _, check := range checks {
		least := severityRank[r.Checks[check]]
		var messages []string
		for i, name := range ev.FindingChecks {
			if name == check && i < len(ev.FindingSeverities) && severityRank[ev.FindingSeverities[i]] >= least {
				if i < len(ev.FindingMessages) {
					messages = append(messages, cut(ev.FindingMessages[i], 300))
				}
			}
		}
		key := dedupeKey(RuleDNSHygiene, subject, "check:"+check)
		if len(messages) == 0 && e.alerts.conds[key] == nil {
			if _, was := e.alerts.published[key]; !was {
				continue // nothing to say, and nothing said before
			}
		}
		c := &condition{rule: RuleDNSHygiene, subject: subject, dedupeKey: key, severity: r.Severity,
			firing: len(messages) > 0, sourceIP: sourceIP, eventIDs: []string{ev.ID}}
		c.evidence = [][2]string{{"check", check}, {"audit_id", ev.AuditID}}
		if c.firing {
			// One finding per sending IP can make hundreds (SPF of a big
			// pool): quote a few and count the rest.
			quoted := messages[:min(len(messages), maxQuotedFindings)]
			c.summary = fmt.Sprintf("%s: DNS %s: %s", subject, check, strings.Join(quoted, "; "))
			if more := len(messages) - len(quoted); more > 0 {
				c.summary += fmt.Sprintf(" (and %d more)", more)
			}
			c.evidence = append(c.evidence, [2]string{"findings", strconv.Itoa(len(messages))})
			for _, m := range quoted {
				c.evidence = append(c.evidence, [2]string{"finding", m})
			}
		} else {
			c.summary = fmt.Sprintf("%s: DNS %s fixed (audit %s reports it no more)", subject, check, ev.AuditID)
		}
		out = append(out, e.settle(c, now)...)
	}
	return out
}

// maxQuotedFindings is how many findings of one check an alert quotes.
const maxQuotedFindings = 5

// severityRank orders dns.audit and alert severities.
var severityRank = map[string]int{schemas.SeverityOK: 0, schemas.SeverityInfo: 1, schemas.SeverityWarning: 2, schemas.SeverityCritical: 3}

// settle stores c as the current condition of its key and, unless the
// engine is replaying, publishes an alert when it differs from what was
// last published: a new firing, a change of severity or members, or the
// end (resolved). While replaying, the difference waits for EvaluateAll.
func (e *Engine) settle(c *condition, now time.Time) []Output {
	e.alerts.conds[c.dedupeKey] = c
	if e.Replaying {
		return nil
	}
	return e.emitIfChanged(c, now)
}

func (e *Engine) emitIfChanged(c *condition, now time.Time) []Output {
	pub, seen := e.alerts.published[c.dedupeKey]
	if !c.firing {
		// A resolved condition has nothing left to remember, but for a
		// listing's zones and streaks, which keep their own state.
		delete(e.alerts.conds, c.dedupeKey)
		if !seen || pub.status != schemas.AlertFiring {
			return nil
		}
	} else if seen && pub.status == schemas.AlertFiring && pub.severity == c.severity && pub.members == strings.Join(c.members, ",") {
		return nil
	}
	a := e.conditionAlert(c, now)
	e.alerts.published[c.dedupeKey] = publishedAlert{status: a.Status, severity: a.Severity, members: strings.Join(c.members, ",")}
	if a.Status == schemas.AlertResolved {
		// Forget the key once resolved: the ALERT stream remembers it.
		delete(e.alerts.published, c.dedupeKey)
	}
	return []Output{{Kind: OutAlert, Alert: a}}
}

func (e *Engine) conditionAlert(c *condition, now time.Time) *schemas.AlertRaised {
	status := schemas.AlertResolved
	if c.firing {
		status = schemas.AlertFiring
	}
	at := now.UTC().Truncate(time.Millisecond)
	members := strings.Join(c.members, ",")
	a := &schemas.AlertRaised{
		Header:    schemas.Header{ID: enforcement.StableID(at, "alert", c.dedupeKey, status, c.severity, members), Type: schemas.TypeAlertRaised, Time: at, Source: e.src},
		Rule:      c.rule,
		Status:    status,
		Severity:  c.severity,
		Subject:   c.subject,
		Summary:   c.summary,
		DedupeKey: c.dedupeKey,
		SourceIP:  c.sourceIP,
		Provider:  c.provider,
		ProbeID:   c.probeID,
		EventIDs:  lastN(c.eventIDs, max(e.cfg.SampleIDs, 1)),
	}
	for _, kv := range c.evidence {
		if kv[1] == "" {
			continue
		}
		a.EvidenceNames = append(a.EvidenceNames, kv[0])
		a.EvidenceValues = append(a.EvidenceValues, kv[1])
	}
	return a
}

// alertSeen takes one of our own alerts read back from the ALERT stream at
// start: the last one per dedupe key says what is firing. A firing alert
// also seeds its rule's memory, so a condition whose evidence is older
// than what the replay reads stays firing (and is resolved by the event
// that ends it) instead of being forgotten.
func (e *Engine) alertSeen(a *schemas.AlertRaised) {
	if a.Source.Worker != e.src.Worker || !slices.Contains(trackedRules, a.Rule) ||
		!strings.HasPrefix(a.DedupeKey, a.Rule+"/") || !e.ownsAlertSubject(a.Subject) {
		return
	}
	key := a.DedupeKey
	if a.Status != schemas.AlertFiring {
		delete(e.alerts.published, key)
		delete(e.alerts.streaks, key)
		delete(e.alerts.listings, key)
		delete(e.alerts.spam, key)
		delete(e.alerts.latency, key)
		delete(e.alerts.stillRejected, key)
		delete(e.alerts.conds, key)
		delete(e.alerts.reports, key)
		return
	}
	evidence := map[string]string{}
	for i, n := range a.EvidenceNames {
		if i < len(a.EvidenceValues) {
			evidence[n] = a.EvidenceValues[i]
		}
	}
	var members []string
	if a.Rule == RuleBlocklist {
		zones := evidence["zones"]
		if zones == "" {
			zones = evidence["zone"] // an alert of an older release
		}
		members = splitList(zones)
		listing := map[string]zoneListing{}
		for _, z := range members {
			listing[z] = zoneListing{}
		}
		e.alerts.listings[key] = listing
	}
	e.alerts.published[key] = publishedAlert{status: a.Status, severity: a.Severity, members: strings.Join(members, ",")}
	c := &condition{rule: a.Rule, subject: a.Subject, dedupeKey: key, firing: true, severity: a.Severity,
		members: members, summary: a.Summary, sourceIP: a.SourceIP, provider: a.Provider, probeID: a.ProbeID, eventIDs: slices.Clone(a.EventIDs)}
	for i, n := range a.EvidenceNames {
		if i < len(a.EvidenceValues) {
			c.evidence = append(c.evidence, [2]string{n, a.EvidenceValues[i]})
		}
	}
	e.alerts.conds[key] = c
	switch a.Rule {
	case RuleProbeMissingProvider, RuleProbeSendFailed:
		n, _ := strconv.Atoi(evidence["missing"])
		if a.Rule == RuleProbeSendFailed {
			n, _ = strconv.Atoi(evidence["failures"])
		}
		s := &streak{count: max(n, 1), sourceIP: a.SourceIP, provider: a.Provider, probeID: a.ProbeID, ids: slices.Clone(a.EventIDs)}
		for range s.ids {
			s.failedSent = append(s.failedSent, time.Time{})
		}
		e.alerts.streaks[key] = s
	case RuleStillRejected:
		e.alerts.stillRejected[key] = a.Time
	case RuleDMARCAlignment, RuleDMARCUnknownSource, RuleTLSRPTFailure:
		e.seedReportAgg(a)
	case RuleProbeInSpam:
		n, _ := strconv.Atoi(evidence["spam"])
		p := &placements{sourceIP: a.SourceIP, provider: a.Provider, ids: slices.Clone(a.EventIDs)}
		for range max(n, e.cfg.ProbeInSpam.Spam) {
			p.spam = append(p.spam, true)
		}
		e.alerts.spam[key] = p
	}
}

// settleAll publishes, after a replay, what differs between the rebuilt
// conditions and the alerts last published: conditions that started or
// ended while the worker was down, and alerts judged but never published
// before a crash. A firing alert whose rule is now turned off is resolved.
func (e *Engine) settleAll(now time.Time) []Output {
	keys := make([]string, 0, len(e.alerts.conds)+len(e.alerts.published))
	for k := range e.alerts.conds {
		keys = append(keys, k)
	}
	for k := range e.alerts.published {
		if e.alerts.conds[k] == nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Output
	for _, k := range keys {
		c := e.alerts.conds[k]
		if c == nil {
			continue
		}
		if c.firing && !e.judges(c) {
			c.firing = false
			c.summary = fmt.Sprintf("%s: rule %s turned off", c.subject, c.rule)
		}
		out = append(out, e.emitIfChanged(c, now)...)
	}
	return out
}

// judges says whether the rule of c is on for its subject (a domain
// listing needs blocklist.domains too).
func (e *Engine) judges(c *condition) bool {
	switch c.rule {
	case RuleProbeMissingProvider:
		return e.cfg.ProbeMissingProvider.Enabled
	case RuleProbeSendFailed:
		return e.cfg.ProbeSendFailed.Enabled
	case RuleProbeInSpam:
		return e.cfg.ProbeInSpam.Enabled
	case RuleDNSHygiene:
		return e.cfg.DNSHygiene.Enabled
	case RuleBlocklist:
		return e.cfg.Blocklist.Enabled && (e.cfg.Blocklist.Domains || !strings.HasPrefix(c.subject, "domain:"))
	case RuleProbeLate:
		return e.cfg.ProbeLate.Enabled
	case RuleStillRejected:
		return e.cfg.StillRejected.Enabled
	case RuleDMARCAlignment:
		return e.cfg.DMARCAlignment.Enabled
	case RuleDMARCUnknownSource:
		return e.cfg.DMARCUnknownSource.Enabled
	case RuleTLSRPTFailure:
		return e.cfg.TLSRPTFailure.Enabled
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func lastN(ids []string, n int) []string {
	if len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	return slices.Clone(ids)
}

// cut shortens outside text quoted in an alert to at most n bytes, on a
// rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// gc forgets latencies older than probe_late's window and delistings older
// than listed_but_delisted_still_rejected's within.
func (a *alertState) gc(now time.Time, cfg Config) {
	a.signals.prune(now)
	cutoff := now.Add(-cfg.ProbeLate.Window.Std())
	for k, samples := range a.latency {
		samples = slices.DeleteFunc(samples, func(s latencySample) bool { return s.at.Before(cutoff) })
		if len(samples) == 0 {
			delete(a.latency, k)
		} else {
			a.latency[k] = samples
		}
	}
	for k, d := range a.delisted {
		if now.Sub(d.at) > cfg.StillRejected.Within.Std() {
			delete(a.delisted, k)
		}
	}
}

// maxLatencySamples bounds the latencies kept per provider for probe_late.
const maxLatencySamples = 10000

// latencySample is one probe's delivery latency.
type latencySample struct {
	at time.Time
	ms int64
	id string
}

// probeLatency judges probe_late: the 95th percentile of the latencies of
// the probes a provider delivered within the window (received on time or
// late), whatever their source.
func (e *Engine) probeLatency(route schemas.ProbeRoute, id string, at time.Time, latencyMs int64, now time.Time) []Output {
	r := e.cfg.ProbeLate
	provider := providerOf(route)
	if !r.Enabled || provider == "" {
		return nil
	}
	subject := "provider:" + provider
	// The event was counted once already by the rules of its source; this
	// rule keeps its own record of ids.
	if !e.ownsAlertSubject(subject) || !e.newSignal(id+"/latency", now) {
		return nil
	}
	key := dedupeKey(RuleProbeLate, subject, "")
	samples := append(e.alerts.latency[key], latencySample{at: at, ms: latencyMs, id: id})
	cutoff := now.Add(-r.Window.Std())
	samples = slices.DeleteFunc(samples, func(s latencySample) bool { return s.at.Before(cutoff) })
	if len(samples) > maxLatencySamples {
		samples = samples[len(samples)-maxLatencySamples:]
	}
	e.alerts.latency[key] = samples
	if len(samples) < r.MinProbes {
		return nil // too few to judge: the condition stays as it was
	}
	ms := make([]int64, len(samples))
	for i, s := range samples {
		ms[i] = s.ms
	}
	slices.Sort(ms)
	p95 := time.Duration(ms[(len(ms)*95+99)/100-1]) * time.Millisecond
	c := &condition{rule: RuleProbeLate, subject: subject, dedupeKey: key, severity: r.Severity, provider: provider,
		firing: p95 > r.Threshold.Std()}
	c.evidence = [][2]string{{"p95", formatDuration(p95.Round(time.Second))}, {"threshold", formatDuration(r.Threshold.Std())},
		{"probes", strconv.Itoa(len(samples))}, {"window", formatDuration(r.Window.Std())}}
	if c.firing {
		c.summary = fmt.Sprintf("%s: 95 %% of probes took up to %s over %s (limit %s, %d probes)", subject,
			formatDuration(p95.Round(time.Second)), formatDuration(r.Window.Std()), formatDuration(r.Threshold.Std()), len(samples))
		for _, s := range samples[max(len(samples)-maxKeptIDs, 0):] {
			if time.Duration(s.ms)*time.Millisecond > r.Threshold.Std() {
				c.eventIDs = append(c.eventIDs, s.id)
			}
		}
	} else {
		c.summary = fmt.Sprintf("%s: probe latency back under %s (95th percentile %s)", subject, formatDuration(r.Threshold.Std()), formatDuration(p95.Round(time.Second)))
	}
	return e.settle(c, now)
}

// delisting is the time the last zone listing a target delisted it.
type delisting struct {
	at         time.Time
	zone, list string
}

// stillRejected judges listed_but_delisted_still_rejected on one delivery
// attempt: a blocklist rejection of an IP well after its last delisting
// fires (per IP and provider); a delivery the provider accepts resolves.
func (e *Engine) stillRejected(ev *schemas.DeliveryAttempted, now time.Time) []Output {
	r := e.cfg.StillRejected
	// Every delivery passes here: most return before building a key.
	if !r.Enabled || ev.SourceIP == "" || (len(e.alerts.delisted) == 0 && len(e.alerts.stillRejected) == 0) {
		return nil
	}
	subject := "ip:" + ev.SourceIP
	provider := ev.Provider
	if provider == "" {
		provider = ev.RecipientDomain
	}
	key := dedupeKey(RuleStillRejected, subject, "provider:"+provider)
	if ev.Status == schemas.StatusSent {
		since, firing := e.alerts.stillRejected[key]
		if !firing || !ev.Time.After(since) {
			return nil
		}
		c := e.alerts.conds[key]
		delete(e.alerts.stillRejected, key)
		if c == nil || !c.firing {
			return nil
		}
		resolved := *c
		resolved.firing = false
		resolved.summary = fmt.Sprintf("%s: %s accepts our mail again", subject, provider)
		resolved.eventIDs = []string{ev.ID}
		return e.settle(&resolved, now)
	}
	d, ok := e.alerts.delisted[subject]
	if !ok || ev.Status == schemas.StatusExpired || !slices.Contains(r.Categories, ev.Category) || !e.ownsAlertSubject(subject) {
		return nil
	}
	since := ev.Time.Sub(d.at)
	if since < r.After.Std() || since > r.Within.Std() {
		return nil
	}
	ago := formatDuration(since.Truncate(time.Minute))
	if since >= time.Hour {
		ago = formatDuration(since.Truncate(time.Hour)) // "25h" reads better than "1504m"
	}
	c := &condition{rule: RuleStillRejected, subject: subject, dedupeKey: key, severity: r.Severity, firing: true,
		sourceIP: ev.SourceIP, provider: provider, eventIDs: []string{ev.ID}}
	if prev := e.alerts.conds[key]; prev != nil && prev.firing {
		c.eventIDs = append(lastN(prev.eventIDs, maxKeptIDs-1), ev.ID)
	}
	c.summary = fmt.Sprintf("%s: %s still rejects it for a blocklist %s after %s (%s) delisted it: %s", subject, provider,
		ago, d.zone, d.list, cut(ev.Reply, 300))
	c.evidence = [][2]string{{"provider", provider}, {"delisted_zone", d.zone}, {"delisted_at", d.at.UTC().Format(time.RFC3339)},
		{"since_delisting", ago}, {"category", ev.Category}, {"reply", cut(ev.Reply, 500)}}
	if _, firing := e.alerts.stillRejected[key]; !firing {
		e.alerts.stillRejected[key] = ev.Time
	}
	return e.settle(c, now)
}
