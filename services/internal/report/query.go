package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// query reads one report's figures. Every query is bounded by the period:
// the rollups by bucket (the period starts and ends on the hour, so the
// five-minute and hourly buckets fall wholly inside or outside it), the
// raw tables by time.
type query struct {
	conn     driver.Conn
	from, to time.Time
	customer string
}

// bucketIn and timeIn bound a rollup's buckets or a raw table's events to
// the period. The bounds are integers the package formats itself.
func (q query) bucketIn() string { return q.between("bucket", q.from, q.to) }
func (q query) timeIn() string   { return q.between("time", q.from, q.to) }

func (q query) between(column string, from, to time.Time) string {
	return fmt.Sprintf("%s >= toDateTime(%d) AND %s < toDateTime(%d)", column, from.Unix(), column, to.Unix())
}

// customerIs is the customer filter and its argument, or nothing.
func (q query) customerIs() (string, []any) {
	if q.customer == "" {
		return "", nil
	}
	return " AND customer = ?", []any{q.customer}
}

// each runs sql and calls scan for every row.
func (q query) each(ctx context.Context, sql string, args []any, scan func(driver.Rows) error) error {
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (q query) deliveries(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	d := &r.Deliveries
	err := q.each(ctx, `SELECT toString(status), countMerge(attempts)
		FROM delivery_status_1h WHERE `+q.bucketIn()+cust+`
		GROUP BY status`, args, func(rows driver.Rows) error {
		var status string
		var n uint64
		if err := rows.Scan(&status, &n); err != nil {
			return err
		}
		d.Attempts += n
		switch status {
		case "sent":
			d.Sent += n
		case "deferred":
			d.Deferred += n
		case "bounced":
			d.Bounced += n
		case "expired":
			d.Expired += n
		case "rejected":
			d.Rejected += n
		default:
			d.Other += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.DeliveredPercent = percent(d.Sent, d.Concluded())
	d.DeferredPercent = percent(d.Deferred, d.Attempts)
	return nil
}

func (q query) failures(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	err := q.each(ctx, `SELECT toString(status), toString(category), toString(provider), countMerge(attempts)
		FROM delivery_status_1h WHERE `+q.bucketIn()+` AND status != 'sent'`+cust+`
		GROUP BY status, category, provider`, args, func(rows driver.Rows) error {
		var f Failure
		if err := rows.Scan(&f.Status, &f.Category, &f.Provider, &f.Count); err != nil {
			return err
		}
		r.Failures = append(r.Failures, f)
		return nil
	})
	slices.SortFunc(r.Failures, func(a, b Failure) int {
		return cmp.Or(cmp.Compare(statusRank(a.Status), statusRank(b.Status)), cmp.Compare(b.Count, a.Count),
			strings.Compare(a.Category, b.Category), strings.Compare(a.Provider, b.Provider))
	})
	return err
}

func (q query) replies(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	return q.each(ctx, fmt.Sprintf(`SELECT toString(status), toString(category), toString(signature),
			anyMerge(sample_reply), groupUniqArray(toString(provider)), countMerge(attempts) AS n
		FROM delivery_reply_1h WHERE %s%s
		GROUP BY status, category, signature
		ORDER BY n DESC, status, category, signature
		LIMIT %d`, q.bucketIn(), cust, topReplies), args, func(rows driver.Rows) error {
		var p Reply
		if err := rows.Scan(&p.Status, &p.Category, &p.Signature, &p.Sample, &p.Providers, &p.Count); err != nil {
			return err
		}
		p.Sample = oneLine(p.Sample, maxReplyRunes)
		p.Signature = oneLine(p.Signature, maxReplyRunes)
		slices.Sort(p.Providers)
		r.TopReplies = append(r.TopReplies, p)
		return nil
	})
}

// domains ranks recipient domains by the deferrals and bounces their
// servers gave; our own MTA's rejections are not the domain's doing.
func (q query) domains(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	return q.each(ctx, fmt.Sprintf(`SELECT domain,
			sum(if(status = 'deferred', n, 0)) AS deferred,
			sum(if(status != 'deferred', n, 0)) AS bounced
		FROM (
			SELECT toString(recipient_domain) AS domain, toString(status) AS status, countMerge(attempts) AS n
			FROM delivery_reply_1h WHERE %s AND status IN ('deferred', 'bounced', 'expired')%s
			GROUP BY recipient_domain, status
		)
		GROUP BY domain
		ORDER BY deferred + bounced DESC, bounced DESC, domain
		LIMIT %d`, q.bucketIn(), cust, topDomains), args, func(rows driver.Rows) error {
		var d Domain
		if err := rows.Scan(&d.Domain, &d.Deferred, &d.Bounced); err != nil {
			return err
		}
		d.Total = d.Deferred + d.Bounced
		r.RejectingDomains = append(r.RejectingDomains, d)
		return nil
	})
}

func (q query) probes(ctx context.Context, r *Report) error {
	byProvider := map[string]*Placement{}
	get := func(provider string) *Placement {
		p := byProvider[provider]
		if p == nil {
			p = &Placement{Provider: provider}
			byProvider[provider] = p
		}
		return p
	}
	err := q.each(ctx, `SELECT toString(provider), toString(outcome), countMerge(sent)
		FROM probe_sent_1h WHERE `+q.bucketIn()+` GROUP BY provider, outcome`, nil, func(rows driver.Rows) error {
		var provider, outcome string
		var n uint64
		if err := rows.Scan(&provider, &outcome, &n); err != nil {
			return err
		}
		p := get(provider)
		p.Sent += n
		if outcome != "accepted" {
			p.RelayFailed += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = q.each(ctx, `SELECT toString(provider), toString(placement), countMerge(received)
		FROM probe_received_1h WHERE `+q.bucketIn()+` GROUP BY provider, placement`, nil, func(rows driver.Rows) error {
		var provider, placement string
		var n uint64
		if err := rows.Scan(&provider, &placement, &n); err != nil {
			return err
		}
		p := get(provider)
		p.Received += n
		switch placement {
		case "inbox":
			p.Inbox += n
		case "spam":
			p.Spam += n
		default:
			p.OtherFolder += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = q.each(ctx, `SELECT toString(provider), countMerge(missing)
		FROM probe_missing_1h WHERE `+q.bucketIn()+` GROUP BY provider`, nil, func(rows driver.Rows) error {
		var provider string
		var n uint64
		if err := rows.Scan(&provider, &n); err != nil {
			return err
		}
		get(provider).Missing += n
		return nil
	})
	if err != nil {
		return err
	}
	// Latency quantiles merge per provider and over all providers; the
	// total cannot be computed from the providers' quantiles.
	latencies := func(p *Placement, q50q95 []float64) {
		if len(q50q95) == 2 {
			p.LatencyP50Ms, p.LatencyP95Ms = finite(q50q95[0]), finite(q50q95[1])
		}
	}
	err = q.each(ctx, `SELECT toString(provider), quantilesMerge(0.5, 0.95)(latency_ms)
		FROM probe_received_1h WHERE `+q.bucketIn()+` GROUP BY provider`, nil, func(rows driver.Rows) error {
		var provider string
		var qs []float64
		if err := rows.Scan(&provider, &qs); err != nil {
			return err
		}
		latencies(get(provider), qs)
		return nil
	})
	if err != nil {
		return err
	}
	total := Placement{Provider: "all"}
	for _, p := range byProvider {
		p.percentages()
		r.Probes = append(r.Probes, *p)
		total.Sent += p.Sent
		total.RelayFailed += p.RelayFailed
		total.Received += p.Received
		total.Inbox += p.Inbox
		total.Spam += p.Spam
		total.OtherFolder += p.OtherFolder
		total.Missing += p.Missing
	}
	slices.SortFunc(r.Probes, func(a, b Placement) int { return strings.Compare(a.Provider, b.Provider) })
	total.percentages()
	if total.Received > 0 {
		err = q.each(ctx, `SELECT quantilesMerge(0.5, 0.95)(latency_ms)
			FROM probe_received_1h WHERE `+q.bucketIn(), nil, func(rows driver.Rows) error {
			var qs []float64
			if err := rows.Scan(&qs); err != nil {
				return err
			}
			latencies(&total, qs)
			return nil
		})
	}
	r.ProbeTotal = total
	return err
}

func (p *Placement) percentages() {
	n := p.Concluded()
	p.InboxPercent = percent(p.Inbox, n)
	p.SpamPercent = percent(p.Spam, n)
	p.MissingPercent = percent(p.Missing, n)
}

type listingKey struct{ zone, target string }

// listings reads the period's listings and delistings raw, and works out
// the listings in force at the end: a zone and target whose latest listing
// is later than its latest delisting. The latest of each comes from the
// daily rollups for the days before the period's last day, and from the
// raw tables for that last, partial day.
func (q query) listings(ctx context.Context, r *Report) error {
	err := q.each(ctx, `SELECT toString(zone), target, toString(target_kind), toString(source_ip), time, txt, delist_url
		FROM dnsbl_listed FINAL WHERE `+q.timeIn()+`
		ORDER BY time, zone, target`, nil, func(rows driver.Rows) error {
		var l Listing
		if err := rows.Scan(&l.Zone, &l.Target, &l.TargetKind, &l.SourceIP, &l.Since, &l.TXT, &l.DelistURL); err != nil {
			return err
		}
		l.Since = l.Since.UTC()
		l.TXT, l.DelistURL = oneLine(l.TXT, maxTXTRunes), oneLine(l.DelistURL, maxTXTRunes)
		r.Listings.Listed = append(r.Listings.Listed, l)
		return nil
	})
	if err != nil {
		return err
	}
	err = q.each(ctx, `SELECT toString(zone), target, toString(target_kind), toString(source_ip), time, listed_since
		FROM dnsbl_delisted FINAL WHERE `+q.timeIn()+`
		ORDER BY time, zone, target`, nil, func(rows driver.Rows) error {
		var d Delisting
		if err := rows.Scan(&d.Zone, &d.Target, &d.TargetKind, &d.SourceIP, &d.Time, &d.ListedSince); err != nil {
			return err
		}
		d.Time, d.ListedSince = d.Time.UTC(), d.ListedSince.UTC()
		r.Listings.Delisted = append(r.Listings.Delisted, d)
		return nil
	})
	if err != nil {
		return err
	}

	lastDay := q.to.Truncate(24 * time.Hour)
	latest := func(rollup, state, raw string) (map[listingKey]time.Time, error) {
		m := map[listingKey]time.Time{}
		scan := func(rows driver.Rows) error {
			var k listingKey
			var t time.Time
			if err := rows.Scan(&k.zone, &k.target, &t); err != nil {
				return err
			}
			if t.After(m[k]) {
				m[k] = t
			}
			return nil
		}
		err := q.each(ctx, fmt.Sprintf(`SELECT toString(zone), target, maxMerge(%s)
			FROM %s WHERE bucket < toDateTime(%d) GROUP BY zone, target`, state, rollup, lastDay.Unix()), nil, scan)
		if err != nil {
			return nil, err
		}
		err = q.each(ctx, `SELECT toString(zone), target, max(time)
			FROM `+raw+` WHERE `+q.between("time", lastDay, q.to)+` GROUP BY zone, target`, nil, scan)
		return m, err
	}
	listed, err := latest("dnsbl_listed_1d", "last_listed", "dnsbl_listed")
	if err != nil {
		return err
	}
	delisted, err := latest("dnsbl_delisted_1d", "last_delisted", "dnsbl_delisted")
	if err != nil {
		return err
	}
	current := map[listingKey]time.Time{}
	var earliest time.Time
	for k, t := range listed {
		if t.After(delisted[k]) {
			current[k] = t
			if earliest.IsZero() || t.Before(earliest) {
				earliest = t
			}
		}
	}
	if len(current) == 0 {
		return nil
	}
	// The details of each listing in force, from its own event.
	err = q.each(ctx, `SELECT toString(zone), target, toString(target_kind), toString(source_ip), time, txt, delist_url
		FROM dnsbl_listed FINAL WHERE `+q.between("time", earliest, q.to)+`
		ORDER BY time, zone, target`, nil, func(rows driver.Rows) error {
		var l Listing
		if err := rows.Scan(&l.Zone, &l.Target, &l.TargetKind, &l.SourceIP, &l.Since, &l.TXT, &l.DelistURL); err != nil {
			return err
		}
		k := listingKey{l.Zone, l.Target}
		if t, ok := current[k]; !ok || !t.Equal(l.Since) {
			return nil
		}
		delete(current, k) // one line per listing, should two events share its second
		l.Since = l.Since.UTC()
		l.TXT, l.DelistURL = oneLine(l.TXT, maxTXTRunes), oneLine(l.DelistURL, maxTXTRunes)
		r.Listings.Current = append(r.Listings.Current, l)
		return nil
	})
	if err != nil {
		return err
	}
	// A listing whose raw event retention already dropped is still shown.
	for k, t := range current {
		r.Listings.Current = append(r.Listings.Current, Listing{Zone: k.zone, Target: k.target, Since: t.UTC()})
	}
	slices.SortFunc(r.Listings.Current, func(a, b Listing) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Zone, b.Zone), strings.Compare(a.Target, b.Target))
	})
	return nil
}

func (q query) decisions(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	for _, d := range []struct{ kind, action string }{{"cutoff", "policy_action"}, {"reroute", "transport"}} {
		err := q.each(ctx, `SELECT time, toString(scope), toString(subject), toString(customer), toString(provider), toString(source_ip),
				toString(rule), toString(`+d.action+`), complaints, delivered, rate, threshold, until
			FROM decision_`+d.kind+` FINAL WHERE `+q.timeIn()+cust, args, func(rows driver.Rows) error {
			x := Decision{Kind: d.kind}
			if err := rows.Scan(&x.Time, &x.Scope, &x.Subject, &x.Customer, &x.Provider, &x.SourceIP,
				&x.Rule, &x.Action, &x.Complaints, &x.Delivered, &x.Rate, &x.Threshold, &x.Until); err != nil {
				return err
			}
			x.Time, x.Until = x.Time.UTC(), x.Until.UTC()
			x.Rate, x.Threshold = finite(x.Rate), finite(x.Threshold)
			r.Decisions = append(r.Decisions, x)
			return nil
		})
		if err != nil {
			return err
		}
	}
	slices.SortFunc(r.Decisions, func(a, b Decision) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Subject, b.Subject))
	})
	return nil
}

// complaints builds the FBL review: counted and trusted complaints from
// their rollup, the untrusted count and the samples from the raw reports
// of the period, the delivered mail from the delivery rollup.
func (q query) complaints(ctx context.Context, r *Report) error {
	cust, args := q.customerIs()
	byCustomer := map[string]*CustomerComplaint{}
	get := func(customer string) *CustomerComplaint {
		c := byCustomer[customer]
		if c == nil {
			c = &CustomerComplaint{Customer: customer}
			byCustomer[customer] = c
		}
		return c
	}
	err := q.each(ctx, `SELECT toString(customer), countMerge(complaints)
		FROM complaint_counted_5m WHERE `+q.bucketIn()+cust+` GROUP BY customer`, args, func(rows driver.Rows) error {
		var customer string
		var n uint64
		if err := rows.Scan(&customer, &n); err != nil {
			return err
		}
		get(customer).Complaints += n
		return nil
	})
	if err != nil {
		return err
	}
	err = q.each(ctx, `SELECT toString(customer), uniqExact(id)
		FROM complaint_received WHERE `+q.timeIn()+` AND counted = 1 AND trusted = 0`+cust+`
		GROUP BY customer`, args, func(rows driver.Rows) error {
		var customer string
		var n uint64
		if err := rows.Scan(&customer, &n); err != nil {
			return err
		}
		get(customer).Untrusted += n
		return nil
	})
	if err != nil {
		return err
	}
	if len(byCustomer) == 0 {
		return nil
	}
	// The delivered mail of the customers that have complaints.
	err = q.each(ctx, `SELECT toString(customer), countMerge(attempts)
		FROM delivery_status_1h WHERE `+q.bucketIn()+` AND status = 'sent'`+cust+`
		GROUP BY customer`, args, func(rows driver.Rows) error {
		var customer string
		var n uint64
		if err := rows.Scan(&customer, &n); err != nil {
			return err
		}
		if c := byCustomer[customer]; c != nil {
			c.Delivered = n
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Samples: trusted reports first, newest first, a few per customer.
	err = q.each(ctx, fmt.Sprintf(`SELECT toString(customer), time, toString(provider), toString(feedback_type), trusted,
			original_subject, headers_excerpt
		FROM complaint_received FINAL WHERE %s AND counted = 1%s
		ORDER BY customer, trusted DESC, time DESC, id
		LIMIT %d BY customer`, q.timeIn(), cust, maxSamples), args, func(rows driver.Rows) error {
		var customer string
		var s Sample
		var trusted uint8
		if err := rows.Scan(&customer, &s.Time, &s.Provider, &s.FeedbackType, &trusted, &s.Subject, &s.Excerpt); err != nil {
			return err
		}
		s.Time = s.Time.UTC()
		s.Trusted = trusted == 1
		s.FeedbackType = oneLine(s.FeedbackType, maxSubjectRunes)
		s.Subject = oneLine(s.Subject, maxSubjectRunes)
		s.Excerpt = oneLine(s.Excerpt, maxExcerptRunes)
		if c := byCustomer[customer]; c != nil {
			c.Samples = append(c.Samples, s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range byCustomer {
		c.RatePercent = percent(c.Complaints, c.Delivered)
		r.FBL.Complaints += c.Complaints
		r.FBL.Untrusted += c.Untrusted
		r.FBL.Customers = append(r.FBL.Customers, *c)
	}
	slices.SortFunc(r.FBL.Customers, func(a, b CustomerComplaint) int {
		return cmp.Or(cmp.Compare(b.Complaints, a.Complaints), cmp.Compare(b.Untrusted, a.Untrusted),
			strings.Compare(a.Customer, b.Customer))
	})
	return nil
}

// statusRank orders statuses as the report lists them.
func statusRank(s string) int {
	switch s {
	case "deferred":
		return 0
	case "bounced":
		return 1
	case "expired":
		return 2
	case "rejected":
		return 3
	}
	return 4
}

// percent is part of whole in percent, 0 when whole is 0.
func percent(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// finite turns NaN and infinities (quantiles of nothing) into 0, which
// JSON can carry.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// oneLine flattens outside text to one line: control and format
// characters (terminal escapes, bidirectional overrides) and runs of white
// space become one space, invalid UTF-8 is replaced, and text
// longer than max runes is cut with an ellipsis.
func oneLine(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			return b.String()
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
