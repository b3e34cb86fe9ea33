package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/silence"
)

// dnsblBucket is the dns-sweeper's state bucket (pipelines/topology.yaml):
// one record per listed (target, zone) pair under ip/<addr>/<zone> or
// domain/<name>/<zone>.
const dnsblBucket = "dnsbl_state"

// dnsblRecord is the part of a dnsbl_state record the console reads.
type dnsblRecord struct {
	Target      string    `json:"target"`
	Kind        string    `json:"kind"`
	Zone        string    `json:"zone"`
	State       string    `json:"state"`
	TXT         string    `json:"txt"`
	ListedSince time.Time `json:"listed_since"`
}

// source reads one page's data: ClickHouse for history and rollups, the
// KV buckets for what is in force now.
type source struct {
	conn  driver.Conn
	kv    func(ctx context.Context, bucket string) (jetstream.KeyValue, error)
	cfg   Config
	now   time.Time
	cache *baselineCache
}

// state is what is in force now, from the KV buckets.
type state struct {
	decisions []enforcement.Record
	listings  []dnsblRecord
}

// readState reads the decisions in force and the current listings. A
// bucket that cannot be read is a note on the page, not a failed page.
func (s source) readState(ctx context.Context, m *Meta, listings bool) state {
	var st state
	if kv, err := s.kv(ctx, enforcement.Bucket); err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("decisions in force unknown: bucket %s: %v", enforcement.Bucket, err))
	} else if recs, err := enforcement.List(ctx, kv, s.now); err != nil && recs == nil {
		m.Notes = append(m.Notes, fmt.Sprintf("decisions in force unknown: %v", err))
	} else {
		if err != nil {
			m.Notes = append(m.Notes, fmt.Sprintf("some decisions could not be read: %v", err))
		}
		st.decisions = recs
	}
	if !listings {
		return st
	}
	kv, err := s.kv(ctx, dnsblBucket)
	if err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("current listings unknown: bucket %s: %v", dnsblBucket, err))
		return st
	}
	recs, err := readListings(ctx, kv)
	if err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("current listings unknown: %v", err))
	}
	st.listings = recs
	return st
}

func readListings(ctx context.Context, kv jetstream.KeyValue) ([]dnsblRecord, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, "ip/") || strings.HasPrefix(k, "domain/") {
			keys = append(keys, k)
		}
	}
	var out []dnsblRecord
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return out, err
		}
		var r dnsblRecord
		if json.Unmarshal(e.Value(), &r) != nil || r.State != "listed" {
			continue
		}
		r.ListedSince = r.ListedSince.UTC()
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		return cmp.Or(cmp.Compare(out[i].Target, out[j].Target), cmp.Compare(out[i].Zone, out[j].Zone)) < 0
	})
	return out, nil
}

