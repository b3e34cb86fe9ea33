package complaintevaluator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// Config is the `complaint_evaluator` section of the mailmon config.
type Config struct {
	// Windows are the sliding windows every rate and count is judged over.
	// Each must be at least 1 h shorter than the DELIVERY and COMPLAINT
	// streams keep (max_age in pipelines/topology.yaml: 8d and 30d), since a
	// restart rebuilds them from there: a longer one is refused, it would
	// inflate rates after every restart. At start the worker also checks
	// what the server's streams really keep and refuses to run when a
	// topology not applied by this release keeps less (`mailmon pipelines
	// apply` fixes it).
	Windows []config.Duration `yaml:"windows"`
	// Resolution is the number of buckets a window is counted in: a window
	// slides in steps of length/resolution.
	Resolution int `yaml:"resolution"`
	// DenominatorProviders limits the deliveries counted for the customer
	// and source_ip scopes to these providers (those that send feedback
	// loops); empty counts every delivery. The customer_provider scope
	// always counts deliveries to its own provider.
	DenominatorProviders []string `yaml:"denominator_providers"`
	// Customer, SourceIP and CustomerProvider are the thresholds per scope,
	// applied to every window. Rates are fractions (0.003 is 0.3 %) and
	// count once min_delivered deliveries are in the window; counts of 0 are
	// off. act: false only alerts at the act level.
	Customer         Thresholds `yaml:"customer"`
	SourceIP         Thresholds `yaml:"source_ip"`
	CustomerProvider Thresholds `yaml:"customer_provider"`
	// Blocklist triggers on a listing of one of our IPs (and, with domains,
	// of our domains) on a zone of at least min_weight catalogue weight: an
	// alert per target, whose zones are its members, resolved when the last
	// zone delists it; with act, an IP listing also decides.
	Blocklist BlocklistRule `yaml:"blocklist"`
	// RejectionBurst triggers on min_rejections reputation or blocklist
	// rejections from one provider to one IP within window
	// (delivery.attempted classifier categories).
	// Its window must fit in the DELIVERY stream's retention, like windows.
	RejectionBurst RejectionBurstRule `yaml:"rejection_burst"`
	// ProbeMissing triggers when probes from one IP go missing at
	// min_providers providers within window.
	// Its window must fit in the PROBE stream's retention, like windows.
	ProbeMissing ProbeMissingRule `yaml:"probe_missing"`
	// ProbeMissingProvider alerts when one provider did not deliver the
	// last `for` probes of one source (its sending IP, or its route name
	// when the route has no known IP); resolved by the next probe of that
	// source the provider delivers.
	ProbeMissingProvider ProbeMissingProviderRule `yaml:"probe_missing_provider"`
	// ProbeSendFailed alerts when our own MTA (the probe's relay or the
	// sendmail command) did not accept the last `for` probes of one source;
	// resolved by the next probe of that source it accepts.
	ProbeSendFailed ProbeSendFailedRule `yaml:"probe_send_failed"`
	// ProbeInSpam alerts when at least `spam` of the last `of` probes of one
	// source that reached one provider were filed as spam; resolved when
	// fewer are.
	ProbeInSpam ProbeInSpamRule `yaml:"probe_in_spam"`
	// DNSHygiene alerts on the findings of the dns-sweeper's DNS audit, one
	// alert per check and target; resolved by the first audit of that
	// target that no longer reports it.
	DNSHygiene DNSHygieneRule `yaml:"dns_hygiene"`
	// ProbeLate alerts when the 95th percentile of the delivery latency of
	// the probes one provider received within window exceeds threshold;
	// resolved when it no longer does. Its window must fit in the PROBE
	// stream's retention, like windows.
	ProbeLate ProbeLateRule `yaml:"probe_late"`
	// StillRejected alerts when a provider still rejects one of our IPs
	// with a blocklist reason more than `after` after the last zone listing
	// it delisted it (the provider's cached reputation); resolved by the
	// next delivery from that IP the provider accepts. Its within must fit
	// in the DNS and DELIVERY streams' retention, like windows.
	StillRejected StillRejectedRule `yaml:"listed_but_delisted_still_rejected"`
	// DMARCAlignment alerts when one of our sending IPs (our_source) fails
	// DMARC at one reporter for at least share of its messages, over the
	// DMARC aggregate reports whose period ends within window (the
	// report's period, not when it arrived); resolved when the reports
	// within a later window fail under the share, or none remain. Its
	// window must fit in the DMARC stream's retention, like windows.
	DMARCAlignment DMARCAlignmentRule `yaml:"dmarc_alignment"`
	// DMARCUnknownSource alerts when a source IP outside our sending
	// networks sends more than max_messages in one day (of the reports'
	// periods) as one of our domains, once per domain and source; resolved
	// when no day within window is over any more. Its window must fit in
	// the DMARC stream's retention, like windows.
	DMARCUnknownSource DMARCUnknownSourceRule `yaml:"dmarc_unknown_source"`
	// TLSRPTFailure alerts when the TLS sessions to one receiving domain
	// (an SMTP TLS report's policy domain) fail for at least share, over
	// the reports whose period ends within window; resolved when they fail
	// under the share, or none remain. Its window must fit in the TLSRPT
	// stream's retention, like windows.
	TLSRPTFailure TLSRPTFailureRule `yaml:"tlsrpt_failure"`
	// Decisions sets how long decisions last and what Postfix is told.
	Decisions Decisions `yaml:"decisions"`
	// Partitions and Partition split subjects between copies of the
	// worker: copy Partition (0-based) of Partitions owns the subjects
	// whose hash falls in its partition. Every copy needs the same
	// Partitions and its own Partition.
	Partitions int `yaml:"partitions"`
	Partition  int `yaml:"partition"`
	// MaxDeliveryLag defers complaint judgments while more than this many
	// delivery events wait to be read, so a rate is never judged against a
	// denominator that is behind (0: never defer).
	MaxDeliveryLag int `yaml:"max_delivery_lag"`
	// DedupeWindow is how long delivery event ids are remembered to drop a
	// republished copy (complaint ids are remembered for the longest
	// window).
	DedupeWindow config.Duration `yaml:"dedupe_window"`
	// SampleIDs is how many complaint ids a decision quotes as evidence.
	SampleIDs int `yaml:"sample_ids"`
	// Tick is how often expired decisions are released.
	Tick config.Duration `yaml:"tick"`
	// RetryMin and RetryMax bound the backoff of a KV write or publish
	// that failed; it is retried until it succeeds.
	RetryMin config.Duration `yaml:"retry_min"`
	RetryMax config.Duration `yaml:"retry_max"`
	// Checkpoint saves the state every interval (and at a clean stop) in
	// the KV bucket evaluator_checkpoints, so a start loads it and reads
	// only the messages after it instead of rebuilding the windows from
	// the streams.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
}

