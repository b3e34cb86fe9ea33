package browser

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/chromedp/chromedp"

	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
)

// TestDMARCPage opens /dmarc in chromium over consoletest's DMARC and TLS
// reports (next to Seed's events) and checks that its three tables show
// the seeded figures in order, as does its JSON, that the domain filter of
// the form narrows them, and that the page wrote no console error.
func TestDMARCPage(t *testing.T) {
	var truth consoletest.DMARCTruth
	c := startConsole(t, func(ctx context.Context, conn driver.Conn, now time.Time) error {
		var err error
		truth, err = consoletest.SeedDMARC(ctx, conn, now)
		return err
	})
	b := newBrowser(t)

	var pg console.DMARC
	fetchJSON(t, c.page("/dmarc"), &pg)
	want := truth.View(pg.Params.From, pg.Params.To, consoletest.DMARCFilter{})
	same(t, "JSON", pg, want)
	if len(want.Rows) == 0 || len(want.Unknown) == 0 || len(want.TLS) == 0 {
		t.Fatalf("the truth has an empty section: %+v", want)
	}

	b.open(c.page("/dmarc"))
	if got := b.text("nav a.current"); got != "DMARC & TLS" {
		t.Errorf("the navigation marks %q as the current page", got)
	}
	if got, days := b.text("p.days"), fmt.Sprintf("reads the days %s to %s.", want.FirstDay.Format("2006-01-02"), want.LastDay.Format("2006-01-02")); !strings.Contains(got, days) {
		t.Errorf("the page says %q, want %q", got, days)
	}
	checkDMARCTables(t, b, want)
	b.screenshot("dmarc")

	// An unknown source links to the page filtered on it.
	u := b.follow(chromedp.Click(chromedp.CSS(`table.unknown-sources a`)))
	if q := queryOf(t, u); q.Get("source_ip") != want.Unknown[0].SourceIP {
		t.Errorf("the first unknown source's link went to %s, want source_ip=%s", u, want.Unknown[0].SourceIP)
	}
	checkDMARCTables(t, b, truth.View(pg.Params.From, pg.Params.To, consoletest.DMARCFilter{SourceIP: want.Unknown[0].SourceIP}))
	if got := b.texts("p.note"); len(got) != 1 || !strings.Contains(got[0], "filters do not apply to them") {
		t.Errorf("filtered on a source, the page notes %q, want that the filters do not apply to TLS reports", got)
	}

	b.open(c.page("/dmarc"))
	// The filter form: one of our domains, and the range kept.
	u = b.follow(
		chromedp.SendKeys(chromedp.CSS(`form.filters input[name=domain]`), consoletest.DMARCOtherDomain),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
	)
	if q := queryOf(t, u); q.Get("domain") != consoletest.DMARCOtherDomain || q.Get("range") != console.DefaultRange {
		t.Errorf("the filter form went to %s, want domain=%s and range=%s", u, consoletest.DMARCOtherDomain, console.DefaultRange)
	}
	filtered := truth.View(pg.Params.From, pg.Params.To, consoletest.DMARCFilter{Domain: consoletest.DMARCOtherDomain})
	checkDMARCTables(t, b, filtered)
	if got := b.text("p.unknown-empty"); got != "None: every message the reports counted with these filters came from our sending networks." {
		t.Errorf("the unknown sources of %s say %q", consoletest.DMARCOtherDomain, got)
	}
	// The navigation keeps the filter.
	u = b.follow(chromedp.Click(chromedp.CSS(`p.range a[href*="range=7d"]`)))
	if q := queryOf(t, u); q.Get("domain") != consoletest.DMARCOtherDomain || q.Get("range") != "7d" {
		t.Errorf("the 7d link went to %s", u)
	}
}

// checkDMARCTables compares the three tables of the open /dmarc with want,
// cell by cell and in order.
func checkDMARCTables(t *testing.T, b *browser, want consoletest.DMARCView) {
	t.Helper()
	var rows, unknown, tls [][]string
	for _, r := range want.Rows {
		source := "unknown"
		if r.OurSource {
			source = "ours"
		}
		rows = append(rows, []string{r.Domain, r.SourceIP, r.Reporter, source, fmt.Sprint(r.Messages), pct(r.PassPct), pct(r.DKIMPassPct),
			pct(r.SPFPassPct), fmt.Sprint(r.Quarantined), fmt.Sprint(r.Rejected)})
	}
	for _, u := range want.Unknown {
		unknown = append(unknown, []string{u.SourceIP, u.Domain, strings.Join(u.Reporters, ", "), fmt.Sprint(u.Messages), pct(u.PassPct)})
	}
	for _, r := range want.TLS {
		tls = append(tls, []string{r.PolicyDomain, r.Organization, fmt.Sprint(r.Sessions), fmt.Sprint(r.Failures), pct(r.FailurePct)})
	}
	for _, tc := range []struct {
		table string
		want  [][]string
	}{{"table.dmarc", rows}, {"table.unknown-sources", unknown}, {"table.tls", tls}} {
		if got := b.table(tc.table); !equalRows(got, tc.want) {
			t.Errorf("%s shows %q, want %q", tc.table, got, tc.want)
		}
	}
	if got := b.count("table.dmarc tr.unknown"); got != len(slices.DeleteFunc(slices.Clone(want.Rows), func(r consoletest.DMARCRow) bool { return r.OurSource })) {
		t.Errorf("%d rows marked unknown", got)
	}
}
