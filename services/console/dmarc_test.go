package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// seedDMARC is a console over consoletest's DMARC and TLS reports.
func seedDMARC(t *testing.T, cfg console.Config) (http.Handler, consoletest.DMARCTruth, *recorder) {
	t.Helper()
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	now := time.Now().UTC().Truncate(time.Second)
	truth, err := consoletest.SeedDMARC(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	_, _, js := natstest.Start(t)
	ch := chstore.DefaultConfig()
	ch.Addr, ch.Database = server.Addr(), database
	w, err := console.New(cfg, worker.Settings{JetStream: js, ClickHouse: ch, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	console.WrapConn(w, func(c driver.Conn) driver.Conn { rec.Conn = c; return rec })
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w.Handler(), truth, rec
}

// dmarcView is the page's figures in consoletest's types.
func dmarcView(pg console.DMARC) consoletest.DMARCView {
	v := consoletest.DMARCView{FirstDay: pg.FirstDay, LastDay: pg.LastDay}
	for _, r := range pg.Rows {
		v.Rows = append(v.Rows, consoletest.DMARCRow(r))
	}
	for _, u := range pg.Unknown {
		v.Unknown = append(v.Unknown, consoletest.DMARCSource(u))
	}
	for _, r := range pg.TLS {
		v.TLS = append(v.TLS, consoletest.TLSRow(r))
	}
	return v
}

// dmarcHTMLRows are the rows of view as the page prints them, in order.
func dmarcHTMLRows(v consoletest.DMARCView) []string {
	pct := func(v float64) string { return fmt.Sprintf("%.1f %%", v) }
	var out []string
	for _, r := range v.Rows {
		source := "unknown"
		if r.OurSource {
			source = "ours"
		}
		out = append(out, fmt.Sprintf(`<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="n">%d</td>
<td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%d</td><td class="n">%d</td></tr>`,
			r.Domain, r.SourceIP, r.Reporter, source, r.Messages, pct(r.PassPct), pct(r.DKIMPassPct), pct(r.SPFPassPct), r.Quarantined, r.Rejected))
	}
	for _, u := range v.Unknown {
		out = append(out, fmt.Sprintf(`">%s</a></td><td>%s</td><td>%s</td><td class="n">%d</td><td class="n">%s</td></tr>`,
			u.SourceIP, u.Domain, strings.Join(u.Reporters, ", "), u.Messages, pct(u.PassPct)))
	}
	for _, r := range v.TLS {
		out = append(out, fmt.Sprintf(`<td>%s</td><td>%s</td><td class="n">%d</td><td class="n">%d</td><td class="n">%s</td></tr>`,
			r.PolicyDomain, r.Organization, r.Sessions, r.Failures, pct(r.FailurePct)))
	}
	return out
}

// inOrder checks that html holds every row, one after the other.
func inOrder(t *testing.T, what, html string, rows []string) {
	t.Helper()
	at := 0
	for _, r := range rows {
		i := strings.Index(html[at:], r)
		if i < 0 {
			if strings.Contains(html, r) {
				t.Errorf("%s: row out of order:\n%s", what, r)
			} else {
				t.Errorf("%s: HTML lacks the row\n%s", what, r)
			}
			continue
		}
		at += i + len(r)
	}
}

// TestDMARCPage compares every figure of /dmarc, as JSON and as HTML, with
// the seeded reports, over several ranges and filters.
func TestDMARCPage(t *testing.T) {
	h, truth, _ := seedDMARC(t, console.DefaultConfig())
	now := truth.Now
	for _, tc := range []struct {
		name, query string
		from        time.Time
		filter      consoletest.DMARCFilter
		// rows, unknown and tls are the sizes of the sections.
		rows, unknown, tls int
	}{
		{"default range", "", now.Add(-24 * time.Hour), consoletest.DMARCFilter{}, 8, 2, 3},
		{"7 days", "range=7d", now.Add(-7 * 24 * time.Hour), consoletest.DMARCFilter{}, 8, 2, 4},
		{"30 days", "range=30d", now.Add(-30 * 24 * time.Hour), consoletest.DMARCFilter{}, 9, 3, 4},
		{"one of our domains", "domain=" + url.QueryEscape(strings.ToUpper(consoletest.DMARCOtherDomain)), now.Add(-24 * time.Hour),
			consoletest.DMARCFilter{Domain: consoletest.DMARCOtherDomain}, 1, 0, 3},
		{"the spoofing source", "range=7d&source_ip=" + consoletest.SpoofIP, now.Add(-7 * 24 * time.Hour), consoletest.DMARCFilter{SourceIP: consoletest.SpoofIP}, 2, 1, 4},
		{"a customer", "customer=" + consoletest.Customer, now.Add(-24 * time.Hour), consoletest.DMARCFilter{Customer: consoletest.Customer}, 7, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/dmarc"
			if tc.query != "" {
				path += "?" + tc.query
			}
			pg := getJSON[console.DMARC](t, h, path)
			if !pg.Params.To.Equal(now) || pg.Params.From.After(tc.from) || tc.from.Sub(pg.Params.From) >= 5*time.Minute {
				t.Fatalf("range %s – %s, want %s – %s", pg.Params.From, pg.Params.To, tc.from, now)
			}
			want := truth.View(pg.Params.From, pg.Params.To, tc.filter)
			same(t, "page", dmarcView(pg), want)
			if len(want.Rows) != tc.rows || len(want.Unknown) != tc.unknown || len(want.TLS) != tc.tls {
				t.Fatalf("the truth has %d rows, %d unknown sources, %d TLS rows; the test expects %d, %d, %d",
					len(want.Rows), len(want.Unknown), len(want.TLS), tc.rows, tc.unknown, tc.tls)
			}
			html := getHTML(t, h, path)
			inOrder(t, path, html, dmarcHTMLRows(want))
			contains(t, path, html, "<title>mailmon · DMARC &amp; TLS</title>", `aria-current="page">DMARC &amp; TLS</a>`,
				fmt.Sprintf("<b>%s</b> to <b>%s</b>", want.FirstDay.Format("2006-01-02"), want.LastDay.Format("2006-01-02")))
			if tc.filter.Domain != "" {
				contains(t, path, html, `name="domain" value="`+tc.filter.Domain+`"`)
			}
			if tc.unknown == 0 {
				contains(t, path, html, "None: every message the reports counted with these filters came from our sending networks.")
			}
			if tc.filter != (consoletest.DMARCFilter{}) {
				contains(t, path, html, "the domain, source IP and customer filters do not apply to them")
			}
		})
	}

	// The default range's figures, written out: the seed's arithmetic.
	pg := getJSON[console.DMARC](t, h, "/dmarc")
	if r := pg.Rows[0]; r.Domain != consoletest.DMARCDomain || r.SourceIP != consoletest.CleanIP || r.Reporter != "outlook.com" ||
		r.Messages != 300 || r.PassPct != 90 || r.Rejected != 30 {
		t.Errorf("worst of our rows: %+v, want outlook.com's 300 from %s at 90 %% with 30 rejected", r, consoletest.CleanIP)
	}
	if u := pg.Unknown[0]; u.SourceIP != consoletest.SpoofIP || u.Messages != 600 || u.Pass != 0 || strings.Join(u.Reporters, ",") != "google.com,yahoo.com" {
		t.Errorf("top unknown source: %+v, want %s with 600 messages from google.com and yahoo.com", u, consoletest.SpoofIP)
	}
	if r := pg.TLS[0]; r.PolicyDomain != consoletest.TLSDomain || r.Organization != "google.com" || r.Sessions != 450 || r.Failures != 50 {
		t.Errorf("worst TLS row: %+v", r)
	}

	// Days without reports say so in each section.
	path := "/dmarc?from=" + now.Add(-20*24*time.Hour).Format(time.RFC3339) + "&to=" + now.Add(-19*24*time.Hour).Format(time.RFC3339)
	if pg := getJSON[console.DMARC](t, h, path); pg.Rows != nil || pg.Unknown != nil || pg.TLS != nil {
		t.Errorf("days without reports: %+v", pg)
	}
	contains(t, "no reports", getHTML(t, h, path), "No DMARC aggregate reports received for these days.",
		"No DMARC aggregate reports received for these days, so no source is known.", "No SMTP TLS reports received for these days.")
	// A filter that matches nothing says so.
	contains(t, "no match", getHTML(t, h, "/dmarc?source_ip=192.0.2.250"), "No DMARC aggregate reports received for these days with these filters.")
}

// With console.rows smaller than a section, the section shows its first
// rows and the page says so.
func TestDMARCPageRowsLimit(t *testing.T) {
	cfg := console.DefaultConfig()
	cfg.Rows = 2
	h, truth, _ := seedDMARC(t, cfg)
	pg := getJSON[console.DMARC](t, h, "/dmarc")
	want := truth.View(pg.Params.From, pg.Params.To, consoletest.DMARCFilter{})
	want.Rows, want.Unknown, want.TLS = want.Rows[:2], want.Unknown[:2], want.TLS[:2]
	same(t, "page", dmarcView(pg), want)
	for _, section := range []string{"DMARC pass rates", "unknown sources", "TLS failures"} {
		if !slices.ContainsFunc(pg.Notes, func(n string) bool { return strings.HasPrefix(n, section+": only the first 2 rows are shown") }) {
			t.Errorf("no note on %s's limit: %q", section, pg.Notes)
		}
	}
	inOrder(t, "/dmarc", getHTML(t, h, "/dmarc"), dmarcHTMLRows(want))
}

// dmarcRaw matches a query reading the raw report tables (their rollups'
// names continue with an underscore).
var dmarcRaw = regexp.MustCompile(`(?i)\b(dmarc_record|tlsrpt_result)\b(?:[^_]|$)`)

// TestDMARCPageReadsRollups proves that /dmarc reads only the daily
// rollups, each query bounded by the days of the range.
func TestDMARCPageReadsRollups(t *testing.T) {
	h, _, rec := seedDMARC(t, console.DefaultConfig())
	for _, path := range []string{"/dmarc", "/dmarc?range=30d", "/dmarc?range=1h&domain=" + consoletest.DMARCDomain + "&source_ip=" + consoletest.SpoofIP} {
		rec.reset()
		if code, body := get(t, h, path, true); code != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, code, body)
		}
		qs := rec.all()
		if len(qs) != 3 {
			t.Errorf("GET %s ran %d queries, want 3 (one per section): %q", path, len(qs), qs)
		}
		for _, q := range qs {
			if dmarcRaw.MatchString(q) {
				t.Errorf("GET %s reads a raw table:\n%s", path, q)
			}
			if !strings.Contains(q, "_1d WHERE bucket >= ? AND bucket <= ?") {
				t.Errorf("GET %s ran a query not bounded by the range's days:\n%s", path, q)
			}
		}
	}
}

