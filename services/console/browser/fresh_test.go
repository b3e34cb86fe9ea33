package browser

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// checkFreshBehindBasicAuth opens the console of a mailmon that has
// stored nothing yet, with basic authentication configured, as an
// operator's browser sees it: after signing in once (the credentials in
// the URL, as a browser's prompt would send them) every page, with its
// stylesheet, loads without a console error and says it has nothing to
// show, rather than drawing empty tables or charts. The streams and KV
// buckets exist (the topology is applied), empty.
func checkFreshBehindBasicAuth(t *testing.T, b *browser) {
	ctx := context.Background()
	conn, database := chtest.NewDatabase(t, server)
	if _, err := chstore.Migrate(ctx, conn, database, schemas.Migrations); err != nil {
		t.Fatal(err)
	}
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil { // the streams and buckets, empty
		t.Fatal(err)
	}
	ch := chstore.DefaultConfig()
	ch.Addr = server.Addr()
	ch.Database = database
	cfg := console.DefaultConfig()
	cfg.Username, cfg.Password = "ops", config.Secret("s3cret")
	w, err := console.New(cfg, worker.Settings{JetStream: js, ClickHouse: ch})
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
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)

	// Not signed in, nothing is served (chromium, which cannot prompt
	// headless, gives the navigation up; a plain client sees the 401).
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("not signed in, / answered %s %q, want 401 with a Basic challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	signIn, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	signIn.User = url.UserPassword(cfg.Username, cfg.Password.Reveal())
	b.open(signIn.String())
	if got := b.count(`link[rel=stylesheet]`); got != 1 {
		t.Errorf("the overview links %d stylesheets, want 1", got)
	}

	for _, page := range []struct{ path, empty string }{
		{"/", "No deliveries, complaints or probes in this range."},
		{"/probes", "No probes in this range."},
		{"/deliveries", "No delivery attempts in this range."},
		{"/blocklists", "No listings in force."},
		{"/complaints", "No deliveries or complaints in this range."},
		{"/alerts", "None."},
		{"/trace", "Enter a tracking id, queue id, probe id or recipient above."},
		{"/trace?q=nothing-like-it", "Nothing found for nothing-like-it in this range."},
	} {
		b.open(srv.URL + page.path) // signed in: the browser sends the credentials again
		if got := b.texts("main p.empty"); len(got) == 0 || got[0] != page.empty {
			t.Errorf("%s says %q, want first %q", page.path, got, page.empty)
		}
		if got := b.texts("main p.note"); len(got) != 0 {
			t.Errorf("%s notes %q: a fresh install has every source, only empty", page.path, got)
		}
		if got := b.count("main table, main svg"); got != 0 {
			t.Errorf("%s draws %d tables or charts with nothing to show", page.path, got)
		}
		if page.path == "/" {
			b.screenshot("fresh-overview")
		}
	}
	b.open(srv.URL + "/report")
	if got := b.texts("section.report .report-none"); len(got) == 0 {
		t.Errorf("/report shows no section with nothing in it")
	}
	if got := b.texts("table.report-deliveries td"); strings.Join(got, " ") != "0 0 0 0 0 0 0.0% 0.0%" {
		t.Errorf("/report's deliveries show %q, want zeros", got)
	}
}
