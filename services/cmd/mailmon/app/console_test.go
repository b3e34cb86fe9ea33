package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/worker"
)

// TestRunServesTheConsole runs mailmon with the console and fetches its
// overview (HTML and JSON) next to /metrics and /healthz on http.addr.
func TestRunServesTheConsole(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	workers, err := SelectWorkers("console")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + cfg.HTTP.Addr
	fetch := func(path, accept string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := false
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), RunOptions{Workers: workers, Ready: func(rt *Runtime) {
		ready = true
		defer cancel()
		if code, ctype, body := fetch("/", ""); code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "Overview: sending IP × provider") {
			t.Errorf("GET / = %d %s:\n%s", code, ctype, body)
		}
		code, ctype, body := fetch("/?range=1h", "application/json")
		var page struct {
			Page  string   `json:"page"`
			Notes []string `json:"notes"`
		}
		if code != http.StatusOK || ctype != "application/json" || json.Unmarshal([]byte(body), &page) != nil || page.Page != "overview" {
			t.Errorf("GET / as JSON = %d %s:\n%s", code, ctype, body)
		}
		if len(page.Notes) > 0 {
			t.Errorf("the console could not read its buckets as its own NATS user: %q", page.Notes)
		}
		for _, path := range []string{"/blocklists", "/complaints", "/alerts"} {
			code, _, body := fetch(path, "application/json")
			page.Notes = nil
			if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || len(page.Notes) > 0 {
				t.Errorf("GET %s as JSON = %d, notes %q:\n%s", path, code, page.Notes, body)
			}
		}
		if code, _, body := fetch("/metrics", ""); code != http.StatusOK || !strings.Contains(body, `mailmon_console_requests_total{code="200",page="overview"} 2`) {
			t.Errorf("GET /metrics = %d, without the console's requests:\n%s", code, body)
		}
		if code, _, body := fetch("/healthz", ""); code != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /healthz = %d %q", code, body)
		}
	}})
	if !ready {
		t.Fatalf("mailmon never became ready: %v", err)
	}
	if err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// TestConsoleExposureIsAConfigError: a console on an address others can
// reach needs authentication.
func TestConsoleExposureIsAConfigError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HTTP.Addr = "0.0.0.0:9464"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "console.token") {
		t.Errorf("Validate() = %v, want a console.token problem", err)
	}
	cfg.Console.Token = "a-token"
	if err := cfg.Validate(); err != nil {
		t.Errorf("with a token: %v", err)
	}
	cfg.Console.Token, cfg.Console.Enabled = "", false
	if err := cfg.Validate(); err != nil {
		t.Errorf("console disabled: %v", err)
	}
	cfg.Console.Enabled = true
	workers, err := SelectWorkers("console")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workers[0].Build(cfg, worker.Settings{}); err == nil || !strings.Contains(err.Error(), "console.token") {
		t.Errorf("building the console for 0.0.0.0 without auth (as -http.addr would set it) = %v, want refused", err)
	}
}