// CheckpointConfig sets the checkpoints of the state (checkpoint.go).
type CheckpointConfig struct {
	// Enabled writes checkpoints and starts from the last one; off, every
	// start rebuilds the state from the streams.
	Enabled bool `yaml:"enabled"`
	// Interval is how often the state is saved: a start reads at most this
	// much of the streams again, plus the time the worker was down.
	Interval config.Duration `yaml:"interval"`
}

// Thresholds are the complaint limits of one scope, applied to every
// window. A rate counts only once the window holds MinDelivered
// deliveries; a count threshold of 0 is off.
type Thresholds struct {
	// WarnRate alerts, and ActRate decides, when complaints over deliveries
	// in a window reach it (a fraction: 0.003 is 0.3 %).
	WarnRate float64 `yaml:"warn_rate"`
	ActRate  float64 `yaml:"act_rate"`
	// MinDelivered is how many deliveries a window must hold before its
	// rate counts.
	MinDelivered uint64 `yaml:"min_delivered"`
	// WarnCount and ActCount do the same for the number of complaints in a
	// window, whatever the deliveries; 0 is off.
	WarnCount uint64 `yaml:"warn_count"`
	ActCount  uint64 `yaml:"act_count"`
	// Act makes the act thresholds decide; false only alerts.
	Act bool `yaml:"act"`
	// Action is what a decision does: "cutoff" or "reroute".
	Action string `yaml:"action"`
}

// BlocklistRule alerts on a listing of one of our IPs on a zone whose
// catalogue weight is at least MinWeight.
type BlocklistRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// MinWeight is the least catalogue weight of a zone whose listing
	// counts.
	MinWeight float64 `yaml:"min_weight"`
	// Domains alerts on listings of our domains too (domain blocklists);
	// they only alert, whatever act says.
	Domains bool `yaml:"domains"`
	// Severity is the severity of listing alerts: "info", "warning" or
	// "critical".
	Severity string `yaml:"severity"`
	// Act makes a listing decide; false only alerts.
	Act bool `yaml:"act"`
	// Action is what a decision does: "cutoff" or "reroute".
	Action string `yaml:"action"`
}

