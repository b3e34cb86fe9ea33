package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestHarness checks the harness itself against pages whose problems are
// known: a clean page reads back its figures with none, and a broken page
// reports each of its console error, exception, rejected promise, missing
// image and reach for the network.
func TestHarness(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/clean", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><head><title>clean</title></head><body>
<table><tr><td data-ip="192.0.2.1" data-provider="gmail">97.0 %</td><td data-ip="192.0.2.1" data-provider="outlook">
  88.5 %
</td></tr></table>
<script>console.log("fine"); console.info("fine too"); document.body.style.background = "#fed";</script>
</body></html>`)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><head><title>broken</title></head><body><p>broken</p>
<img src="/missing.png" alt="">
<script src="http://cdn.example.com/chart.js"></script>
<script>console.error("boom", 42);</script>
<script>Promise.reject(new Error("rejected"));</script>
<script>undefinedFunction();</script>
</body></html>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := newBrowser(t)
	// The end-of-test check that chromium left nothing behind looks for
	// processes naming its profile: while it runs, there are some.
	if running := processesUsing(b.dir); len(running) == 0 {
		t.Errorf("no running process names chromium's profile %q", b.dir)
	}
	if helpers := descendants(b.pid); len(helpers) == 0 {
		t.Errorf("chromium (pid %d) has no helper processes to check at the end", b.pid)
	} else {
		t.Logf("chromium runs with %d helper processes", len(helpers))
	}

	b.open(srv.URL + "/clean")
	if got, want := b.texts("td[data-ip]"), []string{"97.0 %", "88.5 %"}; !slices.Equal(got, want) {
		t.Errorf("texts = %q, want %q", got, want)
	}
	if got, want := b.attrs("td", "data-provider"), []string{"gmail", "outlook"}; !slices.Equal(got, want) {
		t.Errorf("attrs = %q, want %q", got, want)
	}
	if got := b.text(`td[data-provider="outlook"]`); got != "88.5 %" {
		t.Errorf("text = %q, want %q", got, "88.5 %")
	}
	b.screenshot("clean")

	b.navigate(srv.URL + "/broken")
	problems := strings.Join(b.takeProblems(), "\n")
	t.Logf("problems of the broken page:\n%s", problems)
	for _, want := range []string{
		`console.error: "boom" 42`,
		"exception: Uncaught ReferenceError: undefinedFunction is not defined",
		"exception: Uncaught (in promise) Error: rejected",
		"/missing.png",
		"cdn.example.com/chart.js",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not name %q; they are:\n%s", want, problems)
		}
	}
	if again := b.takeProblems(); len(again) != 0 {
		t.Errorf("problems taken twice: %q", again)
	}
}
