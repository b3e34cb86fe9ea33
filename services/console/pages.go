package console

import (
	"time"
)

// The page types below are what every page shows, and what it answers
// as JSON for Accept: application/json: the HTML is rendered from the same
// values. Percentages are percent (97.0 is 97.0 %), rates of the
// evaluator's thresholds fractions. Lists that are empty are null.

// Meta is what every page carries: its name, the parameters it was built
// for, when, and notes about sources that could not be read (the page
// shows the rest).
type Meta struct {
	Page   string    `json:"page"`
	Params Params    `json:"params"`
	Now    time.Time `json:"now"`
	Notes  []string  `json:"notes,omitempty"`
}

// Overview is the matrix of / : rows (IPs or customers) × providers.
type Overview struct {
	Meta
	By        string   `json:"by"`
	Rows      []string `json:"rows"`
	Providers []string `json:"providers"`
	// Cells are the matrix's non-empty cells, by row then provider.
	Cells []Cell `json:"cells"`
	// Thresholds are the complaint limits the cells are judged against.
	Thresholds Limit `json:"thresholds"`
}

// Cell is one row × provider of the overview.
type Cell struct {
	Row      string `json:"row"`
	Provider string `json:"provider"`

	Attempts     uint64  `json:"attempts"`
	Sent         uint64  `json:"sent"`
	Deferred     uint64  `json:"deferred"`
	Failed       uint64  `json:"failed"`
	DeliveredPct float64 `json:"delivered_pct"`
	DeferredPct  float64 `json:"deferred_pct"`
	// Baseline*Pct are the medians of the daily rates of the 7 UTC days
	// before the range's first day (days with attempts only).
	BaselineDeliveredPct float64 `json:"baseline_delivered_pct"`
	BaselineDeferredPct  float64 `json:"baseline_deferred_pct"`
	// BaselineDays is how many of those days had attempts; with none the
	// medians are 0 and mean nothing.
	BaselineDays int `json:"baseline_days"`
	// TopRejection is the classifier category of most deferrals and
	// failures.
	TopRejection string `json:"top_rejection"`

	// Listings are the zones listing the IP now (IP rows only).
	Listings []string `json:"listings"`

	Complaints       uint64  `json:"complaints"`
	ComplaintRatePct float64 `json:"complaint_rate_pct"`
	// ComplaintLevel is "ok", "warn" or "act" against Thresholds.
	ComplaintLevel string `json:"complaint_level"`

	// LastPlacement is the last probe's placement in the range ("inbox",
	// "spam", "other", "missing"; IP rows only), LastLatencyMs its
	// latency (the bucket's median).
	LastPlacement string  `json:"last_placement"`
	LastLatencyMs float64 `json:"last_latency_ms"`

	// Enforcement are the subjects of decisions in force over the cell's
	// traffic.
	Enforcement []string `json:"enforcement"`
	// Signal is the worst signal: "ok", "warn" or "bad".
	Signal string `json:"signal"`
}

// Probes is the /probes page.
type Probes struct {
	Meta
	Rows []ProbeRow `json:"rows"`
	// Series are inbox % and latency over time per provider × source.
	Series []ProbeSeries `json:"series"`
	Step   string        `json:"step"`
}