// BenchmarkDMARCPage builds /dmarc over a month of synthetic reports: each
// day 10 of our domains × 20 of our IPs × 25 reporters, and 300 unknown
// sources seen by 2 reporters each (5600 records a day, 168 000 in all),
// and 100 TLS report policies a day.
func BenchmarkDMARCPage(b *testing.B) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(b, server)
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := consoletest.SeedDMARC(ctx, conn, now); err != nil { // migrates
		b.Fatal(err)
	}
	today := now.Truncate(24 * time.Hour)
	insertAll := func(ev schemas.Event, rows [][]any) {
		k, err := schemas.KindOf(ev)
		if err != nil {
			b.Fatal(err)
		}
		batch, err := conn.PrepareBatch(ctx, schemas.InsertQuery(k))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			if err := batch.Append(r...); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
	}
	for day := range 30 {
		begin := today.AddDate(0, 0, -day)
		var rows, tls [][]any
		add := func(domain, ip, reporter string, ours bool, count uint64, pass bool) {
			ev := &schemas.DMARCRecord{ReportID: reporter + begin.Format("20060102"), OrgName: reporter, Begin: begin, End: begin.Add(24*time.Hour - time.Second),
				Domain: domain, Policy: "reject", Percent: 100, SourceIP: ip, Count: count, Disposition: "none", DKIM: "pass", SPF: "pass", DMARC: "pass",
				HeaderFrom: domain, OurSource: ours, ReceivedVia: "smtp"}
			if !pass {
				ev.DKIM, ev.SPF, ev.DMARC, ev.Disposition = "fail", "fail", "fail", "reject"
			}
			if err := schemas.Stamp(ev, schemas.Source{Worker: "fbl-ingester", Host: "bench"}, begin); err != nil {
				b.Fatal(err)
			}
			rows = append(rows, schemas.Row(ev))
		}
		for d := range 10 {
			for ip := range 20 {
				for r := range 25 {
					add(fmt.Sprintf("d%d.example", d), fmt.Sprintf("192.0.2.%d", ip), fmt.Sprintf("r%d.example", r), true, uint64(100+ip+r), (ip+r+day)%7 != 0)
				}
			}
		}
		for u := range 300 {
			for r := range 2 {
				add(fmt.Sprintf("d%d.example", u%10), fmt.Sprintf("203.0.%d.%d", u/250, u%250), fmt.Sprintf("r%d.example", r), false, uint64(1+u%40), false)
			}
		}
		for p := range 100 {
			ev := &schemas.TLSRPTResult{ReportID: fmt.Sprintf("tls-%d-%d", day, p), Organization: fmt.Sprintf("r%d.example", p%5), Begin: begin,
				End: begin.Add(24*time.Hour - time.Second), PolicyDomain: fmt.Sprintf("mx%d.example", p%20), PolicyType: "sts",
				Success: uint64(1000 + p), Failure: uint64(p % 13), ReceivedVia: "smtp"}
			if err := schemas.Stamp(ev, schemas.Source{Worker: "fbl-ingester", Host: "bench"}, begin); err != nil {
				b.Fatal(err)
			}
			tls = append(tls, schemas.Row(ev))
		}
		insertAll(&schemas.DMARCRecord{}, rows)
		insertAll(&schemas.TLSRPTResult{}, tls)
	}
	_, _, js := natstest.Start(b)
	ch := chstore.DefaultConfig()
	ch.Addr, ch.Database = server.Addr(), database
	w, err := console.New(console.DefaultConfig(), worker.Settings{JetStream: js, ClickHouse: ch, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	h := w.Handler()
	for _, path := range []string{"/dmarc", "/dmarc?range=30d", "/dmarc?range=30d&domain=d3.example"} {
		for _, format := range []string{"html", "json"} {
			b.Run(path+" "+format, func(b *testing.B) {
				for b.Loop() {
					r := httptest.NewRequest(http.MethodGet, path, nil)
					r.RemoteAddr = "127.0.0.1:40000"
					if format == "json" {
						r.Header.Set("Accept", "application/json")
					}
					rw := httptest.NewRecorder()
					h.ServeHTTP(rw, r)
					if rw.Code != http.StatusOK {
						b.Fatalf("GET %s = %d: %s", path, rw.Code, rw.Body.String())
					}
				}
			})
		}
	}
}
