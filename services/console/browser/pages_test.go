package browser

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
)

// TestConsolePages opens every console page in chromium over the seeded
// events and checks that the figures it shows, and those of its JSON
// variant, are the seeded truth, that it wrote no console error, and
// saves a screenshot of it. The console's clock stops on the last full
// hour, where the daily report's day ends (see checkReport). On the same
// chromium: a 3 × 3 overview (checkMatrix) and a fresh install behind
// basic auth (checkFreshBehindBasicAuth), each a console of its own.
func TestConsolePages(t *testing.T) {
	c := startConsoleAt(t, time.Now().UTC().Truncate(time.Hour), nil)
	truth := c.truth
	b := newBrowser(t)

	t.Run("overview", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/"))
		checkCell(t, b, truth.Cell)
		checkCell(t, b, truth.CleanCell)
		if got := b.count("td.cell:not(.none)"); got != 2 {
			t.Errorf("%d cells with figures, want 2 (%s × %s and %s × %s)", got, truth.Cell.Row, truth.Cell.Provider, truth.CleanCell.Row, truth.CleanCell.Provider)
		}
		b.screenshot("overview")

		var o console.Overview
		fetchJSON(t, c.page("/"), &o)
		if len(o.Cells) != 2 {
			t.Errorf("JSON: %d cells, want 2", len(o.Cells))
		}
		same(t, "JSON cell", cellOf(o, truth.Cell.Row, truth.Cell.Provider), truth.Cell)
		same(t, "JSON clean cell", cellOf(o, truth.CleanCell.Row, truth.CleanCell.Provider), truth.CleanCell)
	})

	t.Run("overview matrix", func(t *testing.T) { checkMatrix(t, b.in(t)) })

	t.Run("overview by customer", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/", "by", "customer"))
		checkCell(t, b, truth.CustomerCell)
		b.screenshot("overview-customer")

		var o console.Overview
		fetchJSON(t, c.page("/", "by", "customer"), &o)
		same(t, "JSON customer cell", cellOf(o, truth.CustomerCell.Row, truth.CustomerCell.Provider), truth.CustomerCell)
	})

	t.Run("links and filters", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/"))
		u := b.follow(chromedp.Click(chromedp.CSS(`main a[href*="by=customer"]`)))
		if got := queryOf(t, u).Get("by"); got != "customer" {
			t.Errorf("the rows-by-customer link went to %s", u)
		}
		checkCell(t, b, truth.CustomerCell)

		// The filter form keeps the rows by customer and adds the provider.
		u = b.follow(
			chromedp.SendKeys(chromedp.CSS(`form.filters input[name=provider]`), consoletest.CleanProvider),
			chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		)
		if q := queryOf(t, u); q.Get("provider") != consoletest.CleanProvider || q.Get("by") != "customer" {
			t.Errorf("the filter form went to %s, want provider=%s and by=customer", u, consoletest.CleanProvider)
		}
		if got := b.texts("table.matrix thead th[scope=col]"); !slices.Equal(got, []string{consoletest.CleanProvider}) {
			t.Errorf("filtered on provider %s, the overview shows providers %q", consoletest.CleanProvider, got)
		}
		if got := b.texts("table.matrix tbody th[scope=row]"); !slices.Equal(got, []string{consoletest.CleanCustomer}) {
			t.Errorf("filtered on provider %s, the overview shows customers %q", consoletest.CleanProvider, got)
		}

		// The navigation keeps the filter: a shared link shows the same.
		u = b.follow(chromedp.Click(chromedp.CSS(`nav a[href^="/probes"]`)))
		if q := queryOf(t, u); q.Get("provider") != consoletest.CleanProvider {
			t.Errorf("the probes link went to %s, which lost provider=%s", u, consoletest.CleanProvider)
		}
		if got := b.attrs("tr[data-provider]", "data-provider"); !slices.Equal(got, []string{consoletest.CleanProvider}) {
			t.Errorf("filtered on provider %s, the probes page shows providers %q", consoletest.CleanProvider, got)
		}

		// The range links.
		u = b.follow(chromedp.Click(chromedp.CSS(`p.range a[href*="range=1h"]`)))
		if q := queryOf(t, u); q.Get("range") != "1h" || q.Get("provider") != consoletest.CleanProvider {
			t.Errorf("the 1h link went to %s", u)
		}
		if got := b.texts(`select[name=range] option:checked`); !slices.Equal(got, []string{"1h"}) {
			t.Errorf("after the 1h link the range shows %q", got)
		}
	})

	t.Run("probes", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/probes"))
		for _, r := range truth.Probes {
			last := r.LastPlacement
			if last != "missing" {
				last += " " + ms(r.LastLatencyMs)
			}
			want := []string{r.Provider, r.SourceIP, fmt.Sprint(r.Sent), fmt.Sprint(r.Inbox), fmt.Sprint(r.Spam), fmt.Sprint(r.Other), fmt.Sprint(r.Missing),
				pct(r.InboxPct), pct(r.SpamPct), pct(r.MissingPct), ms(r.LatencyP50Ms), ms(r.LatencyP95Ms), last}
			row := fmt.Sprintf("tr[data-provider=%q][data-source-ip=%q]", r.Provider, r.SourceIP)
			if got := b.strings(cellsOf(row)); !slices.Equal(got, want) {
				t.Errorf("probes row %s × %s shows %q, want %q", r.Provider, r.SourceIP, got, want)
			}
		}
		if got := b.count("figure:has(svg)"); got != len(truth.Probes) {
			t.Errorf("%d charts, want one per provider × source (%d)", got, len(truth.Probes))
		}
		b.screenshot("probes")

		var p console.Probes
		fetchJSON(t, c.page("/probes"), &p)
		same(t, "JSON rows", p.Rows, truth.Probes)
	})

	t.Run("deliveries", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/deliveries"))
		for status, n := range truth.Deliveries {
			if got := b.texts(fmt.Sprintf("table.totals tr[data-status=%q] td.n", status)); !slices.Equal(got, []string{fmt.Sprint(n)}) {
				t.Errorf("attempts %s shows %q, want %d", status, got, n)
			}
		}
		if got := len(b.table("table.totals")); got != len(truth.Deliveries) {
			t.Errorf("%d statuses, want %d", got, len(truth.Deliveries))
		}
		for category, n := range truth.Rejections {
			if got := b.texts(fmt.Sprintf("table.rejections tr[data-category=%q] td.n", category)); !slices.Equal(got, []string{fmt.Sprint(n)}) {
				t.Errorf("rejections %s shows %q, want %d", category, got, n)
			}
		}
		if got := len(b.table("table.rejections")); got != len(truth.Rejections) {
			t.Errorf("%d rejection categories, want %d", got, len(truth.Rejections))
		}
		r := truth.TopReply
		want := []string{r.Provider, r.Customer, r.Status, r.Category, r.Signature, fmt.Sprint(r.Attempts), r.Sample}
		if rows := b.table("table.replies"); len(rows) == 0 || !slices.Equal(rows[0], want) {
			t.Errorf("top replies are %q, want first %q", rows, want)
		}
		if got := b.count("figure:has(svg)"); got != 1 {
			t.Errorf("%d charts, want 1", got)
		}
		b.screenshot("deliveries")

		var d console.Deliveries
		fetchJSON(t, c.page("/deliveries"), &d)
		same(t, "JSON totals", d.Totals, truth.Deliveries)
		same(t, "JSON rejections", d.Rejections, truth.Rejections)
		if len(d.Replies) == 0 {
			t.Errorf("JSON: no replies")
		} else {
			same(t, "JSON top reply", d.Replies[0], truth.TopReply)
		}
	})

	t.Run("blocklists", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/blocklists"))
		var listings [][]string
		var links []string
		for _, l := range truth.Listings {
			listings = append(listings, []string{l.Target, l.Zone, ts(l.Since), l.TXT, l.DelistURL})
			links = append(links, l.DelistURL)
		}
		if got := b.table("table.listings"); !equalRows(got, listings) {
			t.Errorf("listings show %q, want %q", got, listings)
		}
		if got := b.attrs("table.listings a", "href"); !slices.Equal(got, links) {
			t.Errorf("delist links are %q, want %q", got, links)
		}
		var history [][]string
		for _, e := range truth.History {
			history = append(history, []string{ts(e.Time), e.Event, e.Target, e.Zone})
		}
		if got := b.table("table.history"); !equalRows(got, history) {
			t.Errorf("history shows %q, want %q", got, history)
		}
		var audits [][]string
		for _, a := range truth.Audits {
			findings := "none"
			if len(a.Checks) > 0 {
				var fs []string
				for i := range a.Checks {
					fs = append(fs, fmt.Sprintf("%s (%s): %s", a.Checks[i], a.Severities[i], a.Messages[i]))
				}
				findings = strings.Join(fs, " ")
			}
			audits = append(audits, []string{a.Target, a.TargetKind, a.WorstSeverity, ts(a.Time), findings})
		}
		if got := b.table("table.audits"); !equalRows(got, audits) {
			t.Errorf("audits show %q, want %q", got, audits)
		}
		b.screenshot("blocklists")

		var bl console.Blocklists
		fetchJSON(t, c.page("/blocklists"), &bl)
		same(t, "JSON listings", bl.Listings, truth.Listings)
		same(t, "JSON history", bl.History, truth.History)
		same(t, "JSON audits", bl.Audits, truth.Audits)
	})

	t.Run("complaints", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/complaints"))
		var rows [][]string
		for _, r := range truth.Complaints {
			rows = append(rows, []string{r.Customer, r.Provider, fmt.Sprint(r.Complaints), fmt.Sprint(r.Sent), rate(r.RatePct), r.Level})
		}
		got := b.table("table.complaints")
		if !equalRows(sorted(got), sorted(rows)) {
			t.Errorf("complaint rates show %q, want %q", got, rows)
		}
		d := truth.Decision
		inForce := b.table("table.in-force")
		if len(inForce) != 1 {
			t.Fatalf("decisions in force show %q, want one for %s", inForce, d.Subject)
		}
		if got, want := inForce[0][:5], []string{d.Subject, d.Action, d.Rule, ts(d.Time), ts(d.Until)}; !slices.Equal(got, want) {
			t.Errorf("decision in force shows %q, want %q", got, want)
		}
		if evidence := fmt.Sprintf("%d complaints / %d delivered = %s (threshold %s)", d.Complaints, d.Delivered, rate(100*d.Rate), threshold(d.Rule, d.Threshold, "%.2f %%")); len(inForce[0]) < 7 || inForce[0][5] != evidence {
			t.Errorf("decision in force shows %q, want the evidence %q", inForce[0], evidence)
		}
		if got := b.texts("table.in-force code"); !slices.Equal(got, []string{d.LiftCommand}) {
			t.Errorf("lift command shows %q, want %q", got, d.LiftCommand)
		}
		var history [][]string
		for _, d := range truth.DecisionHistory {
			history = append(history, []string{ts(d.Time), d.Subject, d.Action, d.Rule, ts(d.Until),
				fmt.Sprintf("%d complaints / %d delivered = %s (threshold %s)", d.Complaints, d.Delivered, rate(100*d.Rate), threshold(d.Rule, d.Threshold, "%.2f %%"))})
		}
		shown := b.table("table.decisions")
		if !equalRows(shown, history) {
			t.Errorf("decision history shows %q, want %q", shown, history)
		}
		b.screenshot("complaints")

		var cp console.Complaints
		fetchJSON(t, c.page("/complaints"), &cp)
		slices.SortFunc(cp.Rows, func(a, b console.ComplaintRow) int {
			return strings.Compare(a.Customer+a.Provider, b.Customer+b.Provider)
		})
		want := slices.Clone(truth.Complaints)
		slices.SortFunc(want, func(a, b consoletest.ComplaintRow) int {
			return strings.Compare(a.Customer+a.Provider, b.Customer+b.Provider)
		})
		same(t, "JSON rows", cp.Rows, want)
		same(t, "JSON in force", cp.InForce, []consoletest.Decision{truth.Decision})
		same(t, "JSON history", cp.History, truth.DecisionHistory)
	})

	t.Run("alerts", func(t *testing.T) {
		b := b.in(t)
		b.open(c.page("/alerts"))
		for _, group := range []struct {
			class  string
			alerts []consoletest.Alert
		}{{"firing", truth.Firing}, {"silenced", truth.Silenced}, {"resolved", truth.Resolved}} {
			var want [][]string
			for _, a := range group.alerts {
				want = append(want, []string{ts(a.Time), a.Rule, a.Severity, a.Subject, a.Summary})
			}
			if got := b.table("table.alerts." + group.class); !equalRows(got, want) {
				t.Errorf("%s alerts show %q, want %q", group.class, got, want)
			}
		}
		// The silences active or to come, ending first first; the expired
		// one SeedKV also stored is not shown.
		var silences [][]string
		var ids []string
		for _, s := range truth.Silences {
			silences = append(silences, []string{strings.Join(s.Matchers, " "), s.State, ts(s.StartsAt), ts(s.EndsAt), s.CreatedBy, s.Comment, s.ExpireCommand})
			ids = append(ids, s.ID)
		}
		if got := b.table("table.silences"); !equalRows(got, silences) {
			t.Errorf("silences show %q, want %q", got, silences)
		}
		if got := b.attrs("table.silences tr[data-id]", "data-id"); !slices.Equal(got, ids) {
			t.Errorf("silences are %q, want %q", got, ids)
		}
		b.screenshot("alerts")

		var a console.Alerts
		fetchJSON(t, c.page("/alerts"), &a)
		same(t, "JSON firing", a.Firing, truth.Firing)
		same(t, "JSON silenced", a.Silenced, truth.Silenced)
		same(t, "JSON resolved", a.Resolved, truth.Resolved)
		same(t, "JSON silences", a.Silences, truth.Silences)
	})

	t.Run("report", func(t *testing.T) { checkReport(t, b.in(t), c) })

	t.Run("fresh install behind basic auth", func(t *testing.T) { checkFreshBehindBasicAuth(t, b.in(t)) })

	t.Run("trace", func(t *testing.T) {
		b := b.in(t)
		for _, q := range []struct {
			name, q string
			steps   []consoletest.TraceStep
		}{
			{"trace", consoletest.TraceTrackingID, truth.Trace},
			{"trace-queue-id", consoletest.TraceQueueID, truth.Trace},
			{"trace-recipient", consoletest.TraceRecipient, truth.Trace},
			{"trace-probe", consoletest.TraceProbeID, truth.ProbeTrace},
			{"trace-bounce", consoletest.TraceBounceTrackingID, truth.BounceTrace},
		} {
			b.open(c.page("/trace", "q", q.q))
			got := b.texts("ol.trace li.step")
			classes := b.attrs("ol.trace li.step", "class")
			if len(got) != len(q.steps) {
				t.Errorf("trace of %s shows %d steps %q, want %d", q.q, len(got), got, len(q.steps))
				continue
			}
			for i, s := range q.steps {
				want := ts(s.Time) + " " + s.Kind + " " + s.Status
				if s.Detail != "" {
					want += " · " + s.Detail
				}
				if got[i] != want {
					t.Errorf("trace of %s step %d shows %q, want %q", q.q, i, got[i], want)
				}
				if classes[i] != "step "+s.Kind {
					t.Errorf("trace of %s step %d has class %q, want %q", q.q, i, classes[i], "step "+s.Kind)
				}
			}
			if q.name == "trace" || q.name == "trace-probe" || q.name == "trace-bounce" {
				b.screenshot(q.name)
			}

			var tr console.Trace
			fetchJSON(t, c.page("/trace", "q", q.q), &tr)
			same(t, "JSON trace of "+q.q, tr.Steps, q.steps)
		}
	})
}

