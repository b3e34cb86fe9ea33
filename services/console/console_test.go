package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/report"
	"github.com/mailmon/mailmon/services/internal/worker"
)

var server *chstore.LocalServer

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }

// seeded is a console over a database and a NATS server holding
// consoletest's events, with every SQL statement it ran recorded.
type seeded struct {
	conn    driver.Conn
	now     time.Time
	truth   consoletest.Truth
	handler http.Handler
	queries *recorder
}

func seed(t *testing.T, cfg console.Config) seeded {
	t.Helper()
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	now := time.Now().UTC().Truncate(time.Second)
	truth, err := consoletest.Seed(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	_, _, js := natstest.Start(t)
	if err := consoletest.SeedKV(ctx, js, truth); err != nil {
		t.Fatal(err)
	}
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
	return seeded{conn: conn, now: now, truth: truth, handler: w.Handler(), queries: rec}
}

// get asks the handler for path as a loopback client.
func get(t *testing.T, h http.Handler, path string, asJSON bool) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	if asJSON {
		r.Header.Set("Accept", "application/json")
	}
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	body, _ := io.ReadAll(rw.Result().Body)
	return rw.Code, string(body)
}

func getJSON[T any](t *testing.T, h http.Handler, path string) T {
	t.Helper()
	code, body := get(t, h, path, true)
	if code != http.StatusOK {
		t.Fatalf("GET %s (JSON) = %d: %s", path, code, body)
	}
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	return v
}

func getHTML(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	code, body := get(t, h, path, false)
	if code != http.StatusOK {
		t.Fatalf("GET %s (HTML) = %d: %s", path, code, body)
	}
	return body
}

