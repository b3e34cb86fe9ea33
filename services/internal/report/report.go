package report

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Period is the span a report covers.
type Period string

const (
	// Daily covers the 24 hours before the report's end.
	Daily Period = "daily"
	// Weekly covers the 7 days before the report's end.
	Weekly Period = "weekly"
)

// ParsePeriod reads "daily" or "weekly".
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case Daily, Weekly:
		return p, nil
	}
	return "", fmt.Errorf("report period %q: want daily or weekly", s)
}

// Duration is the length of the period.
func (p Period) Duration() time.Duration {
	if p == Weekly {
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// Options choose what a report covers.
type Options struct {
	// Period is Daily or Weekly.
	Period Period
	// Customer, when set, restricts deliveries, replies, domains,
	// decisions and complaints to that customer.
	Customer string
	// End is when the period ends, rounded down to the hour; zero means
	// now.
	End time.Time
}

// Section sizes: how many rows the "top" lists keep.
const (
	topReplies = 10
	topDomains = 10
	maxSamples = 3
)

// Limits on outside text kept in a report.
const (
	maxReplyRunes   = 200
	maxSubjectRunes = 120
	maxExcerptRunes = 240
	maxTXTRunes     = 160
)

// Report is the summary of one period. Its JSON is the report's JSON
// format; every list is empty rather than null when there is nothing.
type Report struct {
	Period   Period `json:"period"`
	Customer string `json:"customer,omitempty"`
	// From and To bound the period: From inclusive, To exclusive, UTC.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`

	Deliveries Deliveries `json:"deliveries"`
	// Failures are the attempts that did not end in "sent", by status,
	// category and provider, most first.
	Failures         []Failure `json:"failures"`
	TopReplies       []Reply   `json:"top_replies"`
	RejectingDomains []Domain  `json:"rejecting_domains"`

	// Probes has one row per provider; ProbeTotal sums them (its
	// latencies are over every probe, not an average of providers).
	Probes     []Placement `json:"probes"`
	ProbeTotal Placement   `json:"probe_total"`

	Listings  Listings   `json:"listings"`
	Decisions []Decision `json:"decisions"`
	FBL       FBLReview  `json:"fbl_review"`
}

// Deliveries counts delivery attempts by status.
type Deliveries struct {
	Attempts uint64 `json:"attempts"`
	Sent     uint64 `json:"sent"`
	Deferred uint64 `json:"deferred"`
	Bounced  uint64 `json:"bounced"`
	Expired  uint64 `json:"expired"`
	// Rejected were refused by our own MTA before queueing (a policy
	// cut-off, for example).
	Rejected uint64 `json:"rejected"`
	// Other counts any status the report does not know.
	Other uint64 `json:"other"`
	// DeliveredPercent is Sent of Sent+Bounced+Expired+Rejected.
	DeliveredPercent float64 `json:"delivered_percent"`
	// DeferredPercent is Deferred of Attempts.
	DeferredPercent float64 `json:"deferred_percent"`
}

// Concluded is the attempts that ended a recipient's delivery one way
// or the other.
func (d Deliveries) Concluded() uint64 { return d.Sent + d.Bounced + d.Expired + d.Rejected }

// Failure counts failed attempts of one status, category and provider.
type Failure struct {
	Status   string `json:"status"`
	Category string `json:"category"`
	Provider string `json:"provider"`
	Count    uint64 `json:"count"`
}

// Reply is one remote reply signature and how often it was seen.
type Reply struct {
	Status    string   `json:"status"`
	Category  string   `json:"category"`
	Signature string   `json:"signature"`
	Sample    string   `json:"sample_reply"`
	Providers []string `json:"providers"`
	Count     uint64   `json:"count"`
}

// Domain is a recipient domain whose servers refused our mail.
type Domain struct {
	Domain   string `json:"domain"`
	Deferred uint64 `json:"deferred"`
	// Bounced includes expired deliveries.
	Bounced uint64 `json:"bounced"`
	Total   uint64 `json:"total"`
}

// Placement is where one provider put our probes.
type Placement struct {
	Provider string `json:"provider"`
	// Sent counts submissions, RelayFailed those our relay did not accept.
	Sent        uint64 `json:"sent"`
	RelayFailed uint64 `json:"relay_failed"`
	Received    uint64 `json:"received"`
	Inbox       uint64 `json:"inbox"`
	Spam        uint64 `json:"spam"`
	// OtherFolder counts probes found outside the inbox and spam.
	OtherFolder uint64 `json:"other_folder"`
	Missing     uint64 `json:"missing"`
	// The percentages are of Received+Missing, the probes that concluded.
	InboxPercent   float64 `json:"inbox_percent"`
	SpamPercent    float64 `json:"spam_percent"`
	MissingPercent float64 `json:"missing_percent"`
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP95Ms   float64 `json:"latency_p95_ms"`
}

// Concluded is the probes found or declared missing.
func (p Placement) Concluded() uint64 { return p.Received + p.Missing }

// Listings are the blocklist listings of the period and at its end.
type Listings struct {
	// Listed started during the period, Delisted ended during it.
	Listed   []Listing   `json:"listed"`
	Delisted []Delisting `json:"delisted"`
	// Current are in force at the end of the period.
	Current []Listing `json:"current"`
}

// Listing is one blocklist listing of one of our IPs or domains.
type Listing struct {
	Zone       string    `json:"zone"`
	Target     string    `json:"target"`
	TargetKind string    `json:"target_kind"`
	SourceIP   string    `json:"source_ip,omitempty"`
	Since      time.Time `json:"since"`
	TXT        string    `json:"txt,omitempty"`
	DelistURL  string    `json:"delist_url,omitempty"`
}

// Delisting is the end of a listing.
type Delisting struct {
	Zone        string    `json:"zone"`
	Target      string    `json:"target"`
	TargetKind  string    `json:"target_kind"`
	SourceIP    string    `json:"source_ip,omitempty"`
	Time        time.Time `json:"time"`
	ListedSince time.Time `json:"listed_since"`
}

// Decision is a cut-off or reroute the complaint evaluator took.
type Decision struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // cutoff or reroute
	Scope    string    `json:"scope"`
	Subject  string    `json:"subject"`
	Customer string    `json:"customer,omitempty"`
	Provider string    `json:"provider,omitempty"`
	SourceIP string    `json:"source_ip,omitempty"`
	Rule     string    `json:"rule"`
	// Action is the policy action of a cut-off, the transport of a reroute.
	Action     string    `json:"action"`
	Complaints uint64    `json:"complaints"`
	Delivered  uint64    `json:"delivered"`
	Rate       float64   `json:"rate"`
	Threshold  float64   `json:"threshold"`
	Until      time.Time `json:"until"`
}

// FBLReview is the complaints of the period by customer.
type FBLReview struct {
	// Complaints are counted reports from a trusted origin; Untrusted are
	// counted reports whose origin could not be verified.
	Complaints uint64              `json:"complaints"`
	Untrusted  uint64              `json:"untrusted"`
	Customers  []CustomerComplaint `json:"customers"`
}

// CustomerComplaint is one customer's line of the FBL review.
type CustomerComplaint struct {
	// Customer is empty for reports traced to no customer.
	Customer   string `json:"customer"`
	Complaints uint64 `json:"complaints"`
	Untrusted  uint64 `json:"untrusted"`
	// Delivered is the customer's sent deliveries; RatePercent is
	// Complaints of Delivered (0 when nothing was delivered).
	Delivered   uint64   `json:"delivered"`
	RatePercent float64  `json:"rate_percent"`
	Samples     []Sample `json:"samples"`
}

// Sample is one complaint as the abuse team reviews it.
type Sample struct {
	Time         time.Time `json:"time"`
	Provider     string    `json:"provider"`
	FeedbackType string    `json:"feedback_type"`
	Trusted      bool      `json:"trusted"`
	Subject      string    `json:"subject"`
	Excerpt      string    `json:"excerpt"`
}

// Bounds returns the period a report with these options covers.
func (o Options) Bounds() (from, to time.Time) {
	end := o.End
	if end.IsZero() {
		end = time.Now()
	}
	to = end.UTC().Truncate(time.Hour)
	return to.Add(-o.Period.Duration()), to
}

// Build reads the report for opts from ClickHouse through conn, whose
// default database holds mailmon's tables.
func Build(ctx context.Context, conn driver.Conn, opts Options) (Report, error) {
	if _, err := ParsePeriod(string(opts.Period)); err != nil {
		return Report{}, err
	}
	from, to := opts.Bounds()
	q := query{conn: conn, from: from, to: to, customer: opts.Customer}
	r := Report{
		Period:   opts.Period,
		Customer: opts.Customer,
		From:     from,
		To:       to,
	}
	steps := []struct {
		name string
		run  func(context.Context, *Report) error
	}{
		{"deliveries", q.deliveries},
		{"failures", q.failures},
		{"top replies", q.replies},
		{"rejecting domains", q.domains},
		{"probes", q.probes},
		{"listings", q.listings},
		{"decisions", q.decisions},
		{"fbl review", q.complaints},
	}
	for _, s := range steps {
		if err := s.run(ctx, &r); err != nil {
			return Report{}, fmt.Errorf("report %s: %w", s.name, err)
		}
	}
	r.fillEmpty()
	return r, nil
}

// fillEmpty makes every nil list empty, so the JSON has [] rather than null.
func (r *Report) fillEmpty() {
	if r.Failures == nil {
		r.Failures = []Failure{}
	}
	if r.TopReplies == nil {
		r.TopReplies = []Reply{}
	}
	for i := range r.TopReplies {
		if r.TopReplies[i].Providers == nil {
			r.TopReplies[i].Providers = []string{}
		}
	}
	if r.RejectingDomains == nil {
		r.RejectingDomains = []Domain{}
	}
	if r.Probes == nil {
		r.Probes = []Placement{}
	}
	if r.Listings.Listed == nil {
		r.Listings.Listed = []Listing{}
	}
	if r.Listings.Delisted == nil {
		r.Listings.Delisted = []Delisting{}
	}
	if r.Listings.Current == nil {
		r.Listings.Current = []Listing{}
	}
	if r.Decisions == nil {
		r.Decisions = []Decision{}
	}
	if r.FBL.Customers == nil {
		r.FBL.Customers = []CustomerComplaint{}
	}
	for i := range r.FBL.Customers {
		if r.FBL.Customers[i].Samples == nil {
			r.FBL.Customers[i].Samples = []Sample{}
		}
	}
}