// RejectionBurstRule alerts when one provider rejects at least
// MinRejections deliveries from one IP within Window, counting only
// delivery attempts whose classifier category is in Categories.
type RejectionBurstRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is the period rejections are counted over.
	Window config.Duration `yaml:"window"`
	// MinRejections is how many rejections in Window trigger the rule.
	MinRejections uint64 `yaml:"min_rejections"`
	// Categories are the classifier categories of delivery.attempted that
	// count as rejections.
	Categories []string `yaml:"categories"`
	// Act makes a burst decide; false only alerts.
	Act bool `yaml:"act"`
	// Action is what a decision does: "cutoff" or "reroute".
	Action string `yaml:"action"`
}

// ProbeMissingRule alerts when probes from one IP went missing at at
// least MinProviders providers within Window.
type ProbeMissingRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is the period missing probes are counted over.
	Window config.Duration `yaml:"window"`
	// MinProviders is how many providers must miss probes from one IP.
	MinProviders int `yaml:"min_providers"`
	// Act makes missing probes decide; false only alerts.
	Act bool `yaml:"act"`
	// Action is what a decision does: "cutoff" or "reroute".
	Action string `yaml:"action"`
}

// ProbeMissingProviderRule alerts when one provider misses For probes of
// one source in a row.
type ProbeMissingProviderRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// For is how many probes in a row must be missing at the provider.
	For int `yaml:"for"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// ProbeSendFailedRule alerts when our own MTA refuses or fails For probes
// of one source in a row.
type ProbeSendFailedRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// For is how many probes in a row must fail.
	For int `yaml:"for"`
	// Outcomes are the probe.sent outcomes that count as failures:
	// "refused" (5xx), "tempfail" (4xx), "error" (no SMTP verdict: connect,
	// timeout, TLS or the sendmail command).
	Outcomes []string `yaml:"outcomes"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// ProbeInSpamRule alerts when Spam of the last Of probes of one source at
// one provider were filed as spam.
type ProbeInSpamRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Spam is how many of the last `of` received probes must be in spam.
	Spam int `yaml:"spam"`
	// Of is how many received probes are looked at.
	Of int `yaml:"of"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// ProbeLateRule alerts on the 95th percentile of probe latency at one
// provider.
type ProbeLateRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Window is the period whose received probes are looked at.
	Window config.Duration `yaml:"window"`
	// Threshold is the latency the 95th percentile must exceed.
	Threshold config.Duration `yaml:"threshold"`
	// MinProbes is how many received probes the window must hold before it
	// is judged.
	MinProbes int `yaml:"min_probes"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// StillRejectedRule alerts on blocklist rejections that outlast the
// listing.
type StillRejectedRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// After is how long after the delisting a blocklist rejection counts.
	After config.Duration `yaml:"after"`
	// Within is how long a delisting is remembered: rejections later than
	// that are not blamed on it.
	Within config.Duration `yaml:"within"`
	// Categories are the classifier categories of delivery.attempted that
	// count as blocklist rejections.
	Categories []string `yaml:"categories"`
	// Severity is the alert's severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// DNSHygieneRule alerts on DNS audit findings.
type DNSHygieneRule struct {
	// Enabled turns the rule on.
	Enabled bool `yaml:"enabled"`
	// Checks maps each dns.audit check that alerts (ptr, fcrdns, spf,
	// spf_authorizes_ip, dkim, dmarc, mx) to the least finding severity
	// that alerts ("info", "warning" or "critical"); checks not listed
	// never alert. The audit reports a sending IP that SPF does not
	// authorise as a warning.
	Checks map[string]string `yaml:"checks"`
	// Severity is the alerts' severity: "info", "warning" or "critical".
	Severity string `yaml:"severity"`
}