// ProbeRow is one provider × source over the range.
type ProbeRow struct {
	Provider      string  `json:"provider"`
	SourceIP      string  `json:"source_ip"`
	Sent          uint64  `json:"sent"`
	Inbox         uint64  `json:"inbox"`
	Spam          uint64  `json:"spam"`
	Other         uint64  `json:"other"`
	Missing       uint64  `json:"missing"`
	InboxPct      float64 `json:"inbox_pct"` // of received + missing
	SpamPct       float64 `json:"spam_pct"`
	MissingPct    float64 `json:"missing_pct"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP95Ms  float64 `json:"latency_p95_ms"`
	LastPlacement string  `json:"last_placement"`
	LastLatencyMs float64 `json:"last_latency_ms"`
}

// ProbeSeries is one provider × source over time.
type ProbeSeries struct {
	Provider string       `json:"provider"`
	SourceIP string       `json:"source_ip"`
	Points   []ProbePoint `json:"points"`
}

// ProbePoint is one step of a ProbeSeries.
type ProbePoint struct {
	Time         time.Time `json:"time"`
	InboxPct     float64   `json:"inbox_pct"`
	Probes       uint64    `json:"probes"`
	LatencyP50Ms float64   `json:"latency_p50_ms"`
	LatencyP95Ms float64   `json:"latency_p95_ms"`
}

// Deliveries is the /deliveries page.
type Deliveries struct {
	Meta
	// Totals are attempts by status; Rejections deferrals and failures
	// by classifier category.
	Totals     map[string]uint64 `json:"totals"`
	Rejections map[string]uint64 `json:"rejections"`
	// Series are attempts by status over time.
	Series []StatusSeries `json:"series"`
	Step   string         `json:"step"`
	// Replies are the most frequent remote replies of deferrals and
	// failures per provider and customer (hourly buckets: the first hour
	// of the range is read whole).
	Replies []Reply `json:"replies"`
}

// StatusSeries is one status over time.
type StatusSeries struct {
	Status string       `json:"status"`
	Points []CountPoint `json:"points"`
}

// CountPoint is a count at a time.
type CountPoint struct {
	Time  time.Time `json:"time"`
	Count uint64    `json:"count"`
}

// Reply is a remote reply and how often it was seen.
type Reply struct {
	Provider  string `json:"provider"`
	Customer  string `json:"customer"`
	Status    string `json:"status"`
	Category  string `json:"category"`
	Signature string `json:"signature"`
	Sample    string `json:"sample"`
	Attempts  uint64 `json:"attempts"`
}

// Blocklists is the /blocklists page.
type Blocklists struct {
	Meta
	Listings []Listing      `json:"listings"`
	History  []ListingEvent `json:"history"`
	Audits   []Audit        `json:"audits"`
}

// Listing is a listing in force.
type Listing struct {
	Zone       string    `json:"zone"`
	Target     string    `json:"target"`
	TargetKind string    `json:"target_kind"`
	SourceIP   string    `json:"source_ip"`
	TXT        string    `json:"txt"`
	DelistURL  string    `json:"delist_url"`
	Since      time.Time `json:"since"`
}

// ListingEvent is a listing or delisting.
type ListingEvent struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Zone   string    `json:"zone"`
	Target string    `json:"target"`
}

// Audit is the latest DNS hygiene audit of a target.
type Audit struct {
	Target        string    `json:"target"`
	TargetKind    string    `json:"target_kind"`
	WorstSeverity string    `json:"worst_severity"`
	Time          time.Time `json:"time"`
	Checks        []string  `json:"checks"`
	Severities    []string  `json:"severities"`
	Messages      []string  `json:"messages"`
}

// Complaints is the /complaints page.
type Complaints struct {
	Meta
	Rows       []ComplaintRow `json:"rows"`
	InForce    []Decision     `json:"in_force"`
	History    []Decision     `json:"history"`
	Thresholds Limit          `json:"thresholds"`
}

// ComplaintRow is a customer × provider complaint rate.
type ComplaintRow struct {
	Customer   string  `json:"customer"`
	Provider   string  `json:"provider"`
	Complaints uint64  `json:"complaints"`
	Sent       uint64  `json:"sent"`
	RatePct    float64 `json:"rate_pct"`
	Level      string  `json:"level"`
	WarnPct    float64 `json:"warn_pct"`
	ActPct     float64 `json:"act_pct"`
}

// Decision is an enforcement decision with its evidence.
type Decision struct {
	ID         string    `json:"id"`
	Action     string    `json:"action"`
	Scope      string    `json:"scope"`
	Subject    string    `json:"subject"`
	Rule       string    `json:"rule"`
	Time       time.Time `json:"time"`
	Until      time.Time `json:"until"`
	Complaints uint64    `json:"complaints"`
	Delivered  uint64    `json:"delivered"`
	Rate       float64   `json:"rate"`
	Threshold  float64   `json:"threshold"`
	// LiftCommand lifts a decision in force; the console does not write.
	LiftCommand string `json:"lift_command"`
}

// Alerts is the /alerts page: each alert's latest state in the range,
// and the silences in force or to come.
type Alerts struct {
	Meta
	Firing   []Alert `json:"firing"`
	Resolved []Alert `json:"resolved"`
	Silenced []Alert `json:"silenced"`
	// Silences are the silences of the alert_silences bucket that are
	// active or pending now, ending first first.
	Silences []Silence `json:"silences"`
}

// Silence is one silence with the command that ends it.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []string  `json:"matchers"`
	State     string    `json:"state"` // "active" or "pending"
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by"`
	// ExpireCommand ends the silence; the console does not write.
	ExpireCommand string `json:"expire_command"`
}

// Alert is an alert's latest alert_raised row.
type Alert struct {
	Rule     string    `json:"rule"`
	Status   string    `json:"status"`
	Severity string    `json:"severity"`
	Subject  string    `json:"subject"`
	Summary  string    `json:"summary"`
	Time     time.Time `json:"time"`
	Silenced bool      `json:"silenced"`
}

// Trace is the /trace page: one message's journey.
type Trace struct {
	Meta
	Steps []TraceStep `json:"steps"`
}

// TraceStep is one event of a message's journey.
type TraceStep struct {
	Time time.Time `json:"time"`
	// Kind is "probe_sent", "probe_received", "probe_missing", "attempt",
	// "bounce", "complaint" or "decision".
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}
