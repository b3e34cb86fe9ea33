package browser

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/report"
)

// checkReport opens /report, the daily report of `mailmon report`, and
// checks its figures, and those of its JSON, against the seeded truth. A
// report covers the 24 hours up to the last full hour: c's clock stopped
// on a full hour, so the report's day is the pages' default range and
// the truth's figures are the report's.
func checkReport(t *testing.T, b *browser, c seededConsole) {
	truth := c.truth
	now := truth.Now
	if !now.Equal(now.Truncate(time.Hour)) {
		t.Fatalf("the console's clock %s is not on a full hour: the report's day is not the truth's", now)
	}
	b.open(c.page("/report"))
	if got := b.attrs("section.report", "data-period"); !slices.Equal(got, []string{"daily"}) {
		t.Fatalf("/report shows reports of periods %q, want one daily", got)
	}
	if got, want := b.text("p.report-period"), fmt.Sprintf("%s to %s UTC", now.Add(-24*time.Hour).Format("2006-01-02 15:04"), now.Format("2006-01-02 15:04")); !strings.Contains(got, want) {
		t.Errorf("the report's period shows %q, want %q", got, want)
	}

	sent, deferred, bounced := truth.Deliveries[schemas.StatusSent], truth.Deliveries[schemas.StatusDeferred], truth.Deliveries[schemas.StatusBounced]
	var attempts uint64
	for _, n := range truth.Deliveries {
		attempts += n
	}
	deliveries := [][]string{
		{"attempts", fmt.Sprint(attempts)},
		{"sent", fmt.Sprint(sent)},
		{"deferred", fmt.Sprint(deferred)},
		{"bounced", fmt.Sprint(bounced)},
		{"expired", "0"},
		{"rejected by our MTA", "0"},
		{"delivered", reportPct(100 * float64(sent) / float64(sent+bounced))},
		{"deferred", reportPct(100 * float64(deferred) / float64(attempts))},
	}
	if got := b.table("table.report-deliveries"); !equalRows(got, deliveries) {
		t.Errorf("the report's deliveries show %q, want %q", got, deliveries)
	}

	probes := b.table("table.report-probes")
	for _, r := range truth.Probes {
		want := []string{r.Provider, fmt.Sprint(r.Sent), "0", fmt.Sprint(r.Inbox + r.Spam + r.Other + r.Missing), reportPct(r.InboxPct), reportPct(r.SpamPct), reportPct(r.MissingPct)}
		i := slices.IndexFunc(probes, func(row []string) bool { return len(row) > 0 && row[0] == r.Provider })
		if i < 0 || len(probes[i]) < len(want) || !slices.Equal(probes[i][:len(want)], want) {
			t.Errorf("the report's probes show %q, want a row starting %q", probes, want)
		}
	}

	// Listed during the day (both listings), and in force at its end.
	listings := b.table("table.report-listings")
	var current [][]string
	for _, l := range truth.Listings {
		current = append(current, []string{l.Since.Format("2006-01-02 15:04"), l.Zone, l.Target, l.TXT, "delist"})
	}
	if len(listings) < len(current) || !equalRows(listings[len(listings)-len(current):], current) {
		t.Errorf("the report's listings show %q, want those in force at the end %q", listings, current)
	}
	if got := b.attrs("table.report-listings a", "href"); !slices.Contains(got, consoletest.ListedDelist) {
		t.Errorf("the report's delist links are %q, want %q among them", got, consoletest.ListedDelist)
	}
	if got := b.table("table.report-delisted"); len(got) != 1 || len(got[0]) < 3 || got[0][1] != consoletest.DelistedZone || got[0][2] != consoletest.SourceIP {
		t.Errorf("the report's delistings show %q, want %s of %s", got, consoletest.DelistedZone, consoletest.SourceIP)
	}

	// The decisions of the day, each threshold in its rule's unit.
	var decisions [][]string
	for _, d := range truth.DecisionHistory {
		decisions = append(decisions, []string{d.Time.Format("2006-01-02 15:04"), d.Subject, d.Rule, fmt.Sprint(d.Complaints), fmt.Sprint(d.Delivered), threshold(d.Rule, d.Threshold, "%.3f%%")})
	}
	var shown [][]string
	for _, r := range b.table("table.report-decisions") {
		if len(r) == 11 { // time kind scope subject rule action complaints delivered rate threshold until
			shown = append(shown, []string{r[0], r[3], r[4], r[6], r[7], r[9]})
		}
	}
	if !equalRows(sorted(shown), sorted(decisions)) {
		t.Errorf("the report's decisions show %q, want %q", shown, decisions)
	}

	// The FBL review: the trusted complaints, and the forged one apart.
	var complaints uint64
	for _, r := range truth.Complaints {
		complaints += r.Complaints
	}
	acme := truth.Complaints[slices.IndexFunc(truth.Complaints, func(r consoletest.ComplaintRow) bool { return r.Customer == consoletest.Customer })]
	if got, want := b.text("p.report-fbl-totals"), fmt.Sprintf("%d complaints counted (trusted origin), 1 more from an unverified origin", complaints); got != want {
		t.Errorf("the FBL review shows %q, want %q", got, want)
	}
	fbl := b.table("table.report-fbl")
	if want := []string{consoletest.Customer, fmt.Sprint(acme.Complaints), "1", fmt.Sprint(acme.Sent), fmt.Sprintf("%.3f%%", acme.RatePct)}; len(fbl) == 0 || !slices.Equal(fbl[0], want) {
		t.Errorf("the FBL review's customers show %q, want first %q", fbl, want)
	}
	b.screenshot("report")

	var r console.ReportPage
	fetchJSON(t, c.page("/report"), &r)
	d := r.Report.Deliveries
	if d.Attempts != attempts || d.Sent != sent || d.Deferred != deferred || d.Bounced != bounced {
		t.Errorf("JSON deliveries %+v, want %d attempts, %d sent, %d deferred, %d bounced", d, attempts, sent, deferred, bounced)
	}
	same(t, "JSON listings in force", r.Report.Listings.Current, truth.Listings)
	if f := r.Report.FBL; f.Complaints != complaints || f.Untrusted != 1 {
		t.Errorf("JSON FBL review: %d complaints and %d untrusted, want %d and 1", f.Complaints, f.Untrusted, complaints)
	}
	for _, want := range truth.Probes {
		i := slices.IndexFunc(r.Report.Probes, func(p report.Placement) bool { return p.Provider == want.Provider })
		if i < 0 {
			t.Errorf("JSON probes %+v lack %s", r.Report.Probes, want.Provider)
			continue
		}
		got := r.Report.Probes[i]
		if got.Sent != want.Sent || got.Inbox != want.Inbox || got.Spam != want.Spam || got.Missing != want.Missing {
			t.Errorf("JSON probes of %s: %+v, want %+v", want.Provider, got, want)
		}
	}

	// The weekly link keeps the page and changes the period.
	u := b.follow(chromedp.Click(chromedp.CSS(`main a[href*="period=weekly"]`)))
	if got := queryOf(t, u).Get("period"); got != "weekly" {
		t.Errorf("the weekly link went to %s", u)
	}
	if got := b.attrs("section.report", "data-period"); !slices.Equal(got, []string{"weekly"}) {
		t.Errorf("after the weekly link the page shows reports of periods %q", got)
	}
	b.screenshot("report-weekly")
}

// reportPct is a percentage as the report prints it: "97.0%".
func reportPct(v float64) string { return fmt.Sprintf("%.1f%%", v) }