// Decisions sets how long decisions last and what they tell Postfix.
type Decisions struct {
	// First is the length of a first offence.
	First config.Duration `yaml:"first"`
	// Repeat are the lengths of the second, third, ... offence within
	// Memory; the last entry repeats; 0 lasts until lifted by hand
	// (`mailmon enforcement lift`).
	Repeat []config.Duration `yaml:"repeat"`
	// Memory is how long an offence counts towards escalation. At most the
	// DECISION stream's max_age, from which offences are rebuilt.
	// It must be at least 1 h shorter than the DECISION stream keeps (90d).
	Memory config.Duration `yaml:"memory"`
	// CutoffAction is the Postfix action of a cut-off: "DEFER_IF_PERMIT"
	// (4.x.x, the sender retries after the release) or "REJECT" (5.x.x).
	CutoffAction string `yaml:"cutoff_action"`
	// CutoffStatus is the enhanced status code of a cut-off's answer; its
	// class must match the action (4.x.x for DEFER_IF_PERMIT).
	CutoffStatus string `yaml:"cutoff_status"`
	// CutoffText is the text of a cut-off's answer; {subject}, {rule} and
	// {until} are replaced.
	CutoffText string `yaml:"cutoff_text"`
	// NDRTransport is the Postfix transport rerouted mail is filtered to
	// (the policy service answers "FILTER <transport>:").
	NDRTransport string `yaml:"ndr_transport"`
}

// DefaultConfig follows the big providers' bulk-sender rules: warn at
// 0.1 %, act at 0.3 % over 1 h, 24 h and 7 d, a first offence of 6 h.
func DefaultConfig() Config {
	th := func(act bool, action string) Thresholds {
		return Thresholds{WarnRate: 0.001, ActRate: 0.003, MinDelivered: 1000, Act: act, Action: action}
	}
	return Config{
		Windows:          []config.Duration{config.Duration(time.Hour), config.Duration(24 * time.Hour), config.Duration(7 * 24 * time.Hour)},
		Resolution:       60,
		Customer:         th(true, schemas.ActionCutoff),
		SourceIP:         th(false, schemas.ActionReroute),
		CustomerProvider: th(true, schemas.ActionReroute),
		Blocklist:        BlocklistRule{Enabled: true, MinWeight: 1, Domains: true, Severity: schemas.AlertCritical, Action: schemas.ActionReroute},
		RejectionBurst: RejectionBurstRule{Enabled: true, Window: config.Duration(15 * time.Minute), MinRejections: 50,
			Categories: []string{"blocked_ip_or_blocklist"}, Action: schemas.ActionReroute},
		ProbeMissing:         ProbeMissingRule{Enabled: true, Window: config.Duration(time.Hour), MinProviders: 2, Action: schemas.ActionReroute},
		ProbeMissingProvider: ProbeMissingProviderRule{Enabled: true, For: 2, Severity: schemas.AlertCritical},
		ProbeSendFailed: ProbeSendFailedRule{Enabled: true, For: 2,
			Outcomes: []string{schemas.OutcomeRefused, schemas.OutcomeTempfail, schemas.OutcomeError}, Severity: schemas.AlertCritical},
		ProbeInSpam: ProbeInSpamRule{Enabled: true, Spam: 3, Of: 5, Severity: schemas.AlertWarning},
		DNSHygiene: DNSHygieneRule{Enabled: true, Severity: schemas.AlertCritical, Checks: map[string]string{
			"ptr": schemas.SeverityCritical, "fcrdns": schemas.SeverityCritical, "spf": schemas.SeverityCritical,
			"spf_authorizes_ip": schemas.SeverityWarning, "dkim": schemas.SeverityCritical, "dmarc": schemas.SeverityCritical}},
		ProbeLate: ProbeLateRule{Enabled: true, Window: config.Duration(time.Hour), Threshold: config.Duration(10 * time.Minute),
			MinProbes: 5, Severity: schemas.AlertWarning},
		StillRejected: StillRejectedRule{Enabled: true, After: config.Duration(24 * time.Hour), Within: config.Duration(7 * 24 * time.Hour),
			Categories: []string{"blocked_ip_or_blocklist"}, Severity: schemas.AlertWarning},
		DMARCAlignment:     defaultDMARCAlignment(),
		DMARCUnknownSource: defaultDMARCUnknownSource(),
		TLSRPTFailure:      defaultTLSRPTFailure(),
		Decisions: Decisions{
			First:        config.Duration(6 * time.Hour),
			Repeat:       []config.Duration{config.Duration(24 * time.Hour), config.Duration(7 * 24 * time.Hour), 0},
			Memory:       config.Duration(30 * 24 * time.Hour),
			CutoffAction: "DEFER_IF_PERMIT",
			CutoffStatus: "4.7.1",
			CutoffText:   "Sending suspended for {subject}: {rule} above limit, until {until}",
			NDRTransport: "ndr",
		},
		Partitions:     1,
		MaxDeliveryLag: 1000,
		DedupeWindow:   config.Duration(10 * time.Minute),
		SampleIDs:      5,
		Tick:           config.Duration(time.Second),
		RetryMin:       config.Duration(100 * time.Millisecond),
		RetryMax:       config.Duration(10 * time.Second),
		Checkpoint:     CheckpointConfig{Enabled: true, Interval: config.Duration(time.Minute)},
	}
}

