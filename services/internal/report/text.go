package report

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteText writes the report as plain text in aligned columns, section
// after section like pflogsumm's daily mail.
func (r Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	title := fmt.Sprintf("mailmon %s report", r.Period)
	fmt.Fprintf(b, "%s\n%s\n", title, strings.Repeat("=", utf8.RuneCountInString(title)))
	fmt.Fprintf(b, "Period:   %s to %s UTC\n", formatTime(r.From), formatTime(r.To))
	fmt.Fprintf(b, "Customer: %s\n", r.customerLabel())

	r.textDeliveries(b)
	r.textFailures(b)
	r.textReplies(b)
	r.textDomains(b)
	r.textProbes(b)
	r.textListings(b)
	r.textDecisions(b)
	r.textFBL(b)
	return b.Flush()
}

func (r Report) customerLabel() string {
	if r.Customer == "" {
		return "all customers"
	}
	return r.Customer
}

func heading(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n%s\n", title, strings.Repeat("-", utf8.RuneCountInString(title)))
}

func none(w io.Writer) { fmt.Fprintln(w, "  none") }

func (r Report) textDeliveries(w io.Writer) {
	heading(w, "Deliveries")
	d := r.Deliveries
	t := newTable(true, false)
	t.add(formatCount(d.Attempts), "attempts")
	t.add(formatCount(d.Sent), "sent")
	t.add(formatCount(d.Deferred), "deferred")
	t.add(formatCount(d.Bounced), "bounced")
	t.add(formatCount(d.Expired), "expired")
	t.add(formatCount(d.Rejected), "rejected by our MTA")
	if d.Other > 0 {
		t.add(formatCount(d.Other), "other status")
	}
	t.add(formatPercent(d.DeliveredPercent), "delivered (sent of sent, bounced, expired and rejected)")
	t.add(formatPercent(d.DeferredPercent), "deferred (of all attempts)")
	t.write(w, "  ")
}

// failureTitle names a failure status's section.
func failureTitle(status string) string {
	switch status {
	case "deferred":
		return "Deferrals"
	case "bounced":
		return "Bounces"
	case "expired":
		return "Expired in the queue"
	case "rejected":
		return "Rejected by our MTA"
	}
	return "Status " + status
}

// failureGroup is one status's failures by category, each with its
// providers, in the report's order (most first).
type failureGroup struct {
	Status     string
	Title      string
	Total      uint64
	Categories []categoryGroup
}

type categoryGroup struct {
	Category  string
	Total     uint64
	Providers []Failure
}

// failureGroups nests r.Failures by status, then category (most first).
func (r Report) failureGroups() []failureGroup {
	var groups []failureGroup
	for _, f := range r.Failures {
		if len(groups) == 0 || groups[len(groups)-1].Status != f.Status {
			groups = append(groups, failureGroup{Status: f.Status, Title: failureTitle(f.Status)})
		}
		g := &groups[len(groups)-1]
		g.Total += f.Count
		i := 0
		for i < len(g.Categories) && g.Categories[i].Category != f.Category {
			i++
		}
		if i == len(g.Categories) {
			g.Categories = append(g.Categories, categoryGroup{Category: f.Category})
		}
		g.Categories[i].Total += f.Count
		g.Categories[i].Providers = append(g.Categories[i].Providers, f)
	}
	for _, g := range groups {
		// Failures are sorted by count within a status, so categories
		// appear in order of their largest provider; order them by total.
		slices.SortStableFunc(g.Categories, func(a, b categoryGroup) int {
			return cmp.Or(cmp.Compare(b.Total, a.Total), strings.Compare(a.Category, b.Category))
		})
	}
	return groups
}

func (r Report) textFailures(w io.Writer) {
	groups := r.failureGroups()
	if len(groups) == 0 {
		heading(w, "Deferrals and bounces by category and provider")
		none(w)
		return
	}
	for _, g := range groups {
		heading(w, fmt.Sprintf("%s by category and provider (total %d)", g.Title, g.Total))
		t := newTable(false, true, false)
		for _, c := range g.Categories {
			t.add(orDash(c.Category), formatCount(c.Total), "")
			for _, p := range c.Providers {
				t.add("", formatCount(p.Count), orDash(p.Provider))
			}
		}
		t.write(w, "  ")
	}
}

func (r Report) textReplies(w io.Writer) {
	heading(w, "Top remote replies")
	if len(r.TopReplies) == 0 {
		none(w)
		return
	}
	t := newTable(true, false, false, false, false)
	t.add("count", "status", "category", "providers", "reply")
	for _, p := range r.TopReplies {
		t.add(formatCount(p.Count), p.Status, orDash(p.Category), orDash(strings.Join(p.Providers, ",")), p.text())
	}
	t.write(w, "  ")
}

// text is the reply to show: the sample, or its signature without one.
func (p Reply) text() string {
	if p.Sample != "" {
		return p.Sample
	}
	return orDash(p.Signature)
}

func (r Report) textDomains(w io.Writer) {
	heading(w, "Top rejecting recipient domains")
	if len(r.RejectingDomains) == 0 {
		none(w)
		return
	}
	t := newTable(true, true, true, false)
	t.add("total", "bounced", "deferred", "domain")
	for _, d := range r.RejectingDomains {
		t.add(formatCount(d.Total), formatCount(d.Bounced), formatCount(d.Deferred), orDash(d.Domain))
	}
	t.write(w, "  ")
}