// pct is n of of in percent; 0 of nothing.
func pct(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// level judges a rate (a fraction) against a limit.
func level(rate float64, l Limit) string {
	switch {
	case l.Act > 0 && rate >= l.Act:
		return "act"
	case l.Warn > 0 && rate >= l.Warn:
		return "warn"
	}
	return "ok"
}

func median(vs []float64) float64 {
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

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// placementRank orders placements from best to worst.
var placementRank = map[string]int{schemas.PlacementInbox: 0, schemas.PlacementOther: 1, schemas.PlacementSpam: 2, "missing": 3}

type cellKey struct{ row, provider string }

// lastProbe is the last probe bucket of one IP × provider.
type lastProbe struct {
	bucket    time.Time
	placement string
	latency   float64
}

// lastProbes reads, per IP × provider, the placement of the latest
// 5-minute bucket in the range with a probe received or missing (the
// worst placement when the bucket holds several) and its median latency.
func (s source) lastProbes(ctx context.Context, p Params) (map[cellKey]lastProbe, error) {
	out := map[cellKey]lastProbe{}
	note := func(k cellKey, b time.Time, placement string, latency float64) {
		cur, ok := out[k]
		if !ok || b.After(cur.bucket) || b.Equal(cur.bucket) && placementRank[placement] > placementRank[cur.placement] {
			out[k] = lastProbe{bucket: b, placement: placement, latency: latency}
		}
	}
	// Every pair's last probe is at or after the earliest of their last
	// hours: found in the hourly rollup (a month is a few thousand rows
	// per pair), it bounds the 5-minute rows read below to the last hours
	// instead of the whole range.
	hf := rollupRange(p, "provider", "source_ip")
	hourly, hourlyArgs := fromRollup("probe_received", p, hf)
	var earliestLast time.Time
	if err := s.conn.QueryRow(ctx, `SELECT min(last) FROM (SELECT max(bucket) AS last`+hourly+` GROUP BY source_ip, provider)`, hourlyArgs...).Scan(&earliestLast); err != nil {
		return nil, fmt.Errorf("last probes: %w", err)
	}
	recent := p
	if earliestLast.After(p.From) {
		recent.From = earliestLast.UTC()
	}
	f := rollupRange(recent, "provider", "source_ip")
	// The latest bucket of each pair first (a small answer), then the
	// placements and latency of those buckets only.
	rows, err := s.conn.Query(ctx, `SELECT source_ip, provider, bucket, placement, quantilesMerge(0.5, 0.95)(latency_ms)
		FROM probe_received_5m`+f.prewhere()+`
		AND (source_ip, provider, bucket) IN (SELECT source_ip, provider, max(bucket) FROM probe_received_5m`+f.where()+` GROUP BY source_ip, provider)
		GROUP BY source_ip, provider, bucket, placement`, append(slices.Clone(f.args), f.args...)...)
	if err != nil {
		return nil, fmt.Errorf("last probes: %w", err)
	}
	for rows.Next() {
		var ip, provider, placement string
		var b time.Time
		var q []float64
		if err := rows.Scan(&ip, &provider, &b, &placement, &q); err != nil {
			rows.Close()
			return nil, fmt.Errorf("last probes: %w", err)
		}
		note(cellKey{ip, provider}, b.UTC(), placement, q[0])
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("last probes: %w", err)
	}
	mf := rollupRange(p, "provider", "source_ip")
	rows, err = s.conn.Query(ctx, `SELECT source_ip, provider, max(bucket) FROM probe_missing_5m`+mf.where()+` GROUP BY source_ip, provider`, mf.args...)
	if err != nil {
		return nil, fmt.Errorf("last missing probes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ip, provider string
		var b time.Time
		if err := rows.Scan(&ip, &provider, &b); err != nil {
			return nil, fmt.Errorf("last missing probes: %w", err)
		}
		note(cellKey{ip, provider}, b.UTC(), "missing", 0)
	}
	return out, rows.Err()
}

// overview builds the matrix. One query reads the range's attempts per IP
// × customer × provider × status × category, so both views (and which
// customers a decision over an IP cell touches) come from it.
func (s source) overview(ctx context.Context, p Params) (Overview, error) {
	o := Overview{Meta: Meta{Page: "overview", Params: p, Now: s.now}, By: p.By}
	lim := s.cfg.Thresholds.SourceIP
	if p.By == "customer" {
		lim = s.cfg.Thresholds.CustomerProvider
	}
	o.Thresholds = lim
	rowOf := func(ip, customer string) string {
		if p.By == "customer" {
			return customer
		}
		return ip
	}

	cells := map[cellKey]*Cell{}
	cellAt := func(k cellKey) *Cell {
		c := cells[k]
		if c == nil {
			c = &Cell{Row: k.row, Provider: k.provider}
			cells[k] = c
		}
		return c
	}
	byCategory := map[cellKey]map[string]uint64{}
	ipsOf := map[cellKey]map[string]bool{}       // by customer: the IPs of a cell
	customersOf := map[cellKey]map[string]bool{} // by IP: the customers of a cell

	// The baseline, the complaints, the last probes and the KV state are
	// read while the deliveries are: the page waits for the slowest.
	var (
		wg                               sync.WaitGroup
		base                             map[cellKey]dailyRates
		complaints                       map[cellKey]uint64
		probes                           map[cellKey]lastProbe
		st                               state
		stateMeta                        Meta
		baseErr, complaintsErr, probeErr error
	)
	wg.Go(func() { base, baseErr = s.baseline(ctx, p) })
	wg.Go(func() { complaints, complaintsErr = s.cellComplaints(ctx, p) })
	if p.By == "ip" {
		wg.Go(func() { probes, probeErr = s.lastProbes(ctx, p) })
	}
	wg.Go(func() { st = s.readState(ctx, &stateMeta, p.By == "ip") })

	deliveriesErr := func() error {
		from, args := fromRollup("delivery_status", p, rollupRange(p, "provider", "source_ip", "customer"))
		rows, err := s.conn.Query(ctx, `SELECT source_ip, customer, provider, status, category, countMerge(attempts)
		`+from+` GROUP BY source_ip, customer, provider, status, category`, args...)
		if err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var ip, customer, provider, status, category string
			var n uint64
			if err := rows.Scan(&ip, &customer, &provider, &status, &category, &n); err != nil {
				return fmt.Errorf("deliveries: %w", err)
			}
			k := cellKey{rowOf(ip, customer), provider}
			c := cellAt(k)
			c.Attempts += n
			switch status {
			case schemas.StatusSent:
				c.Sent += n
			case schemas.StatusDeferred:
				c.Deferred += n
			default:
				c.Failed += n
			}
			if status != schemas.StatusSent {
				if byCategory[k] == nil {
					byCategory[k] = map[string]uint64{}
				}
				byCategory[k][category] += n
			}
			if ipsOf[k] == nil {
				ipsOf[k], customersOf[k] = map[string]bool{}, map[string]bool{}
			}
			ipsOf[k][ip], customersOf[k][customer] = true, true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		return nil
	}()
	wg.Wait()
	if err := errors.Join(deliveriesErr, baseErr, complaintsErr, probeErr); err != nil {
		return o, err
	}
	o.Notes = append(o.Notes, stateMeta.Notes...)
	for k, n := range complaints {
		cellAt(k).Complaints = n
	}
	for k := range probes {
		if p.Customer == "" { // a customer filter keeps the cells of its traffic only
			cellAt(k)
		}
	}

	zones := map[string][]string{}
	for _, l := range st.listings {
		if l.Kind == "ip" {
			zones[l.Target] = append(zones[l.Target], l.Zone)
		}
	}

	for k, c := range cells {
		c.DeliveredPct = pct(c.Sent, c.Attempts)
		c.DeferredPct = pct(c.Deferred, c.Attempts)
		c.BaselineDeliveredPct, c.BaselineDeferredPct = median(base[k].delivered), median(base[k].deferred)
		c.BaselineDays = len(base[k].delivered)
		c.TopRejection = topKey(byCategory[k])
		c.ComplaintRatePct = pct(c.Complaints, c.Sent)
		rate := 0.0
		if c.Sent > 0 {
			rate = float64(c.Complaints) / float64(c.Sent)
		}
		c.ComplaintLevel = level(rate, lim)
		if lp, ok := probes[k]; ok {
			c.LastPlacement, c.LastLatencyMs = lp.placement, lp.latency
		}
		if p.By == "ip" {
			c.Listings = zones[k.row]
		}
		c.Enforcement = cellDecisions(st.decisions, p.By, k, ipsOf[k], customersOf[k])
		c.Signal = signal(c)
		o.Cells = append(o.Cells, *c)
	}
	sort.Slice(o.Cells, func(i, j int) bool {
		a, b := o.Cells[i], o.Cells[j]
		return cmp.Or(cmp.Compare(a.Row, b.Row), cmp.Compare(a.Provider, b.Provider)) < 0
	})
	rowSet, providerSet := map[string]bool{}, map[string]bool{}
	for _, c := range o.Cells {
		if !rowSet[c.Row] {
			rowSet[c.Row] = true
			o.Rows = append(o.Rows, c.Row)
		}
		providerSet[c.Provider] = true
	}
	for pr := range providerSet {
		o.Providers = append(o.Providers, pr)
	}
	slices.Sort(o.Providers)
	return o, nil
}

// cellComplaints counts the range's complaints per overview cell.
func (s source) cellComplaints(ctx context.Context, p Params) (map[cellKey]uint64, error) {
	rowColumn := "source_ip"
	if p.By == "customer" {
		rowColumn = "customer"
	}
	f := rollupRange(p, "provider", "source_ip", "customer")
	rows, err := s.conn.Query(ctx, `SELECT `+rowColumn+`, provider, countMerge(complaints)
		FROM complaint_counted_5m`+f.where()+` GROUP BY `+rowColumn+`, provider`, f.args...)
	if err != nil {
		return nil, fmt.Errorf("complaints: %w", err)
	}
	defer rows.Close()
	out := map[cellKey]uint64{}
	for rows.Next() {
		var row, provider string
		var n uint64
		if err := rows.Scan(&row, &provider, &n); err != nil {
			return nil, fmt.Errorf("complaints: %w", err)
		}
		out[cellKey{row, provider}] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("complaints: %w", err)
	}
	return out, nil
}

// dailyRates are a cell's delivered and deferred rates of each day with
// attempts.
type dailyRates struct{ delivered, deferred []float64 }

// baseline reads the daily rates of the 7 UTC days before the range's
// first day, per cell. Those days are over, so the answer is kept for
// baselineTTL per first day, view and filters: the overview reads a week
// of 5-minute buckets only once in that time.
func (s source) baseline(ctx context.Context, p Params) (map[cellKey]dailyRates, error) {
	firstDay := startOfDay(p.From)
	key := baselineKey{firstDay: firstDay, by: p.By, provider: p.Provider, sourceIP: p.SourceIP, customer: p.Customer}
	if v, ok := s.cache.get(key, s.now); ok {
		return v, nil
	}
	bf := &filter{}
	bf.add("bucket >= ? AND bucket < ?", firstDay.AddDate(0, 0, -7), firstDay)
	bf.addIf("provider", p.Provider).addIf("source_ip", p.SourceIP).addIf("customer", p.Customer)
	rowColumn := "source_ip"
	if p.By == "customer" {
		rowColumn = "customer"
	}
	rows, err := s.conn.Query(ctx, `SELECT `+rowColumn+`, provider, toStartOfDay(bucket) AS day, status, countMerge(attempts)
		FROM delivery_status_1h`+bf.where()+` GROUP BY `+rowColumn+`, provider, day, status`, bf.args...)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer rows.Close()
	type dayKey struct {
		cell cellKey
		day  time.Time
	}
	days := map[dayKey]*[3]uint64{} // attempts, sent, deferred
	for rows.Next() {
		var row, provider, status string
		var day time.Time
		var n uint64
		if err := rows.Scan(&row, &provider, &day, &status, &n); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		k := dayKey{cellKey{row, provider}, day.UTC()}
		if days[k] == nil {
			days[k] = &[3]uint64{}
		}
		days[k][0] += n
		switch status {
		case schemas.StatusSent:
			days[k][1] += n
		case schemas.StatusDeferred:
			days[k][2] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	out := map[cellKey]dailyRates{}
	for k, v := range days {
		if v[0] == 0 {
			continue
		}
		r := out[k.cell]
		r.delivered = append(r.delivered, pct(v[1], v[0]))
		r.deferred = append(r.deferred, pct(v[2], v[0]))
		out[k.cell] = r
	}
	s.cache.put(key, out, s.now)
	return out, nil
}

// cellDecisions are the subjects in force over a cell's traffic: by IP,
// the IP's own and those of the customers that sent through it to the
// provider; by customer, the customer's own, its provider's and those of
// the IPs it sent from.
func cellDecisions(recs []enforcement.Record, by string, k cellKey, ips, customers map[string]bool) []string {
	var out []string
	for _, r := range recs {
		applies := false
		switch r.Scope {
		case schemas.ScopeSourceIP:
			applies = by == "ip" && r.SourceIP == k.row || by == "customer" && ips[r.SourceIP]
		case schemas.ScopeCustomer:
			applies = by == "customer" && r.Customer == k.row || by == "ip" && customers[r.Customer]
		case schemas.ScopeCustomerProvider:
			applies = r.Provider == k.provider && (by == "customer" && r.Customer == k.row || by == "ip" && customers[r.Customer])
		}
		if applies && !slices.Contains(out, r.Subject) {
			out = append(out, r.Subject)
		}
	}
	slices.Sort(out)
	return out
}

// signal is the cell's worst signal: bad for a listing, a decision in
// force, a complaint rate at the act level or a missing last probe; warn
// for a rate at the warn level or a last probe in spam.
func signal(c *Cell) string {
	switch {
	case len(c.Listings) > 0 || len(c.Enforcement) > 0 || c.ComplaintLevel == "act" || c.LastPlacement == "missing":
		return "bad"
	case c.ComplaintLevel == "warn" || c.LastPlacement == schemas.PlacementSpam:
		return "warn"
	}
	return "ok"
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

// bucketExpr groups a rollup's buckets into steps of ? seconds.
const bucketExpr = "toDateTime(intDiv(toUInt32(bucket), ?) * ?, 'UTC')"

// probes builds /probes from the three probe rollups. Each rollup is read
// once, per provider × source × chart step; the range's totals are the
// sums of the steps, and the latency quantile states are merged per step
// and per range in the same pass (ARRAY JOIN gives every step's state a
// second key, the whole range).
func (s source) probes(ctx context.Context, p Params) (Probes, error) {
	out := Probes{Meta: Meta{Page: "probes", Params: p, Now: s.now}, Step: stepName(p.step())}
	rows := map[cellKey]*ProbeRow{}
	rowAt := func(provider, ip string) *ProbeRow {
		k := cellKey{provider, ip}
		if rows[k] == nil {
			rows[k] = &ProbeRow{Provider: provider, SourceIP: ip}
		}
		return rows[k]
	}
	points := map[cellKey]map[time.Time]*ProbePoint{}
	pointAt := func(provider, ip string, t time.Time) *ProbePoint {
		k := cellKey{provider, ip}
		if points[k] == nil {
			points[k] = map[time.Time]*ProbePoint{}
		}
		if points[k][t] == nil {
			points[k][t] = &ProbePoint{Time: t}
		}
		return points[k][t]
	}
	inbox := map[*ProbePoint]uint64{}
	f := rollupRange(p, "provider", "source_ip")
	step := int64(p.step() / time.Second)
	// from returns the FROM clause of a probe rollup and the query's
	// arguments: the step's (for bucketExpr) when withStep, then the
	// clause's.
	from := func(rollup string, withStep bool) (string, []any) {
		clause, args := fromRollup(rollup, p, f)
		if withStep {
			args = append([]any{step, step}, args...)
		}
		return clause, args
	}
	sentFrom, sentArgs := from("probe_sent", false)
	receivedFrom, receivedArgs := from("probe_received", true)
	missingFrom, missingArgs := from("probe_missing", true)
	each := func(what, query string, args []any, scan func(driver.Rows) error) error {
		q, err := s.conn.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer q.Close()
		for q.Next() {
			if err := scan(q); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if err := q.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}

	err := each("probes sent", `SELECT provider, source_ip, countMerge(sent)`+sentFrom+` GROUP BY provider, source_ip`, sentArgs,
		func(q driver.Rows) error {
			var provider, ip string
			var n uint64
			if err := q.Scan(&provider, &ip, &n); err != nil {
				return err
			}
			rowAt(provider, ip).Sent = n
			return nil
		})
	if err != nil {
		return out, err
	}
	err = each("probes received", `SELECT provider, source_ip, `+bucketExpr+` AS t, placement, countMerge(received)
		`+receivedFrom+` GROUP BY provider, source_ip, t, placement`, receivedArgs,
		func(q driver.Rows) error {
			var provider, ip, placement string
			var t time.Time
			var n uint64
			if err := q.Scan(&provider, &ip, &t, &placement, &n); err != nil {
				return err
			}
			r := rowAt(provider, ip)
			pt := pointAt(provider, ip, t.UTC())
			pt.Probes += n
			switch placement {
			case schemas.PlacementInbox:
				r.Inbox += n
				inbox[pt] += n
			case schemas.PlacementSpam:
				r.Spam += n
			default:
				r.Other += n
			}
			return nil
		})
	if err != nil {
		return out, err
	}
	err = each("probes missing", `SELECT provider, source_ip, `+bucketExpr+` AS t, countMerge(missing)
		`+missingFrom+` GROUP BY provider, source_ip, t`, missingArgs,
		func(q driver.Rows) error {
			var provider, ip string
			var t time.Time
			var n uint64
			if err := q.Scan(&provider, &ip, &t, &n); err != nil {
				return err
			}
			rowAt(provider, ip).Missing += n
			pointAt(provider, ip, t.UTC()).Probes += n
			return nil
		})
	if err != nil {
		return out, err
	}
	// t = 0 (the epoch) is the key of the whole range.
	err = each("probe latency", `SELECT provider, source_ip, key, quantilesMerge(0.5, 0.95)(state) FROM (
			SELECT provider, source_ip, `+bucketExpr+` AS t, quantilesMergeState(0.5, 0.95)(latency_ms) AS state
			`+receivedFrom+` GROUP BY provider, source_ip, t
		) ARRAY JOIN [t, toDateTime(0, 'UTC')] AS key GROUP BY provider, source_ip, key`, receivedArgs,
		func(q driver.Rows) error {
			var provider, ip string
			var t time.Time
			var lat []float64
			if err := q.Scan(&provider, &ip, &t, &lat); err != nil {
				return err
			}
			if t.Unix() == 0 {
				r := rowAt(provider, ip)
				r.LatencyP50Ms, r.LatencyP95Ms = lat[0], lat[1]
				return nil
			}
			pt := pointAt(provider, ip, t.UTC())
			pt.LatencyP50Ms, pt.LatencyP95Ms = lat[0], lat[1]
			return nil
		})
	if err != nil {
		return out, err
	}

	last, err := s.lastProbes(ctx, p)
	if err != nil {
		return out, err
	}
	for k, lp := range last {
		r := rowAt(k.provider, k.row)
		r.LastPlacement, r.LastLatencyMs = lp.placement, lp.latency
	}
	for _, r := range rows {
		total := r.Inbox + r.Spam + r.Other + r.Missing
		r.InboxPct, r.SpamPct, r.MissingPct = pct(r.Inbox, total), pct(r.Spam, total), pct(r.Missing, total)
		out.Rows = append(out.Rows, *r)
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.SourceIP, b.SourceIP)) < 0
	})
	for _, r := range out.Rows {
		ser := ProbeSeries{Provider: r.Provider, SourceIP: r.SourceIP}
		for _, pt := range points[cellKey{r.Provider, r.SourceIP}] {
			pt.InboxPct = pct(inbox[pt], pt.Probes)
			ser.Points = append(ser.Points, *pt)
		}
		sort.Slice(ser.Points, func(i, j int) bool { return ser.Points[i].Time.Before(ser.Points[j].Time) })
		out.Series = append(out.Series, ser)
	}
	return out, nil
}

// deliveries builds /deliveries from delivery_status_5m and
// delivery_reply_1h.
func (s source) deliveries(ctx context.Context, p Params) (Deliveries, error) {
	out := Deliveries{Meta: Meta{Page: "deliveries", Params: p, Now: s.now}, Step: stepName(p.step()),
		Totals: map[string]uint64{}, Rejections: map[string]uint64{}}
	f := rollupRange(p, "provider", "source_ip", "customer")
	from, fromArgs := fromRollup("delivery_status", p, f)
	q, err := s.conn.Query(ctx, `SELECT status, category, countMerge(attempts)`+from+` GROUP BY status, category`, fromArgs...)
	if err != nil {
		return out, fmt.Errorf("deliveries: %w", err)
	}
	for q.Next() {
		var status, category string
		var n uint64
		if err := q.Scan(&status, &category, &n); err != nil {
			q.Close()
			return out, fmt.Errorf("deliveries: %w", err)
		}
		out.Totals[status] += n
		if status != schemas.StatusSent {
			out.Rejections[category] += n
		}
	}
	q.Close()

	step := int64(p.step() / time.Second)
	q, err = s.conn.Query(ctx, `SELECT status, `+bucketExpr+` AS t, countMerge(attempts)`+from+` GROUP BY status, t ORDER BY status, t`,
		append([]any{step, step}, fromArgs...)...)
	if err != nil {
		return out, fmt.Errorf("delivery series: %w", err)
	}
	series := map[string]*StatusSeries{}
	for q.Next() {
		var status string
		var t time.Time
		var n uint64
		if err := q.Scan(&status, &t, &n); err != nil {
			q.Close()
			return out, fmt.Errorf("delivery series: %w", err)
		}
		if series[status] == nil {
			series[status] = &StatusSeries{Status: status}
		}
		series[status].Points = append(series[status].Points, CountPoint{Time: t.UTC(), Count: n})
	}
	q.Close()
	for _, st := range slices.Sorted(maps.Keys(series)) {
		out.Series = append(out.Series, *series[st])
	}

	// Top replies: hourly buckets, so the range starts on its first hour.
	rf := &filter{}
	rf.add("bucket >= ? AND bucket <= ?", p.From.Truncate(time.Hour), p.To)
	rf.addIf("provider", p.Provider).addIf("customer", p.Customer)
	if p.SourceIP != "" {
		out.Notes = append(out.Notes, "top replies are not kept per IP: they are for every IP")
	}
	q, err = s.conn.Query(ctx, `SELECT provider, customer, status, category, signature, anyMerge(sample_reply), countMerge(attempts) AS n
		FROM delivery_reply_1h`+rf.where()+` GROUP BY provider, customer, status, category, signature
		ORDER BY n DESC, provider, customer, status, category, signature LIMIT ?`, append(rf.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("top replies: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var r Reply
		if err := q.Scan(&r.Provider, &r.Customer, &r.Status, &r.Category, &r.Signature, &r.Sample, &r.Attempts); err != nil {
			return out, fmt.Errorf("top replies: %w", err)
		}
		out.Replies = append(out.Replies, r)
	}
	return out, q.Err()
}

// blocklists builds /blocklists: the listings in force (dnsbl_state) with
// the TXT and delist link of their last dnsbl_listed row, the listing
// events of the range, and the latest DNS audit per target.
func (s source) blocklists(ctx context.Context, p Params) (Blocklists, error) {
	out := Blocklists{Meta: Meta{Page: "blocklists", Params: p, Now: s.now}}
	st := s.readState(ctx, &out.Meta, true)
	if len(st.listings) > 0 {
		oldest := s.now
		for _, l := range st.listings {
			if !l.ListedSince.IsZero() && l.ListedSince.Before(oldest) {
				oldest = l.ListedSince
			}
		}
		// The event that listed a pair is at or after its listed_since.
		q, err := s.conn.Query(ctx, `SELECT zone, target, argMax(txt, time), argMax(delist_url, time)
			FROM dnsbl_listed WHERE time >= ? GROUP BY zone, target`, oldest.Add(-time.Hour))
		if err != nil {
			return out, fmt.Errorf("listings: %w", err)
		}
		type detail struct{ txt, url string }
		details := map[[2]string]detail{}
		for q.Next() {
			var zone, target string
			var d detail
			if err := q.Scan(&zone, &target, &d.txt, &d.url); err != nil {
				q.Close()
				return out, fmt.Errorf("listings: %w", err)
			}
			details[[2]string{zone, target}] = d
		}
		q.Close()
		for _, l := range st.listings {
			if !matchListing(p, l) {
				continue
			}
			d := details[[2]string{l.Zone, l.Target}]
			txt := l.TXT
			if txt == "" {
				txt = d.txt
			}
			ip := ""
			if l.Kind == "ip" {
				ip = l.Target
			}
			out.Listings = append(out.Listings, Listing{Zone: l.Zone, Target: l.Target, TargetKind: l.Kind, SourceIP: ip, TXT: txt, DelistURL: d.url, Since: l.ListedSince})
		}
	}

	hf := &filter{}
	hf.add("time >= ? AND time <= ?", p.From, p.To).addIf("source_ip", p.SourceIP)
	q, err := s.conn.Query(ctx, `SELECT time, event, zone, target FROM (
			SELECT time, 'listed' AS event, zone, target FROM dnsbl_listed`+hf.where()+`
			UNION ALL
			SELECT time, 'delisted' AS event, zone, target FROM dnsbl_delisted`+hf.where()+`
		) ORDER BY time DESC, zone, target LIMIT ?`, append(append(slices.Clone(hf.args), hf.args...), s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("listing history: %w", err)
	}
	for q.Next() {
		var e ListingEvent
		if err := q.Scan(&e.Time, &e.Event, &e.Zone, &e.Target); err != nil {
			q.Close()
			return out, fmt.Errorf("listing history: %w", err)
		}
		e.Time = e.Time.UTC()
		out.History = append(out.History, e)
	}
	q.Close()

	// The latest audit of each target; audits run every few hours, so a
	// week before the range finds the latest even of a short range.
	af := &filter{}
	af.add("time >= ? AND time <= ?", p.From.AddDate(0, 0, -7), p.To).addIf("source_ip", p.SourceIP)
	q, err = s.conn.Query(ctx, `SELECT target, argMax(target_kind, time), argMax(worst_severity, time), max(time),
		argMax(finding_checks, time), argMax(finding_severities, time), argMax(finding_messages, time)
		FROM dns_audit`+af.where()+` GROUP BY target ORDER BY target LIMIT ?`, append(af.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("dns audits: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var a Audit
		if err := q.Scan(&a.Target, &a.TargetKind, &a.WorstSeverity, &a.Time, &a.Checks, &a.Severities, &a.Messages); err != nil {
			return out, fmt.Errorf("dns audits: %w", err)
		}
		a.Time = a.Time.UTC()
		out.Audits = append(out.Audits, a)
	}
	return out, q.Err()
}

func matchListing(p Params, l dnsblRecord) bool {
	return p.SourceIP == "" || l.Target == p.SourceIP
}

// complaints builds /complaints: rates per customer × provider from the
// complaint and delivery rollups, the decisions in force (enforcement
// bucket) and the decisions of the range (decision_cutoff and
// decision_reroute, low volume, read raw with the range's bound).
func (s source) complaints(ctx context.Context, p Params) (Complaints, error) {
	lim := s.cfg.Thresholds.CustomerProvider
	out := Complaints{Meta: Meta{Page: "complaints", Params: p, Now: s.now}, Thresholds: lim}
	type key struct{ customer, provider string }
	sent, complaints := map[key]uint64{}, map[key]uint64{}
	f := rollupRange(p, "provider", "source_ip", "customer")
	from, fromArgs := fromRollup("delivery_status", p, rollupRange(p, "provider", "source_ip", "customer").add("status = 'sent'"))
	q, err := s.conn.Query(ctx, `SELECT customer, provider, countMerge(attempts)`+from+` GROUP BY customer, provider`, fromArgs...)
	if err != nil {
		return out, fmt.Errorf("deliveries: %w", err)
	}
	for q.Next() {
		var k key
		var n uint64
		if err := q.Scan(&k.customer, &k.provider, &n); err != nil {
			q.Close()
			return out, fmt.Errorf("deliveries: %w", err)
		}
		sent[k] = n
	}
	q.Close()
	q, err = s.conn.Query(ctx, `SELECT customer, provider, countMerge(complaints) FROM complaint_counted_5m`+f.where()+` GROUP BY customer, provider`, f.args...)
	if err != nil {
		return out, fmt.Errorf("complaints: %w", err)
	}
	for q.Next() {
		var k key
		var n uint64
		if err := q.Scan(&k.customer, &k.provider, &n); err != nil {
			q.Close()
			return out, fmt.Errorf("complaints: %w", err)
		}
		complaints[k] = n
	}
	q.Close()
	keys := map[key]bool{}
	for k := range sent {
		keys[k] = true
	}
	for k := range complaints {
		keys[k] = true
	}
	for k := range keys {
		r := ComplaintRow{Customer: k.customer, Provider: k.provider, Complaints: complaints[k], Sent: sent[k], WarnPct: lim.Warn * 100, ActPct: lim.Act * 100}
		r.RatePct = pct(r.Complaints, r.Sent)
		rate := 0.0
		if r.Sent > 0 {
			rate = float64(r.Complaints) / float64(r.Sent)
		} else if r.Complaints > 0 {
			rate = 1
		}
		r.Level = level(rate, lim)
		out.Rows = append(out.Rows, r)
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		if a.RatePct != b.RatePct {
			return a.RatePct > b.RatePct
		}
		return cmp.Or(cmp.Compare(a.Customer, b.Customer), cmp.Compare(a.Provider, b.Provider)) < 0
	})

	st := s.readState(ctx, &out.Meta, false)
	inForce := map[string]bool{}
	for _, r := range st.decisions {
		if !matchDecision(p, r.Customer, r.Provider, r.SourceIP) {
			continue
		}
		inForce[r.DecisionID] = true
		out.InForce = append(out.InForce, Decision{ID: r.DecisionID, Action: r.Action, Scope: r.Scope, Subject: r.Subject, Rule: r.Rule,
			Time: r.DecidedAt.UTC(), Until: r.Until.UTC(), Complaints: r.Evidence.Complaints, Delivered: r.Evidence.Delivered,
			Rate: r.Evidence.Rate, Threshold: r.Evidence.Threshold, LiftCommand: LiftCommand(r.Subject)})
	}

	hf := &filter{}
	hf.add("time >= ? AND time <= ?", p.From, p.To).addIf("provider", p.Provider).addIf("source_ip", p.SourceIP).addIf("customer", p.Customer)
	q, err = s.conn.Query(ctx, `SELECT id, action, scope, subject, rule, time, until, complaints, delivered, rate, threshold FROM (
			SELECT id, 'cutoff' AS action, scope, subject, rule, time, until, complaints, delivered, rate, threshold FROM decision_cutoff`+hf.where()+`
			UNION ALL
			SELECT id, 'reroute' AS action, scope, subject, rule, time, until, complaints, delivered, rate, threshold FROM decision_reroute`+hf.where()+`
		) ORDER BY time DESC, id LIMIT 1 BY id LIMIT ?`, append(append(slices.Clone(hf.args), hf.args...), s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("decision history: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var d Decision
		if err := q.Scan(&d.ID, &d.Action, &d.Scope, &d.Subject, &d.Rule, &d.Time, &d.Until, &d.Complaints, &d.Delivered, &d.Rate, &d.Threshold); err != nil {
			return out, fmt.Errorf("decision history: %w", err)
		}
		d.Time, d.Until = d.Time.UTC(), d.Until.UTC()
		if d.Until.Unix() == 0 {
			d.Until = time.Time{}
		}
		if inForce[d.ID] {
			d.LiftCommand = LiftCommand(d.Subject)
		}
		out.History = append(out.History, d)
	}
	return out, q.Err()
}

func matchDecision(p Params, customer, provider, ip string) bool {
	return (p.Customer == "" || customer == p.Customer) && (p.Provider == "" || provider == p.Provider) && (p.SourceIP == "" || ip == p.SourceIP)
}

// LiftCommand is the operator command that lifts the decision in force on
// subject (mailmon enforcement lift; -by defaults to $USER).
func LiftCommand(subject string) string { return "mailmon enforcement lift " + subject }

// alerts builds /alerts from alert_raised (low volume, read raw with the
// range's bound): each alert's latest row in the range, by dedupe key.
func (s source) alerts(ctx context.Context, p Params) (Alerts, error) {
	out := Alerts{Meta: Meta{Page: "alerts", Params: p, Now: s.now}}
	out.Silences = s.silences(ctx, &out.Meta)
	f := &filter{}
	f.add("time >= ? AND time <= ?", p.From, p.To).addIf("provider", p.Provider).addIf("source_ip", p.SourceIP).addIf("customer", p.Customer)
	q, err := s.conn.Query(ctx, `SELECT argMax(rule, time), argMax(status, time), argMax(severity, time), argMax(subject, time),
		argMax(summary, time), max(time) AS last, argMax(silenced, time)
		FROM alert_raised`+f.where()+` GROUP BY if(dedupe_key = '', id, dedupe_key) ORDER BY last DESC LIMIT ?`, append(f.args, 3*s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("alerts: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var a Alert
		var silenced uint8
		if err := q.Scan(&a.Rule, &a.Status, &a.Severity, &a.Subject, &a.Summary, &a.Time, &silenced); err != nil {
			return out, fmt.Errorf("alerts: %w", err)
		}
		a.Time, a.Silenced = a.Time.UTC(), silenced == 1
		switch {
		case a.Status == schemas.AlertResolved:
			out.Resolved = append(out.Resolved, a)
		case a.Silenced:
			out.Silenced = append(out.Silenced, a)
		default:
			out.Firing = append(out.Firing, a)
		}
	}
	return out, q.Err()
}

// silences reads the silences that are active or pending at now from the
// alert_silences bucket (records that do not validate are left out, as
// every reader of the bucket does).
func (s source) silences(ctx context.Context, m *Meta) []Silence {
	kv, err := s.kv(ctx, silence.Bucket)
	if err != nil {
		m.Notes = append(m.Notes, fmt.Sprintf("silences unknown: bucket %s: %v", silence.Bucket, err))
		return nil
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoKeysFound) {
			m.Notes = append(m.Notes, fmt.Sprintf("silences unknown: %v", err))
		}
		return nil
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []Silence
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			m.Notes = append(m.Notes, fmt.Sprintf("silences unknown: %v", err))
			return nil
		}
		sil, err := silence.Unmarshal(e.Value())
		if err != nil {
			continue
		}
		state := sil.State(s.now)
		if state == silence.StateExpired {
			continue
		}
		var matchers []string
		for _, mt := range sil.Matchers {
			matchers = append(matchers, mt.String())
		}
		out = append(out, Silence{ID: sil.ID, Matchers: matchers, State: state, StartsAt: sil.StartsAt.UTC(), EndsAt: sil.EndsAt.UTC(),
			Comment: sil.Comment, CreatedBy: sil.CreatedBy, ExpireCommand: "mailmon silence expire " + sil.ID})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].EndsAt.Equal(out[j].EndsAt) {
			return out[i].EndsAt.Before(out[j].EndsAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// trace builds /trace: the raw events of one message, found by tracking
// id, queue id, probe id or recipient within the range. These are the
// only raw reads of the delivery and probe tables, each for one message.
func (s source) trace(ctx context.Context, p Params) (Trace, error) {
	out := Trace{Meta: Meta{Page: "trace", Params: p, Now: s.now}}
	if p.Q == "" {
		return out, nil
	}
	var steps []TraceStep
	trackingIDs := []string{p.Q}
	type subjectOf struct{ customer, provider, ip string }
	var senders []subjectOf
	var first time.Time
	q, err := s.conn.Query(ctx, `SELECT time, tracking_id, customer, provider, source_ip, status, reply FROM delivery_attempted
		WHERE time >= ? AND time <= ? AND (tracking_id = ? OR queue_id = ? OR recipient = ? OR probe_id = ?)
		ORDER BY time LIMIT 1 BY id LIMIT ?`, p.From, p.To, p.Q, p.Q, p.Q, p.Q, s.cfg.Rows)
	if err != nil {
		return out, fmt.Errorf("attempts: %w", err)
	}
	for q.Next() {
		var st TraceStep
		var tid string
		var who subjectOf
		if err := q.Scan(&st.Time, &tid, &who.customer, &who.provider, &who.ip, &st.Status, &st.Detail); err != nil {
			q.Close()
			return out, fmt.Errorf("attempts: %w", err)
		}
		st.Time, st.Kind = st.Time.UTC(), "attempt"
		if first.IsZero() {
			first = st.Time
		}
		steps = append(steps, st)
		if tid != "" && !slices.Contains(trackingIDs, tid) {
			trackingIDs = append(trackingIDs, tid)
		}
		if !slices.Contains(senders, who) {
			senders = append(senders, who)
		}
	}
	q.Close()

	read := func(what, query string, args ...any) error {
		q, err := s.conn.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer q.Close()
		for q.Next() {
			var st TraceStep
			if err := q.Scan(&st.Time, &st.Kind, &st.Status, &st.Detail); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			st.Time = st.Time.UTC()
			steps = append(steps, st)
		}
		return q.Err()
	}
	if err := read("bounces", `SELECT time, 'bounce', status, diagnostic FROM bounce_received
		WHERE time >= ? AND time <= ? AND (has(?, tracking_id) OR recipient = ?) ORDER BY time LIMIT 1 BY id LIMIT ?`,
		p.From, p.To, trackingIDs, p.Q, s.cfg.Rows); err != nil {
		return out, err
	}
	if err := read("complaints", `SELECT time, 'complaint', feedback_type, original_subject FROM complaint_received
		WHERE time >= ? AND time <= ? AND has(?, tracking_id) ORDER BY time LIMIT 1 BY id LIMIT ?`,
		p.From, p.To, trackingIDs, s.cfg.Rows); err != nil {
		return out, err
	}
	if err := read("probes", `SELECT time, kind, status, detail FROM (
			SELECT id, time, 'probe_sent' AS kind, CAST(outcome AS String) AS status, seed_address AS detail FROM probe_sent
				WHERE time >= ? AND time <= ? AND (probe_id = ? OR has(?, tracking_id))
			UNION ALL
			SELECT id, time, 'probe_received' AS kind, CAST(placement AS String) AS status, CAST(folder AS String) AS detail FROM probe_received
				WHERE time >= ? AND time <= ? AND (probe_id = ? OR has(?, tracking_id))
			UNION ALL
			SELECT id, time, 'probe_missing' AS kind, 'missing' AS status, seed_address AS detail FROM probe_missing
				WHERE time >= ? AND time <= ? AND (probe_id = ? OR has(?, tracking_id))
		) ORDER BY time LIMIT 1 BY id LIMIT ?`,
		p.From, p.To, p.Q, trackingIDs, p.From, p.To, p.Q, trackingIDs, p.From, p.To, p.Q, trackingIDs, s.cfg.Rows); err != nil {
		return out, err
	}
	// Decisions over the message's sender made after its first attempt.
	var subjects []string
	for _, w := range senders {
		for _, subj := range []enforcement.Subject{enforcement.Customer(w.customer), enforcement.CustomerProvider(w.customer, w.provider), enforcement.SourceIP(w.ip)} {
			if subj.Valid() && !slices.Contains(subjects, subj.String()) {
				subjects = append(subjects, subj.String())
			}
		}
	}
	if len(subjects) > 0 {
		if err := read("decisions", `SELECT time, 'decision', action, subject FROM (
				SELECT id, time, 'cutoff' AS action, CAST(subject AS String) AS subject FROM decision_cutoff WHERE time >= ? AND time <= ? AND has(?, subject)
				UNION ALL
				SELECT id, time, 'reroute' AS action, CAST(subject AS String) AS subject FROM decision_reroute WHERE time >= ? AND time <= ? AND has(?, subject)
			) ORDER BY time LIMIT 1 BY id LIMIT ?`, first, p.To, subjects, first, p.To, subjects, s.cfg.Rows); err != nil {
			return out, err
		}
	}
	kindOrder := map[string]int{"probe_sent": 0, "attempt": 1, "probe_received": 2, "probe_missing": 2, "bounce": 3, "complaint": 4, "decision": 5}
	sort.SliceStable(steps, func(i, j int) bool {
		if !steps[i].Time.Equal(steps[j].Time) {
			return steps[i].Time.Before(steps[j].Time)
		}
		return kindOrder[steps[i].Kind] < kindOrder[steps[j].Kind]
	})
	if len(steps) > s.cfg.Rows {
		steps = steps[:s.cfg.Rows]
	}
	out.Steps = steps
	return out, nil
}