// retentionMargin is how much longer than a window the streams it is
// rebuilt from must keep their messages. The rebuild starts reading at
// now minus the window, so with a window equal to the retention the oldest
// messages it needs are the ones the server is expiring at that moment;
// the margin covers the server's expiry timer, a rebuild that takes a
// while to reach the end of a long window, and clocks a little apart.
const retentionMargin = time.Hour

// rebuiltFrom names, per config key holding a window, the subjects the
// evaluator reads back over that window at start. A window longer than one
// of their streams keeps would be rebuilt from truncated data: a 30 d rate
// window over 7 d of deliveries and 30 d of complaints inflates the rate
// about fourfold after every restart.
var rebuiltFrom = map[string][]string{
	"windows":                                   {schemas.SubjectComplaintReceived, schemas.SubjectDeliveryAttempted},
	"rejection_burst.window":                    {schemas.SubjectDeliveryAttempted},
	"probe_missing.window":                      {schemas.SubjectProbeMissing},
	"probe_late.window":                         {schemas.SubjectProbeReceived},
	"listed_but_delisted_still_rejected.within": {schemas.SubjectDNSBLDelisted, schemas.SubjectDeliveryAttempted},
	"decisions.memory":                          {schemas.SubjectDecisionCutoff, schemas.SubjectDecisionReroute, schemas.SubjectDecisionLift},
	"dmarc_alignment.window":                    {schemas.SubjectDMARCRecord},
	"dmarc_unknown_source.window":               {schemas.SubjectDMARCRecord},
	"tlsrpt_failure.window":                     {schemas.SubjectTLSRPTResult},
}

// checkRetention refuses a window (at path) that the streams of its
// subjects (rebuiltFrom[key]) do not keep for long enough, naming the one
// that keeps the least.
func checkRetention(check *config.Check, top pipelines.Topology, key, path string, window config.Duration) {
	var shortest pipelines.Stream
	for _, subject := range rebuiltFrom[key] {
		stream, ok := top.StreamFor(subject)
		if !ok {
			check.Addf(path, "no stream of the topology holds %s, which it is rebuilt from", subject)
			return
		}
		if shortest.Name == "" || stream.MaxAge < shortest.MaxAge {
			shortest = stream
		}
	}
	keeps := time.Duration(shortest.MaxAge)
	if !fitsRetention(window, keeps) {
		check.Addf(path, "%s does not fit in the retention of the %s stream it is rebuilt from (max_age %s, which must exceed the window by %s): after a restart it would be judged over truncated data; shorten it or raise the stream's max_age in pipelines/topology.yaml",
			window, shortest.Name, config.Duration(keeps), retentionMargin)
	}
}

// fitsRetention says whether a stream keeping messages for maxAge (0:
// for ever) holds a whole window with the margin to spare.
func fitsRetention(window config.Duration, maxAge time.Duration) bool {
	return maxAge <= 0 || window.Std()+retentionMargin <= maxAge
}

// rebuildWindow is one window the evaluator reads back at start: its key in
// rebuiltFrom, its config path and its length.
type rebuildWindow struct {
	key, path string
	window    config.Duration
}

