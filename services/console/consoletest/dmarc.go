package consoletest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
)

// The DMARC and TLS reports' seeded names.
const (
	// DMARCDomain is our domain with reports from three receivers;
	// DMARCOtherDomain a second one of ours, reported by one.
	DMARCDomain      = "acme.example"
	DMARCOtherDomain = "news.beta.example"
	// SpoofIP sends as DMARCDomain from outside our networks, seen by two
	// receivers; ForwarderIP forwards some of our mail (DKIM survives).
	SpoofIP     = "203.0.113.66"
	ForwarderIP = "198.51.100.25"
	// OldSpoofIP sent as DMARCDomain nine days ago, outside every range
	// the tests ask for but 30d.
	OldSpoofIP = "203.0.113.99"
	// TLSDomain is the receiving domain whose TLS sessions fail most.
	TLSDomain = "mx.example.net"
)

// DMARCRow is one domain × source IP × reporter of /dmarc.
type DMARCRow struct {
	Domain      string  `json:"domain"`
	SourceIP    string  `json:"source_ip"`
	Reporter    string  `json:"reporter"`
	OurSource   bool    `json:"our_source"`
	Messages    uint64  `json:"messages"`
	Pass        uint64  `json:"pass"`
	DKIMPass    uint64  `json:"dkim_pass"`
	SPFPass     uint64  `json:"spf_pass"`
	Quarantined uint64  `json:"quarantined"`
	Rejected    uint64  `json:"rejected"`
	PassPct     float64 `json:"pass_pct"`
	DKIMPassPct float64 `json:"dkim_pass_pct"`
	SPFPassPct  float64 `json:"spf_pass_pct"`
}

// DMARCSource is one unknown source × domain of /dmarc.
type DMARCSource struct {
	SourceIP  string   `json:"source_ip"`
	Domain    string   `json:"domain"`
	Reporters []string `json:"reporters"`
	Messages  uint64   `json:"messages"`
	Pass      uint64   `json:"pass"`
	PassPct   float64  `json:"pass_pct"`
}

// TLSRow is one receiving domain × organisation of /dmarc.
type TLSRow struct {
	PolicyDomain string  `json:"policy_domain"`
	Organization string  `json:"organization"`
	Sessions     uint64  `json:"sessions"`
	Failures     uint64  `json:"failures"`
	FailurePct   float64 `json:"failure_pct"`
}

// DMARCView is what /dmarc must show over some UTC days.
type DMARCView struct {
	// FirstDay and LastDay are the days read.
	FirstDay, LastDay time.Time
	Rows              []DMARCRow
	Unknown           []DMARCSource
	TLS               []TLSRow
}

// DMARCTruth holds the seeded reports, to compute what /dmarc shows for
// any days and filters.
type DMARCTruth struct {
	Now     time.Time
	records []schemas.DMARCRecord
	results []schemas.TLSRPTResult
}

// seededRecord is one seeded <record>; daysAgo dates its report's period
// (a UTC day) in days before now's.
type seededRecord struct {
	daysAgo              int
	reporter, domain, ip string
	ours                 bool
	count                uint64
	dkim, spf            string
	disposition          string
	customer             string
}

// seededPolicy is one seeded TLS report policy.
type seededPolicy struct {
	daysAgo                    int
	organization, policyDomain string
	success, failure           uint64
}

