package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/report"
)

// TestReportCmd runs `mailmon report` against a real ClickHouse holding a
// day of deliveries and complaints for two customers, in each format.
func TestReportCmd(t *testing.T) {
	ctx := context.Background()
	srv, conn := chtest.Start(t)
	if _, err := chstore.Migrate(ctx, conn, chtest.Database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	deliveries := [][]any{}
	add := func(n int, hour int, customer, status, category string) {
		for range n {
			deliveries = append(deliveries, []any{fmt.Sprintf("d%d", len(deliveries)), day.Add(time.Duration(hour) * time.Hour),
				customer, "gmail", "192.0.2.1", "gmail.com", status, category, "sig " + category, "reply " + category})
		}
	}
	add(8, 9, "acme", "sent", "")
	add(2, 10, "acme", "bounced", "user_unknown")
	add(3, 11, "beta", "sent", "")
	add(1, 12, "beta", "deferred", "rate_limited")
	add(5, 25, "acme", "sent", "") // the next day: outside a daily report at 2026-12-07
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO delivery_attempted (id, time, customer, provider, source_ip, recipient_domain, status, category, signature, reply)")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range deliveries {
		if err := batch.Append(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	batch, err = conn.PrepareBatch(ctx, "INSERT INTO complaint_received (id, time, customer, provider, counted, trusted, feedback_type, original_subject, headers_excerpt)")
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append("c1", day.Add(13*time.Hour), "acme", "gmail", uint8(1), uint8(1), "abuse", "Weekly deals", "From: deals@acme.example"); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("clickhouse:\n  addr: %s\n  database: %s\n", srv.Addr(), chtest.Database))

	t.Run("text", func(t *testing.T) {
		code, out, errOut := runMain(t, "report", "daily", "-config", cfg, "-at", "2026-12-07")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		for _, want := range []string{
			"mailmon daily report\n",
			"Period:   2026-12-06 00:00 to 2026-12-07 00:00 UTC\n",
			"\n     14  attempts\n     11  sent\n      1  deferred\n      2  bounced\n",
			"  84.6%  delivered", // 11 of 13 concluded
			"Bounces by category and provider (total 2)\n",
			"  user_unknown  2\n                2  gmail\n",
			"           1          0          8  12.500%  acme\n",
			"  acme:\n    2026-12-06 13:00  gmail  abuse  Subject: Weekly deals\n      From: deals@acme.example\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("json for one customer", func(t *testing.T) {
		code, out, errOut := runMain(t, "report", "daily", "-config", cfg, "-at", "2026-12-07T00:59:00Z", "-customer", "acme", "-format", "json")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		var r report.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("output is not a report: %v\n%s", err, out)
		}
		want := report.Deliveries{Attempts: 10, Sent: 8, Bounced: 2, DeliveredPercent: 80}
		if r.Period != report.Daily || r.Customer != "acme" || !r.To.Equal(day.Add(24*time.Hour)) || r.Deliveries != want {
			t.Errorf("report %s %q to %s deliveries %+v, want daily acme to %s %+v", r.Period, r.Customer, r.To, r.Deliveries, day.Add(24*time.Hour), want)
		}
		if len(r.FBL.Customers) != 1 || r.FBL.Customers[0].Complaints != 1 || r.FBL.Customers[0].Delivered != 8 {
			t.Errorf("FBL review %+v", r.FBL)
		}
	})

	t.Run("weekly html", func(t *testing.T) {
		code, out, errOut := runMain(t, "report", "weekly", "-config", cfg, "-at", "2026-12-08 00:00", "-format", "html")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		for _, want := range []string{`<section class="report" data-period="weekly">`, "2026-12-01 00:00 to 2026-12-08 00:00 UTC",
			`<tr><th>attempts</th><td class="num">19</td></tr>`, `<tr><th>sent</th><td class="num">16</td></tr>`} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("ClickHouse unreachable", func(t *testing.T) {
		down := writeConfig(t, "clickhouse:\n  addr: 127.0.0.1:1\n  dial_timeout: 1s\n")
		code, _, errOut := runMain(t, "report", "daily", "-config", down)
		if code != exitFailure || !strings.Contains(errOut, "mailmon report daily:") {
			t.Errorf("exit %d, stderr %q; want %d and the error", code, errOut, exitFailure)
		}
	})
}

// TestReportCmdUsage: mistakes in the command line are usage errors
// (exit 2) named before any config is read.
func TestReportCmdUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such.yaml")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no period", []string{"report"}, exitUsage, "usage: mailmon report daily|weekly"},
		{"flag before period", []string{"report", "-format", "json"}, exitUsage, "usage: mailmon report daily|weekly"},
		{"unknown period", []string{"report", "monthly"}, exitUsage, `report period "monthly": want daily or weekly`},
		{"unknown format", []string{"report", "daily", "-config", missing, "-format", "pdf"}, exitUsage, `-format "pdf": want text, json or html`},
		{"bad time", []string{"report", "weekly", "-config", missing, "-at", "yesterday"}, exitUsage, `-at "yesterday": want RFC 3339`},
		{"extra argument", []string{"report", "daily", "-config", missing, "acme"}, exitUsage, "unexpected arguments: acme"},
		{"unknown flag", []string{"report", "daily", "-nope"}, exitUsage, "flag provided but not defined: -nope"},
		{"missing config", []string{"report", "daily", "-config", missing}, exitUsage, "config " + missing},
		{"help", []string{"report", "-h"}, exitOK, ""},
		{"flag help", []string{"report", "daily", "-h"}, exitOK, "-customer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runMain(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("mailmon %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
			}
			if c.name == "help" && !strings.Contains(out, "usage: mailmon report") {
				t.Errorf("mailmon report -h printed %q", out)
			}
		})
	}
	if code, out, _ := runMain(t, "help"); code != exitOK || !strings.Contains(out, "  report ") {
		t.Errorf("mailmon help does not list report:\n%s", out)
	}
}

func TestParseReportTime(t *testing.T) {
	want := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-12-07T10:00:00Z", "2026-12-07T11:00:00+01:00", "2026-12-07T10:00", "2026-12-07 10:00"} {
		if got, err := parseReportTime(s); err != nil || !got.Equal(want) {
			t.Errorf("parseReportTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, err := parseReportTime("2026-12-07"); err != nil || !got.Equal(want.Truncate(24*time.Hour)) {
		t.Errorf("parseReportTime(2026-12-07) = %v, %v", got, err)
	}
}