// rebuildWindows lists the positive windows of the enabled rules.
func (c Config) rebuildWindows() []rebuildWindow {
	var out []rebuildWindow
	for i, w := range c.Windows {
		if w > 0 {
			out = append(out, rebuildWindow{"windows", fmt.Sprintf("windows[%d]", i), w})
		}
	}
	if c.RejectionBurst.Enabled && c.RejectionBurst.Window > 0 {
		out = append(out, rebuildWindow{"rejection_burst.window", "rejection_burst.window", c.RejectionBurst.Window})
	}
	if c.ProbeMissing.Enabled && c.ProbeMissing.Window > 0 {
		out = append(out, rebuildWindow{"probe_missing.window", "probe_missing.window", c.ProbeMissing.Window})
	}
	if c.ProbeLate.Enabled && c.ProbeLate.Window > 0 {
		out = append(out, rebuildWindow{"probe_late.window", "probe_late.window", c.ProbeLate.Window})
	}
	if c.StillRejected.Enabled && c.StillRejected.Within > 0 {
		out = append(out, rebuildWindow{"listed_but_delisted_still_rejected.within", "listed_but_delisted_still_rejected.within", c.StillRejected.Within})
	}
	for _, r := range []struct {
		path    string
		enabled bool
		window  config.Duration
	}{
		{"dmarc_alignment.window", c.DMARCAlignment.Enabled, c.DMARCAlignment.Window},
		{"dmarc_unknown_source.window", c.DMARCUnknownSource.Enabled, c.DMARCUnknownSource.Window},
		{"tlsrpt_failure.window", c.TLSRPTFailure.Enabled, c.TLSRPTFailure.Window},
	} {
		if r.enabled && r.window > 0 {
			out = append(out, rebuildWindow{r.path, r.path, r.window})
		}
	}
	if c.Decisions.Memory > 0 {
		out = append(out, rebuildWindow{"decisions.memory", "decisions.memory", c.Decisions.Memory})
	}
	return out
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var check config.Check
	if len(c.Windows) == 0 {
		check.Addf("windows", "at least one window is required")
	}
	top, err := pipelines.Default()
	if err != nil {
		check.Addf("", "reading the stream topology: %v", err)
	}
	for i, w := range c.Windows {
		if w <= 0 {
			check.Addf(fmt.Sprintf("windows[%d]", i), "must be positive, got %s", w)
		}
	}
	if c.Resolution < 1 || c.Resolution > 10000 {
		check.Addf("resolution", "must be 1..10000, got %d", c.Resolution)
	}
	check.Nest("customer", c.Customer.validate())
	check.Nest("source_ip", c.SourceIP.validate())
	check.Nest("customer_provider", c.CustomerProvider.validate())
	if c.Blocklist.Enabled {
		checkAction(&check, "blocklist.action", c.Blocklist.Action)
		checkSeverity(&check, "blocklist.severity", c.Blocklist.Severity)
	}
	c.validateAlertRules(&check)
	if c.RejectionBurst.Enabled {
		if c.RejectionBurst.Window <= 0 {
			check.Addf("rejection_burst.window", "must be positive")
		}
		if c.RejectionBurst.MinRejections < 1 {
			check.Addf("rejection_burst.min_rejections", "must be at least 1")
		}
		if len(c.RejectionBurst.Categories) == 0 {
			check.Addf("rejection_burst.categories", "at least one category is required")
		}
		checkAction(&check, "rejection_burst.action", c.RejectionBurst.Action)
	}
	if c.ProbeMissing.Enabled {
		if c.ProbeMissing.Window <= 0 {
			check.Addf("probe_missing.window", "must be positive")
		}
		if c.ProbeMissing.MinProviders < 1 {
			check.Addf("probe_missing.min_providers", "must be at least 1")
		}
		checkAction(&check, "probe_missing.action", c.ProbeMissing.Action)
	}
	check.Nest("decisions", c.Decisions.validate())
	if err == nil {
		for _, w := range c.rebuildWindows() {
			checkRetention(&check, top, w.key, w.path, w.window)
		}
	}
	if c.Partitions < 1 {
		check.Addf("partitions", "must be at least 1, got %d", c.Partitions)
	}
	if c.Partition < 0 || c.Partition >= max(c.Partitions, 1) {
		check.Addf("partition", "must be 0..partitions-1 (%d), got %d", max(c.Partitions, 1)-1, c.Partition)
	}
	if c.MaxDeliveryLag < 0 {
		check.Addf("max_delivery_lag", "must not be negative")
	}
	if c.DedupeWindow <= 0 {
		check.Addf("dedupe_window", "must be positive")
	}
	if c.SampleIDs < 0 || c.SampleIDs > 100 {
		check.Addf("sample_ids", "must be 0..100, got %d", c.SampleIDs)
	}
	if c.Tick <= 0 {
		check.Addf("tick", "must be positive")
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		check.Addf("retry_max", "retry_min must be positive and retry_max at least retry_min")
	}
	if c.Checkpoint.Enabled && c.Checkpoint.Interval < config.Duration(time.Second) {
		check.Addf("checkpoint.interval", "must be at least 1s, got %s", c.Checkpoint.Interval)
	}
	return check.Err()
}