// SeedDMARC migrates the database and inserts DMARC aggregate report
// records and SMTP TLS report policies, dated (as the fbl-ingester dates
// them) by their report's period's start, a UTC day:
//
//   - Yesterday, for DMARCDomain: google.com saw 1000 messages from
//     SourceIP (900 passing both, 60 DKIM only, 30 SPF only, 10 failing
//     and quarantined), 200 from CleanIP (all passing) and 500 from SpoofIP
//     (all failing: 300 rejected, 200 quarantined); yahoo.com saw 400 from
//     SourceIP (380 passing, 20 failing, none acted on), 100 from SpoofIP
//     (rejected) and 40 from ForwarderIP (30 passing DKIM, 10 failing);
//     outlook.com 300 from CleanIP (270 passing, 30 rejected).
//   - Yesterday, for DMARCOtherDomain: google.com saw 50 from CleanIP,
//     all passing.
//   - Three days ago: google.com saw 700 more from SourceIP for
//     DMARCDomain (630 passing, 70 failing and rejected) and 20 from
//     SpoofIP: in 7-day ranges, not in the default one.
//   - Nine days ago: OldSpoofIP sent 5000 as DMARCDomain (google.com).
//   - TLS, yesterday: google.com reports mx.example.net 450 sessions and
//     50 failures, gmail.com 1000 and none; microsoft.com reports
//     mx.example.net 960 and 40. Three days ago: google.com reports 10
//     failures of 10 to outlook.example.
func SeedDMARC(ctx context.Context, conn driver.Conn, now time.Time) (DMARCTruth, error) {
	now = now.UTC().Truncate(time.Second)
	var database string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&database); err != nil {
		return DMARCTruth{}, fmt.Errorf("consoletest: %w", err)
	}
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		return DMARCTruth{}, fmt.Errorf("consoletest: migrate: %w", err)
	}
	const pass, fail, none, quarantine, reject = schemas.DMARCPass, schemas.DMARCFail, "none", "quarantine", "reject"
	records := []seededRecord{
		{1, "google.com", DMARCDomain, SourceIP, true, 900, pass, pass, none, Customer},
		{1, "google.com", DMARCDomain, SourceIP, true, 60, pass, fail, none, Customer},
		{1, "google.com", DMARCDomain, SourceIP, true, 30, fail, pass, none, Customer},
		{1, "google.com", DMARCDomain, SourceIP, true, 10, fail, fail, quarantine, Customer},
		{1, "google.com", DMARCDomain, CleanIP, true, 200, pass, pass, none, Customer},
		{1, "google.com", DMARCDomain, SpoofIP, false, 300, fail, fail, reject, Customer},
		{1, "google.com", DMARCDomain, SpoofIP, false, 200, fail, fail, quarantine, Customer},
		{1, "yahoo.com", DMARCDomain, SourceIP, true, 380, pass, pass, none, Customer},
		{1, "yahoo.com", DMARCDomain, SourceIP, true, 20, fail, fail, none, Customer},
		{1, "yahoo.com", DMARCDomain, SpoofIP, false, 100, fail, fail, reject, Customer},
		{1, "yahoo.com", DMARCDomain, ForwarderIP, false, 30, pass, fail, none, Customer},
		{1, "yahoo.com", DMARCDomain, ForwarderIP, false, 10, fail, fail, none, Customer},
		{1, "outlook.com", DMARCDomain, CleanIP, true, 270, pass, pass, none, Customer},
		{1, "outlook.com", DMARCDomain, CleanIP, true, 30, fail, fail, reject, Customer},
		{1, "google.com", DMARCOtherDomain, CleanIP, true, 50, pass, pass, none, CleanCustomer},
		{3, "google.com", DMARCDomain, SourceIP, true, 630, pass, pass, none, Customer},
		{3, "google.com", DMARCDomain, SourceIP, true, 70, fail, fail, reject, Customer},
		{3, "google.com", DMARCDomain, SpoofIP, false, 20, fail, fail, reject, Customer},
		{9, "google.com", DMARCDomain, OldSpoofIP, false, 5000, fail, fail, reject, Customer},
	}
	policies := []seededPolicy{
		{1, "google.com", TLSDomain, 400, 50},
		{1, "google.com", "gmail.com", 1000, 0},
		{1, "microsoft.com", TLSDomain, 920, 40},
		{3, "google.com", "outlook.example", 0, 10},
	}
	today := startOfDay(now)
	src := schemas.Source{Worker: "fbl-ingester", Host: "seed"}
	truth := DMARCTruth{Now: now}
	var rows [][]any
	for i, r := range records {
		begin := today.AddDate(0, 0, -r.daysAgo)
		dmarc := fail
		if r.dkim == pass || r.spf == pass {
			dmarc = pass
		}
		ev := &schemas.DMARCRecord{ReportID: fmt.Sprintf("seed-%s-%d", r.reporter, r.daysAgo), OrgName: r.reporter, Begin: begin,
			End: begin.Add(24*time.Hour - time.Second), Domain: r.domain, Policy: reject, Percent: 100, SourceIP: r.ip, Count: r.count,
			Disposition: r.disposition, DKIM: r.dkim, SPF: r.spf, DMARC: dmarc, HeaderFrom: r.domain, OurSource: r.ours, Customer: r.customer,
			ReceivedVia: "smtp"}
		if err := schemas.Stamp(ev, src, begin); err != nil {
			return truth, err
		}
		ev.ID = fmt.Sprintf("dmarc-seed-%d", i)
		rows = append(rows, schemas.Row(ev))
		truth.records = append(truth.records, *ev)
	}
	k, err := schemas.KindOf(&schemas.DMARCRecord{})
	if err != nil {
		return truth, err
	}
	if err := insert(ctx, conn, schemas.InsertQuery(k), rows); err != nil {
		return truth, err
	}
	rows = nil
	for i, p := range policies {
		begin := today.AddDate(0, 0, -p.daysAgo)
		ev := &schemas.TLSRPTResult{ReportID: fmt.Sprintf("seed-tls-%s-%d", p.organization, p.daysAgo), Organization: p.organization, Begin: begin,
			End: begin.Add(24*time.Hour - time.Second), PolicyDomain: p.policyDomain, PolicyType: "sts", Success: p.success, Failure: p.failure,
			ReceivedVia: "smtp"}
		if p.failure > 0 {
			ev.FailureResultTypes, ev.FailureSendingIPs, ev.FailureSessionCounts = []string{"certificate-expired"}, []string{SourceIP}, []uint64{p.failure}
			ev.FailureReceivingMXs, ev.FailureReceivingIPs, ev.FailureReasonCodes = []string{"mx1." + p.policyDomain}, []string{"192.0.2.200"}, []string{""}
			ev.OurSource = true
		}
		if err := schemas.Stamp(ev, src, begin); err != nil {
			return truth, err
		}
		ev.ID = fmt.Sprintf("tlsrpt-seed-%d", i)
		rows = append(rows, schemas.Row(ev))
		truth.results = append(truth.results, *ev)
	}
	if k, err = schemas.KindOf(&schemas.TLSRPTResult{}); err != nil {
		return truth, err
	}
	if err := insert(ctx, conn, schemas.InsertQuery(k), rows); err != nil {
		return truth, err
	}
	return truth, nil
}

