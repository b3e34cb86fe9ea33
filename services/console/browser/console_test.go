package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/console/consoletest"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// server is the ClickHouse the tests share, a database each.
var server *chstore.LocalServer

func TestMain(m *testing.M) { os.Exit(chtest.RunWithServer(m, &server)) }

// seededConsole is the console's Handler served on loopback over a
// database and NATS KV seeded by consoletest.
type seededConsole struct {
	url   string
	truth consoletest.Truth
}

// startConsole seeds a database of its own and the KV buckets with
// consoletest at the current second, runs extra (more events, or nil),
// and serves the console over them with its clock stopped at that
// second, so the default range is the truth's.
func startConsole(t *testing.T, extra func(ctx context.Context, conn driver.Conn, now time.Time) error) seededConsole {
	t.Helper()
	return startConsoleAt(t, time.Now().UTC().Truncate(time.Second), extra)
}

// startConsoleAt is startConsole with the clock stopped at now.
func startConsoleAt(t *testing.T, now time.Time, extra func(ctx context.Context, conn driver.Conn, now time.Time) error) seededConsole {
	t.Helper()
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	_, _, js := natstest.Start(t)
	truth, err := consoletest.Seed(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := consoletest.SeedKV(ctx, js, truth); err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		if err := extra(ctx, conn, now); err != nil {
			t.Fatal(err)
		}
	}

	ch := chstore.DefaultConfig()
	ch.Addr = server.Addr()
	ch.Database = database
	w, err := console.New(console.DefaultConfig(), worker.Settings{
		JetStream:  js,
		ClickHouse: ch,
		Now:        func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("console: %v", err)
		}
	})
	srv := httptest.NewServer(w.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	return seededConsole{url: srv.URL, truth: truth}
}

// page is the URL of a console page with query parameters (name, value, ...).
func (c seededConsole) page(path string, query ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	if len(q) == 0 {
		return c.url + path
	}
	return c.url + path + "?" + q.Encode()
}

// fetchJSON asks for a page as JSON and decodes it into v.
func fetchJSON(t *testing.T, pageURL string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, pageURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as JSON: %s", pageURL, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s as JSON: Content-Type %q", pageURL, ct)
	}
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("GET %s as JSON: %v", pageURL, err)
	}
}

// same fails t with every difference between a page's figures and the truth.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range differences(got, want) {
		t.Errorf("%s%s", what, d)
	}
}

// The figures as the pages print them.
func pct(v float64) string  { return fmt.Sprintf("%.1f %%", v) }
func rate(v float64) string { return fmt.Sprintf("%.2f %%", v) }
func ms(v float64) string   { return fmt.Sprintf("%.0f ms", v) }
func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