func (t Thresholds) validate() error {
	var check config.Check
	for _, r := range []struct {
		key string
		v   float64
	}{{"warn_rate", t.WarnRate}, {"act_rate", t.ActRate}} {
		if r.v < 0 || r.v > 1 {
			check.Addf(r.key, "is a fraction (0.003 is 0.3 %%), 0..1, got %g", r.v)
		}
	}
	if t.WarnRate > 0 && t.ActRate > 0 && t.WarnRate > t.ActRate {
		check.Addf("warn_rate", "must not exceed act_rate (%g)", t.ActRate)
	}
	if t.WarnCount > 0 && t.ActCount > 0 && t.WarnCount > t.ActCount {
		check.Addf("warn_count", "must not exceed act_count (%d)", t.ActCount)
	}
	checkAction(&check, "action", t.Action)
	return check.Err()
}

func (d Decisions) validate() error {
	var check config.Check
	if d.First <= 0 {
		check.Addf("first", "must be positive")
	}
	for i, r := range d.Repeat {
		if r < 0 {
			check.Addf(fmt.Sprintf("repeat[%d]", i), "must not be negative (0 lasts until lifted)")
		}
	}
	if d.Memory <= 0 {
		check.Addf("memory", "must be positive, got %s", d.Memory)
	}
	switch d.CutoffAction {
	case "DEFER_IF_PERMIT":
		if len(d.CutoffStatus) > 0 && d.CutoffStatus[0] != '4' {
			check.Addf("cutoff_status", "DEFER_IF_PERMIT needs a 4.x.x code, got %q", d.CutoffStatus)
		}
	case "REJECT":
		if len(d.CutoffStatus) > 0 && d.CutoffStatus[0] != '5' {
			check.Addf("cutoff_status", "REJECT needs a 5.x.x code, got %q", d.CutoffStatus)
		}
	default:
		check.Addf("cutoff_action", "must be DEFER_IF_PERMIT or REJECT, got %q", d.CutoffAction)
	}
	if !validStatus(d.CutoffStatus) {
		check.Addf("cutoff_status", "must be an enhanced status code such as 4.7.1, got %q", d.CutoffStatus)
	}
	if d.CutoffText == "" {
		check.Addf("cutoff_text", "is required")
	}
	if !enforcement.ValidTransport(d.NDRTransport) {
		check.Addf("ndr_transport", "must be a master.cf service name, got %q", d.NDRTransport)
	}
	return check.Err()
}

func checkAction(check *config.Check, path, action string) {
	if !slices.Contains([]string{schemas.ActionCutoff, schemas.ActionReroute}, action) {
		check.Addf(path, "must be cutoff or reroute, got %q", action)
	}
}

func validStatus(s string) bool {
	var a, b, c int
	n, err := fmt.Sscanf(s, "%d.%d.%d", &a, &b, &c)
	return err == nil && n == 3 && (a == 4 || a == 5) && fmt.Sprintf("%d.%d.%d", a, b, c) == s
}

// durationFor is the length of the n-th offence (1-based); 0 lasts until
// lifted.
func (d Decisions) durationFor(offence int) time.Duration {
	if offence <= 1 || len(d.Repeat) == 0 {
		return d.First.Std()
	}
	i := min(offence-2, len(d.Repeat)-1)
	return d.Repeat[i].Std()
}

func (c Config) longestWindow() time.Duration {
	var w time.Duration
	for _, x := range c.Windows {
		w = max(w, x.Std())
	}
	if c.RejectionBurst.Enabled {
		w = max(w, c.RejectionBurst.Window.Std())
	}
	if c.ProbeMissing.Enabled {
		w = max(w, c.ProbeMissing.Window.Std())
	}
	if c.ProbeLate.Enabled {
		w = max(w, c.ProbeLate.Window.Std())
	}
	if c.StillRejected.Enabled {
		w = max(w, c.StillRejected.Within.Std())
	}
	if c.DMARCAlignment.Enabled {
		w = max(w, c.DMARCAlignment.Window.Std())
	}
	if c.DMARCUnknownSource.Enabled {
		w = max(w, c.DMARCUnknownSource.Window.Std())
	}
	if c.TLSRPTFailure.Enabled {
		w = max(w, c.TLSRPTFailure.Window.Std())
	}
	return w
}