// contains checks that the HTML page holds every figure.
func contains(t *testing.T, page, html string, figures ...string) {
	t.Helper()
	for _, f := range figures {
		if !strings.Contains(html, f) {
			t.Errorf("%s HTML lacks %q", page, f)
		}
	}
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// TestPagesShowTheSeededTruth opens every page as JSON and as HTML over
// the seeded events and compares each with consoletest's truth.
func TestPagesShowTheSeededTruth(t *testing.T) {
	s := seed(t, console.DefaultConfig())
	truth, h := s.truth, s.handler
	pct := func(v float64) string { return fmt.Sprintf("%.1f %%", v) }
	rate := func(v float64) string { return fmt.Sprintf("%.2f %%", v) }

	t.Run("overview by IP", func(t *testing.T) {
		o := getJSON[console.Overview](t, h, "/")
		same(t, "params", o.Params.From, truth.From)
		var cells []consoletest.Cell
		for _, c := range o.Cells {
			cells = append(cells, consoletest.Cell(c))
		}
		same(t, "cells", cells, []consoletest.Cell{truth.Cell, truth.CleanCell})
		c := truth.Cell
		html := getHTML(t, h, "/")
		contains(t, "overview", html, pct(c.DeliveredPct)+"</b> delivered", "97.0 %", pct(c.DeferredPct)+" deferred",
			"("+pct(c.BaselineDeliveredPct)+")", "listed on "+consoletest.ListedZone, "top rejection: "+c.TopRejection,
			"last probe: inbox 1000 ms", "complaints "+rate(c.ComplaintRatePct), "in force: "+consoletest.DecisionSubjct,
			`class="cell bad" data-row="192.0.2.10" data-provider="gmail"`, `class="cell ok" data-row="192.0.2.11" data-provider="yahoo"`)
	})
	t.Run("overview by customer", func(t *testing.T) {
		o := getJSON[console.Overview](t, h, "/?by=customer")
		var cells []consoletest.Cell
		for _, c := range o.Cells {
			cells = append(cells, consoletest.Cell(c))
		}
		clean := truth.CleanCell
		clean.Row, clean.LastPlacement, clean.LastLatencyMs = consoletest.CleanCustomer, "", 0
		same(t, "cells", cells, []consoletest.Cell{truth.CustomerCell, clean})
		contains(t, "overview by customer", getHTML(t, h, "/?by=customer"), `data-row="acme" data-provider="gmail"`, "97.0 %")
	})
	t.Run("a one-hour range holds the same recent figures", func(t *testing.T) {
		o := getJSON[console.Overview](t, h, "/?range=1h&source_ip="+consoletest.SourceIP)
		if len(o.Cells) != 1 || o.Cells[0].Sent != 970 || o.Cells[0].DeliveredPct != 97 {
			t.Errorf("cells = %+v, want one cell with 970 sent, 97 %% delivered", o.Cells)
		}
	})
	t.Run("probes", func(t *testing.T) {
		p := getJSON[console.Probes](t, h, "/probes")
		var rows []consoletest.ProbeRow
		for _, r := range p.Rows {
			rows = append(rows, consoletest.ProbeRow(r))
		}
		same(t, "rows", rows, truth.Probes)
		if len(p.Series) != len(truth.Probes) {
			t.Errorf("%d series, want one per row (%d)", len(p.Series), len(truth.Probes))
		}
		r := truth.Probes[0]
		contains(t, "probes", getHTML(t, h, "/probes"), pct(r.InboxPct), pct(r.SpamPct), fmt.Sprintf("%.0f ms", r.LatencyP50Ms),
			fmt.Sprintf("%.0f ms", r.LatencyP95Ms), "<svg")
	})
	t.Run("deliveries", func(t *testing.T) {
		d := getJSON[console.Deliveries](t, h, "/deliveries")
		same(t, "totals", d.Totals, truth.Deliveries)
		same(t, "rejections", d.Rejections, truth.Rejections)
		if len(d.Replies) == 0 {
			t.Fatal("no replies")
		}
		same(t, "top reply", consoletest.Reply(d.Replies[0]), truth.TopReply)
		contains(t, "deliveries", getHTML(t, h, "/deliveries"), truth.TopReply.Sample, truth.TopReply.Signature,
			fmt.Sprintf(`<td class="n">%d</td>`, truth.Deliveries["sent"]), "<svg")
	})
	t.Run("blocklists", func(t *testing.T) {
		b := getJSON[console.Blocklists](t, h, "/blocklists")
		var listings []consoletest.Listing
		for _, l := range b.Listings {
			listings = append(listings, consoletest.Listing(l))
		}
		same(t, "listings", listings, truth.Listings)
		var history []consoletest.ListingEvent
		for _, e := range b.History {
			history = append(history, consoletest.ListingEvent(e))
		}
		same(t, "history", history, truth.History)
		var audits []consoletest.Audit
		for _, a := range b.Audits {
			audits = append(audits, consoletest.Audit(a))
		}
		same(t, "audits", audits, truth.Audits)
		contains(t, "blocklists", getHTML(t, h, "/blocklists"), consoletest.ListedZone, consoletest.ListedTXT,
			`href="`+consoletest.ListedDelist+`"`, "no DMARC record at _dmarc.example.com")
	})
	t.Run("complaints", func(t *testing.T) {
		c := getJSON[console.Complaints](t, h, "/complaints")
		var rows []consoletest.ComplaintRow
		for _, r := range c.Rows {
			rows = append(rows, consoletest.ComplaintRow(r))
		}
		same(t, "rows", rows, truth.Complaints)
		var inForce, history []consoletest.Decision
		for _, d := range c.InForce {
			inForce = append(inForce, consoletest.Decision(d))
		}
		for _, d := range c.History {
			history = append(history, consoletest.Decision(d))
		}
		same(t, "in force", inForce, []consoletest.Decision{truth.Decision})
		same(t, "history", history, truth.DecisionHistory)
		contains(t, "complaints", getHTML(t, h, "/complaints"), rate(truth.Complaints[0].RatePct), "<code>"+truth.Decision.LiftCommand+"</code>",
			"mailmon enforcement lift customer:acme/provider:gmail")
	})
	t.Run("alerts", func(t *testing.T) {
		a := getJSON[console.Alerts](t, h, "/alerts")
		conv := func(as []console.Alert) []consoletest.Alert {
			var out []consoletest.Alert
			for _, x := range as {
				out = append(out, consoletest.Alert(x))
			}
			return out
		}
		same(t, "firing", conv(a.Firing), truth.Firing)
		same(t, "resolved", conv(a.Resolved), truth.Resolved)
		same(t, "silenced", conv(a.Silenced), truth.Silenced)
		var silences []consoletest.Silence
		for _, x := range a.Silences {
			silences = append(silences, consoletest.Silence(x))
		}
		same(t, "silences", silences, truth.Silences)
		contains(t, "alerts", getHTML(t, h, "/alerts"), truth.Firing[0].Summary, truth.Silenced[0].Summary, truth.Resolved[0].Summary,
			"<code>rule=probe_in_spam</code> <code>source_ip=192.0.2.11</code>", "<code>mailmon silence expire seed-silence-active</code>", "gmail maintenance window")
	})
	t.Run("trace", func(t *testing.T) {
		for _, q := range []string{consoletest.TraceTrackingID, consoletest.TraceQueueID, consoletest.TraceRecipient} {
			tr := getJSON[console.Trace](t, h, "/trace?q="+q)
			var steps []consoletest.TraceStep
			for _, s := range tr.Steps {
				steps = append(steps, consoletest.TraceStep(s))
			}
			same(t, "trace of "+q, steps, truth.Trace)
		}
		tr := getJSON[console.Trace](t, h, "/trace?q="+consoletest.TraceProbeID)
		var steps []consoletest.TraceStep
		for _, s := range tr.Steps {
			steps = append(steps, consoletest.TraceStep(s))
		}
		same(t, "trace of the probe", steps, truth.ProbeTrace)
		tr = getJSON[console.Trace](t, h, "/trace?q="+consoletest.TraceBounceTrackingID)
		steps = nil
		for _, s := range tr.Steps {
			steps = append(steps, consoletest.TraceStep(s))
		}
		same(t, "trace of the bounced message", steps, truth.BounceTrace)
		contains(t, "trace", getHTML(t, h, "/trace?q="+consoletest.TraceTrackingID), "<b>attempt</b> deferred", "<b>complaint</b> abuse", "<b>decision</b> reroute")
	})
}

// TestReportPage checks that /report is the report package's report (the
// same as `mailmon report`) for the period and customer in the URL.
func TestReportPage(t *testing.T) {
	s := seed(t, console.DefaultConfig())
	for _, tc := range []struct {
		path string
		opts report.Options
	}{
		{"/report", report.Options{Period: report.Daily, End: s.now}},
		{"/report?period=weekly&customer=" + consoletest.Customer, report.Options{Period: report.Weekly, Customer: consoletest.Customer, End: s.now}},
	} {
		want, err := report.Build(context.Background(), s.conn, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		got := getJSON[console.ReportPage](t, s.handler, tc.path)
		wantJSON, _ := json.Marshal(want)
		gotJSON, _ := json.Marshal(got.Report)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("GET %s: report\n got %s\nwant %s", tc.path, gotJSON, wantJSON)
		}
		var html strings.Builder
		if err := want.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		contains(t, tc.path, getHTML(t, s.handler, tc.path), html.String(), "<title>mailmon · Report</title>")
	}
	if code, _ := get(t, s.handler, "/report?period=monthly", true); code != http.StatusBadRequest {
		t.Errorf("period=monthly: %d, want 400", code)
	}
}

// rawTable matches a query reading a raw delivery or probe table (the
// rollups' names continue with an underscore).
var rawTable = regexp.MustCompile(`(?i)\bFROM\s+(delivery_attempted|probe_sent|probe_received|probe_missing)\b(?:[^_]|$)`)

// TestPagesReadRollups proves that no page but the trace reads the raw
// delivery and probe tables, whatever the range: their figures come from
// the rollups.
func TestPagesReadRollups(t *testing.T) {
	s := seed(t, console.DefaultConfig())
	for _, path := range []string{"/", "/?by=customer", "/?range=30d", "/probes?range=30d", "/deliveries?range=30d", "/blocklists", "/complaints?range=30d", "/alerts", "/dmarc?range=30d"} {
		s.queries.reset()
		if code, body := get(t, s.handler, path, true); code != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, code, body)
		}
		qs := s.queries.all()
		if len(qs) == 0 {
			t.Errorf("GET %s ran no query", path)
		}
		for _, q := range qs {
			if rawTable.MatchString(q) {
				t.Errorf("GET %s reads a raw table:\n%s", path, q)
			}
			if !strings.Contains(q, "?") && !strings.Contains(q, "WHERE") {
				t.Errorf("GET %s ran an unbounded query:\n%s", path, q)
			}
		}
	}
	// The baseline's days are over: a second overview within its TTL
	// reads it from the cache, not from a week of buckets.
	s.queries.reset()
	get(t, s.handler, "/", true)
	if slices.ContainsFunc(s.queries.all(), func(q string) bool { return strings.Contains(q, "toStartOfDay(bucket)") }) {
		t.Error("the second overview read the baseline again")
	}

	s.queries.reset()
	get(t, s.handler, "/trace?q="+consoletest.TraceTrackingID, true)
	if !slices.ContainsFunc(s.queries.all(), rawTable.MatchString) {
		t.Error("the trace read no raw table: the recorder does not see the queries")
	}
}