func (r Report) textProbes(w io.Writer) {
	heading(w, "Probe placement by provider")
	if len(r.Probes) == 0 {
		none(w)
		return
	}
	t := newTable(false, true, true, true, true, true, true, true, true)
	t.add("provider", "sent", "relay failed", "concluded", "inbox", "spam", "missing", "p50", "p95")
	row := func(p Placement) {
		t.add(orDash(p.Provider), formatCount(p.Sent), formatCount(p.RelayFailed), formatCount(p.Concluded()),
			formatPercent(p.InboxPercent), formatPercent(p.SpamPercent), formatPercent(p.MissingPercent),
			formatLatency(p.LatencyP50Ms), formatLatency(p.LatencyP95Ms))
	}
	for _, p := range r.Probes {
		row(p)
	}
	row(r.ProbeTotal)
	t.write(w, "  ")
	fmt.Fprintln(w, "  (percentages of the probes concluded: found in a mailbox or declared missing)")
}

func (r Report) textListings(w io.Writer) {
	heading(w, "Blocklist listings")
	l := r.Listings
	fmt.Fprintln(w, "  Listed during the period:")
	listings(w, l.Listed)
	fmt.Fprintln(w, "  Delisted during the period:")
	if len(l.Delisted) == 0 {
		fmt.Fprintln(w, "    none")
	} else {
		t := newTable(false, false, false, false)
		for _, d := range l.Delisted {
			t.add(formatTime(d.Time), d.Zone, d.Target, "listed since "+formatTime(d.ListedSince))
		}
		t.write(w, "    ")
	}
	fmt.Fprintln(w, "  In force at the end of the period:")
	listings(w, l.Current)
}

func listings(w io.Writer, ls []Listing) {
	if len(ls) == 0 {
		fmt.Fprintln(w, "    none")
		return
	}
	t := newTable(false, false, false, false)
	for _, l := range ls {
		detail := l.TXT
		if l.DelistURL != "" {
			detail = strings.TrimSpace(detail + " (delist: " + l.DelistURL + ")")
		}
		t.add("since "+formatTime(l.Since), l.Zone, l.Target, detail)
	}
	t.write(w, "    ")
}

func (r Report) textDecisions(w io.Writer) {
	heading(w, "Decisions taken")
	if len(r.Decisions) == 0 {
		none(w)
		return
	}
	t := newTable(false, false, false, false, false, true, true, true, false)
	t.add("time", "kind", "scope", "subject", "rule", "complaints", "rate", "threshold", "until")
	for _, d := range r.Decisions {
		t.add(formatTime(d.Time), d.Kind, d.Scope, d.Subject, orDash(d.Rule), formatCount(d.Complaints),
			formatRate(d.Rate), formatThreshold(d.Rule, d.Threshold), formatTime(d.Until))
	}
	t.write(w, "  ")
}

func (r Report) textFBL(w io.Writer) {
	heading(w, "FBL review: complaints by customer")
	f := r.FBL
	fmt.Fprintf(w, "  %s complaints counted (trusted origin), %s more from an unverified origin\n",
		formatCount(f.Complaints), formatCount(f.Untrusted))
	if len(f.Customers) == 0 {
		return
	}
	t := newTable(true, true, true, true, false)
	t.add("complaints", "untrusted", "delivered", "rate", "customer")
	for _, c := range f.Customers {
		t.add(formatCount(c.Complaints), formatCount(c.Untrusted), formatCount(c.Delivered), formatRatePercent(c.RatePercent), customerName(c.Customer))
	}
	fmt.Fprintln(w)
	t.write(w, "  ")
	for _, c := range f.Customers {
		if len(c.Samples) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n  %s:\n", customerName(c.Customer))
		for _, s := range c.Samples {
			origin := ""
			if !s.Trusted {
				origin = " (unverified origin)"
			}
			fmt.Fprintf(w, "    %s  %s  %s%s  Subject: %s\n", formatTime(s.Time), orDash(s.Provider), orDash(s.FeedbackType), origin, orDash(s.Subject))
			if s.Excerpt != "" {
				fmt.Fprintf(w, "      %s\n", s.Excerpt)
			}
		}
	}
}

// customerName shows the empty customer of untraced mail.
func customerName(c string) string {
	if c == "" {
		return "(unknown customer)"
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Formats shared by the text and HTML renderers.

func formatCount(n uint64) string { return strconv.FormatUint(n, 10) }

// formatPercent shows a percentage with one decimal.
func formatPercent(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) + "%" }

// formatRate shows a fraction (a complaint rate) as a percentage with
// three decimals: 0.003 is "0.300%".
func formatRate(f float64) string { return formatRatePercent(100 * f) }

// formatThreshold shows a decision's threshold in its rule's unit: a
// rate for a rate rule (complaint_rate), a count for the others
// (complaint_count, rejection_burst, probe_missing).
func formatThreshold(rule string, v float64) string {
	if strings.HasSuffix(rule, "_rate") {
		return formatRate(v)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// formatRatePercent shows a small percentage with three decimals.
func formatRatePercent(p float64) string { return strconv.FormatFloat(p, 'f', 3, 64) + "%" }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// formatLatency shows milliseconds as ms below a second, seconds with a
// decimal below 100 s, and a rounded duration beyond.
func formatLatency(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case ms < 100_000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
}

// table aligns columns: right-aligned ones for figures, left-aligned for
// names; the last column is not padded, so no line ends in spaces.
type table struct {
	right []bool
	rows  [][]string
}

func newTable(right ...bool) *table { return &table{right: right} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, indent string) {
	widths := make([]int, len(t.right))
	for _, row := range t.rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		line.WriteString(indent)
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case t.right[i]:
				line.WriteString(pad + c)
			case i < len(row)-1:
				line.WriteString(c + pad)
			default:
				line.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
	}
}