// checkCell checks what an overview cell shows: its colour (class), its
// figures, and the same figures in its tooltip.
func checkCell(t *testing.T, b *browser, want consoletest.Cell) {
	t.Helper()
	cell := fmt.Sprintf("td.cell[data-row=%q][data-provider=%q]", want.Row, want.Provider)
	name := want.Row + " × " + want.Provider
	classes := b.attrs(cell, "class")
	if len(classes) != 1 {
		t.Errorf("cell %s: %d on the page, want 1", name, len(classes))
		return
	}
	if got := strings.Fields(classes[0]); !slices.Contains(got, want.Signal) {
		t.Errorf("cell %s has classes %q, want the signal %q", name, got, want.Signal)
	}
	if got := b.text(cell + " .fig b"); got != pct(want.DeliveredPct) {
		t.Errorf("cell %s shows %q delivered, want %q", name, got, pct(want.DeliveredPct))
	}
	text := b.text(cell)
	// The 7-day medians in brackets, or "no history" once for a cell
	// without attempts in those days.
	deliveredBase, deferredBase := " ("+pct(want.BaselineDeliveredPct)+")", " ("+pct(want.BaselineDeferredPct)+")"
	if want.BaselineDays == 0 {
		deliveredBase, deferredBase = " (no history)", ""
	}
	figures := []string{
		pct(want.DeliveredPct) + " delivered" + deliveredBase,
		pct(want.DeferredPct) + " deferred" + deferredBase,
		fmt.Sprintf("%d attempts", want.Attempts),
		fmt.Sprintf("complaints %s (%d)", rate(want.ComplaintRatePct), want.Complaints),
	}
	if want.TopRejection != "" {
		figures = append(figures, "top rejection: "+want.TopRejection)
	}
	if want.LastPlacement != "" {
		last := "last probe: " + want.LastPlacement
		if want.LastPlacement != "missing" {
			last += " " + ms(want.LastLatencyMs)
		}
		figures = append(figures, last)
	}
	for _, f := range figures {
		if !strings.Contains(text, f) {
			t.Errorf("cell %s shows %q, which lacks %q", name, text, f)
		}
	}
	var listed, enforced []string
	for _, z := range want.Listings {
		listed = append(listed, "listed on "+z)
	}
	for _, s := range want.Enforcement {
		enforced = append(enforced, "in force: "+s)
	}
	if got := b.texts(cell + " .fig.listed"); !slices.Equal(got, listed) {
		t.Errorf("cell %s shows listings %q, want %q", name, got, listed)
	}
	if got := b.texts(cell + " .fig.enforced"); !slices.Equal(got, enforced) {
		t.Errorf("cell %s shows decisions in force %q, want %q", name, got, enforced)
	}
	if got := len(b.texts(cell + " .fig.complaint-" + want.ComplaintLevel)); got != 1 {
		t.Errorf("cell %s: complaint level %q not shown", name, want.ComplaintLevel)
	}
	title := b.attrs(cell, "title")[0]
	for _, f := range []string{pct(want.DeliveredPct) + " delivered", pct(want.DeferredPct) + " deferred", fmt.Sprintf("complaints %s (%d), %s", rate(want.ComplaintRatePct), want.Complaints, want.ComplaintLevel)} {
		if !strings.Contains(title, f) {
			t.Errorf("cell %s has the tooltip %q, which lacks %q", name, title, f)
		}
	}
}

// threshold is a decision's threshold as the pages print it: a rate rule's
// (a fraction) as a percentage in format, the count rules' as a count.
func threshold(rule string, v float64, format string) string {
	if rule == "complaint_rate" {
		return fmt.Sprintf(format, 100*v)
	}
	return fmt.Sprintf("%.0f", v)
}

// queryOf is the query of a URL the browser went to.
func queryOf(t *testing.T, u string) url.Values {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Query()
}

// cellOf is the overview's cell row × provider, nil when it has none.
func cellOf(o console.Overview, row, provider string) *console.Cell {
	for i := range o.Cells {
		if o.Cells[i].Row == row && o.Cells[i].Provider == provider {
			return &o.Cells[i]
		}
	}
	return nil
}

// cellsOf is the expression of the texts of the cells of the table row
// matching the CSS selector.
func cellsOf(row string) string {
	return fmt.Sprintf(`Array.from(document.querySelector(%q)?.cells ?? [], td => td.innerText.replace(/\s+/g, " ").trim())`, row)
}

func equalRows(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func sorted(rows [][]string) [][]string {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b []string) int { return slices.Compare(a, b) })
	return out
}