func TestBadParameters(t *testing.T) {
	s := seed(t, console.DefaultConfig())
	for _, path := range []string{"/?range=2y", "/?from=yesterday", "/?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
		"/?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "/?by=zone"} {
		if code, body := get(t, s.handler, path, true); code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s = %d %s, want 400 with an error", path, code, body)
		}
	}
}

func TestAuth(t *testing.T) {
	ask := func(h http.Handler, remote string, set func(*http.Request)) int {
		r := httptest.NewRequest(http.MethodGet, "/static/console.css", nil)
		r.RemoteAddr = remote
		if set != nil {
			set(r)
		}
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, r)
		return rw.Code
	}
	build := func(cfg console.Config) http.Handler {
		_, _, js := natstest.Start(t)
		w, err := console.New(cfg, worker.Settings{JetStream: js, ClickHouse: chstore.DefaultConfig()})
		if err != nil {
			t.Fatal(err)
		}
		return w.Handler()
	}
	const remote, local, local6 = "203.0.113.7:5000", "127.0.0.1:5000", "[::1]:5000"
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

	open := build(console.DefaultConfig())
	for _, tc := range []struct {
		name   string
		h      http.Handler
		remote string
		set    func(*http.Request)
		want   int
	}{
		{"no auth, loopback client", open, local, nil, http.StatusOK},
		{"no auth, IPv6 loopback client", open, local6, nil, http.StatusOK},
		{"no auth, other client", open, remote, nil, http.StatusForbidden},
		{"no auth, other client with a token", open, remote, bearer("x"), http.StatusForbidden},
	} {
		if got := ask(tc.h, tc.remote, tc.set); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}

	cfg := console.DefaultConfig()
	cfg.Token = config.Secret("s3cret-token")
	cfg.Username, cfg.Password = "ops", config.Secret("pa55")
	h := build(cfg)
	for _, tc := range []struct {
		name   string
		remote string
		set    func(*http.Request)
		want   int
	}{
		{"no credentials from afar", remote, nil, http.StatusUnauthorized},
		{"no credentials from loopback", local, nil, http.StatusUnauthorized},
		{"right token", remote, bearer("s3cret-token"), http.StatusOK},
		{"wrong token", remote, bearer("s3cret-tokem"), http.StatusUnauthorized},
		{"token prefix", remote, bearer("s3cret"), http.StatusUnauthorized},
		{"right basic", remote, basic("ops", "pa55"), http.StatusOK},
		{"wrong password", remote, basic("ops", "pa56"), http.StatusUnauthorized},
		{"wrong user", remote, basic("root", "pa55"), http.StatusUnauthorized},
	} {
		if got := ask(h, tc.remote, tc.set); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	if got := rw.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
	}
	if strings.Contains(rw.Body.String(), "s3cret") || strings.Contains(rw.Body.String(), "pa55") {
		t.Error("the 401 answer shows a secret")
	}
}