func (c Config) thresholds(scope string) Thresholds {
	switch scope {
	case schemas.ScopeCustomer:
		return c.Customer
	case schemas.ScopeSourceIP:
		return c.SourceIP
	default:
		return c.CustomerProvider
	}
}

// validateAlertRules checks the rules that only alert.
func (c Config) validateAlertRules(check *config.Check) {
	if r := c.ProbeMissingProvider; r.Enabled {
		if r.For < 1 || r.For > maxKeptIDs {
			check.Addf("probe_missing_provider.for", "must be 1..%d, got %d", maxKeptIDs, r.For)
		}
		checkSeverity(check, "probe_missing_provider.severity", r.Severity)
	}
	if r := c.ProbeSendFailed; r.Enabled {
		if r.For < 1 || r.For > maxKeptIDs {
			check.Addf("probe_send_failed.for", "must be 1..%d, got %d", maxKeptIDs, r.For)
		}
		if len(r.Outcomes) == 0 {
			check.Addf("probe_send_failed.outcomes", "at least one outcome is required")
		}
		for i, o := range r.Outcomes {
			if !slices.Contains([]string{schemas.OutcomeRefused, schemas.OutcomeTempfail, schemas.OutcomeError}, o) {
				check.Addf(fmt.Sprintf("probe_send_failed.outcomes[%d]", i), "must be refused, tempfail or error, got %q", o)
			}
		}
		checkSeverity(check, "probe_send_failed.severity", r.Severity)
	}
	if r := c.ProbeInSpam; r.Enabled {
		if r.Of < 1 || r.Of > maxKeptIDs {
			check.Addf("probe_in_spam.of", "must be 1..%d, got %d", maxKeptIDs, r.Of)
		}
		if r.Spam < 1 || r.Spam > r.Of {
			check.Addf("probe_in_spam.spam", "must be 1..of (%d), got %d", r.Of, r.Spam)
		}
		checkSeverity(check, "probe_in_spam.severity", r.Severity)
	}
	if r := c.ProbeLate; r.Enabled {
		if r.Window <= 0 {
			check.Addf("probe_late.window", "must be positive")
		}
		if r.Threshold <= 0 {
			check.Addf("probe_late.threshold", "must be positive")
		}
		if r.MinProbes < 1 || r.MinProbes > maxLatencySamples {
			check.Addf("probe_late.min_probes", "must be 1..%d, got %d", maxLatencySamples, r.MinProbes)
		}
		checkSeverity(check, "probe_late.severity", r.Severity)
	}
	if r := c.StillRejected; r.Enabled {
		if r.After <= 0 {
			check.Addf("listed_but_delisted_still_rejected.after", "must be positive")
		}
		if r.Within <= r.After {
			check.Addf("listed_but_delisted_still_rejected.within", "must be longer than after (%s)", r.After)
		}
		if len(r.Categories) == 0 {
			check.Addf("listed_but_delisted_still_rejected.categories", "at least one category is required")
		}
		checkSeverity(check, "listed_but_delisted_still_rejected.severity", r.Severity)
	}
	if r := c.DNSHygiene; r.Enabled {
		if len(r.Checks) == 0 {
			check.Addf("dns_hygiene.checks", "at least one check is required")
		}
		for name, least := range r.Checks {
			if !slices.Contains(auditChecks, name) {
				check.Addf("dns_hygiene.checks."+name, "unknown check; the audit's checks are %s", strings.Join(auditChecks, ", "))
			}
			if least != schemas.SeverityInfo && least != schemas.SeverityWarning && least != schemas.SeverityCritical {
				check.Addf("dns_hygiene.checks."+name, "must be info, warning or critical, got %q", least)
			}
		}
		checkSeverity(check, "dns_hygiene.severity", r.Severity)
	}
	c.validateReportRules(check)
}

// auditChecks are the checks a dns.audit event reports.
var auditChecks = []string{"ptr", "fcrdns", "spf", "spf_authorizes_ip", "dkim", "dmarc", "mx"}

func checkSeverity(check *config.Check, path, severity string) {
	if !slices.Contains([]string{schemas.AlertInfo, schemas.AlertWarning, schemas.AlertCritical}, severity) {
		check.Addf(path, "must be info, warning or critical, got %q", severity)
	}
}