// DMARCFilter is /dmarc's filters; "" is every value.
type DMARCFilter struct{ Domain, SourceIP, Customer string }

// View is what /dmarc shows for a range from..to (the page reads the UTC
// days the range touches) with the filters, computed from the seeded
// events. TLS reports are not filtered.
func (t DMARCTruth) View(from, to time.Time, f DMARCFilter) DMARCView {
	v := DMARCView{FirstDay: startOfDay(from), LastDay: startOfDay(to)}
	in := func(day time.Time) bool { return !day.Before(v.FirstDay) && !day.After(v.LastDay) }
	type rowKey struct {
		domain, ip, reporter string
		ours                 bool
	}
	rows := map[rowKey]*DMARCRow{}
	type srcKey struct{ ip, domain string }
	unknown := map[srcKey]*DMARCSource{}
	for _, r := range t.records {
		if !in(r.Time) || f.Domain != "" && r.Domain != f.Domain || f.SourceIP != "" && r.SourceIP != f.SourceIP || f.Customer != "" && r.Customer != f.Customer {
			continue
		}
		k := rowKey{r.Domain, r.SourceIP, r.OrgName, r.OurSource}
		row := rows[k]
		if row == nil {
			row = &DMARCRow{Domain: r.Domain, SourceIP: r.SourceIP, Reporter: r.OrgName, OurSource: r.OurSource}
			rows[k] = row
		}
		row.Messages += r.Count
		if r.DMARC == schemas.DMARCPass {
			row.Pass += r.Count
		}
		if r.DKIM == schemas.DMARCPass {
			row.DKIMPass += r.Count
		}
		if r.SPF == schemas.DMARCPass {
			row.SPFPass += r.Count
		}
		switch r.Disposition {
		case "quarantine":
			row.Quarantined += r.Count
		case "reject":
			row.Rejected += r.Count
		}
		if r.OurSource {
			continue
		}
		sk := srcKey{r.SourceIP, r.Domain}
		u := unknown[sk]
		if u == nil {
			u = &DMARCSource{SourceIP: r.SourceIP, Domain: r.Domain}
			unknown[sk] = u
		}
		u.Messages += r.Count
		if r.DMARC == schemas.DMARCPass {
			u.Pass += r.Count
		}
		if !slices.Contains(u.Reporters, r.OrgName) {
			u.Reporters = append(u.Reporters, r.OrgName)
		}
	}
	for _, r := range rows {
		r.PassPct, r.DKIMPassPct, r.SPFPassPct = pct(r.Pass, r.Messages), pct(r.DKIMPass, r.Messages), pct(r.SPFPass, r.Messages)
		v.Rows = append(v.Rows, *r)
	}
	// Our sources first, then the worst pass rate, then most messages.
	sort.Slice(v.Rows, func(i, j int) bool {
		a, b := v.Rows[i], v.Rows[j]
		if a.OurSource != b.OurSource {
			return a.OurSource
		}
		return cmp.Or(cmp.Compare(a.PassPct, b.PassPct), -cmp.Compare(a.Messages, b.Messages),
			cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.SourceIP, b.SourceIP), cmp.Compare(a.Reporter, b.Reporter)) < 0
	})
	for _, u := range unknown {
		slices.Sort(u.Reporters)
		u.PassPct = pct(u.Pass, u.Messages)
		v.Unknown = append(v.Unknown, *u)
	}
	sort.Slice(v.Unknown, func(i, j int) bool {
		a, b := v.Unknown[i], v.Unknown[j]
		return cmp.Or(-cmp.Compare(a.Messages, b.Messages), cmp.Compare(a.SourceIP, b.SourceIP), cmp.Compare(a.Domain, b.Domain)) < 0
	})

	type tlsKey struct{ domain, org string }
	tls := map[tlsKey]*TLSRow{}
	for _, r := range t.results {
		if !in(r.Time) {
			continue
		}
		k := tlsKey{r.PolicyDomain, r.Organization}
		if tls[k] == nil {
			tls[k] = &TLSRow{PolicyDomain: r.PolicyDomain, Organization: r.Organization}
		}
		tls[k].Sessions += r.Success + r.Failure
		tls[k].Failures += r.Failure
	}
	for _, r := range tls {
		r.FailurePct = pct(r.Failures, r.Sessions)
		v.TLS = append(v.TLS, *r)
	}
	sort.Slice(v.TLS, func(i, j int) bool {
		a, b := v.TLS[i], v.TLS[j]
		return cmp.Or(-cmp.Compare(a.FailurePct, b.FailurePct), -cmp.Compare(a.Failures, b.Failures),
			cmp.Compare(a.PolicyDomain, b.PolicyDomain), cmp.Compare(a.Organization, b.Organization)) < 0
	})
	return v
}