func TestConfig(t *testing.T) {
	cfg := console.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if err := cfg.CheckExposure("0.0.0.0:9464"); err == nil {
		t.Error("no problem with a console on 0.0.0.0 without auth")
	}
	for _, addr := range []string{"127.0.0.1:9464", "[::1]:9464", "localhost:9464", ""} {
		if err := cfg.CheckExposure(addr); err != nil {
			t.Errorf("CheckExposure(%q) = %v, want none", addr, err)
		}
	}
	cfg.Token = "t"
	if err := cfg.CheckExposure("0.0.0.0:9464"); err != nil {
		t.Errorf("with a token: %v", err)
	}
	bad := console.DefaultConfig()
	bad.Username, bad.Rows, bad.QueryTimeout = "ops", 0, 0
	err := bad.Validate()
	for _, key := range []string{"password", "rows", "query_timeout"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v, want a problem with %s", err, key)
		}
	}
}

// recorder is a ClickHouse connection that records the SQL it is given.
type recorder struct {
	driver.Conn
	mu sync.Mutex
	qs []string
}

func (r *recorder) note(q string) {
	r.mu.Lock()
	r.qs = append(r.qs, q)
	r.mu.Unlock()
}

func (r *recorder) reset() { r.mu.Lock(); r.qs = nil; r.mu.Unlock() }

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.qs)
}

func (r *recorder) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	r.note(q)
	return r.Conn.Query(ctx, q, args...)
}

func (r *recorder) QueryRow(ctx context.Context, q string, args ...any) driver.Row {
	r.note(q)
	return r.Conn.QueryRow(ctx, q, args...)
}

// BenchmarkPages builds every page, as JSON and as HTML, over the seeded
// events: the cost of the console's own work (queries on a small
// database, rendering) without the data volume loadtest console adds.
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(b, server)
	truth, err := consoletest.Seed(ctx, conn, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	_, _, js := natstest.Start(b)
	if err := consoletest.SeedKV(ctx, js, truth); err != nil {
		b.Fatal(err)
	}
	ch := chstore.DefaultConfig()
	ch.Addr, ch.Database = server.Addr(), database
	w, err := console.New(console.DefaultConfig(), worker.Settings{JetStream: js, ClickHouse: ch})
	if err != nil {
		b.Fatal(err)
	}
	h := w.Handler()
	for _, path := range []string{"/", "/?by=customer", "/probes", "/deliveries", "/blocklists", "/complaints", "/alerts", "/trace?q=" + consoletest.TraceTrackingID, "/report", "/dmarc"} {
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
					if rw.Code != http.StatusOK || strings.Contains(rw.Body.String(), "unknown:") {
						b.Fatalf("GET %s = %d: %s", path, rw.Code, rw.Body.String())
					}
				}
			})
		}
	}
}
