package notifier

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
	"github.com/mailmon/mailmon/services/internal/report"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
)

func TestReportScheduleDue(t *testing.T) {
	day := func(d, hh, mm int) time.Time { return time.Date(2026, 12, d, hh, mm, 0, 0, time.UTC) } // 7 December 2026 is a Monday
	tests := []struct {
		name     string
		schedule ReportSchedule
		now      time.Time
		at, end  time.Time
	}{
		{"daily, after today's time", ReportSchedule{Period: "daily", At: "07:00"}, day(7, 7, 0), day(7, 7, 0), day(7, 0, 0)},
		{"daily, before today's time: yesterday's", ReportSchedule{Period: "daily", At: "07:00"}, day(7, 6, 59), day(6, 7, 0), day(6, 0, 0)},
		{"daily at the default 07:00", ReportSchedule{Period: "daily"}, day(9, 23, 0), day(9, 7, 0), day(9, 0, 0)},
		{"weekly on monday", ReportSchedule{Period: "weekly", At: "06:30"}, day(10, 12, 0), day(7, 6, 30), day(7, 0, 0)},
		{"weekly on friday", ReportSchedule{Period: "weekly", Weekday: "Friday"}, day(10, 12, 0), day(4, 7, 0), day(4, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, end := tt.schedule.due(tt.now)
			if !at.Equal(tt.at) || !end.Equal(tt.end) {
				t.Errorf("due(%v) = %v, %v; want %v, %v", tt.now, at, end, tt.at, tt.end)
			}
		})
	}
}

func TestReportScheduleValidate(t *testing.T) {
	routes := []Route{emailRoute("127.0.0.1:25"), {Name: "hook", Kind: KindWebhook, URL: "http://127.0.0.1:1/"}}
	cfg := testConfig(routes...)
	cfg.Reports = []ReportSchedule{
		{Period: "daily", Routes: []string{"ops-mail"}},
		{Period: "hourly", At: "7am", Weekday: "someday", Routes: []string{"hook", "nobody"}},
		{Period: "weekly"},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad report schedules")
	}
	for _, want := range []string{
		"reports[1].period", "reports[1].at", "reports[1].weekday",
		`reports[1].routes[0]: route "hook" is a webhook route`, `reports[1].routes[1]: no route is named "nobody"`,
		"reports[2].routes: at least one email route is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "reports[0]") {
		t.Errorf("a good schedule was refused:\n%v", err)
	}
}

// TestScheduledReportIsEmailedOnce runs two notifier copies at once against
// a real ClickHouse holding a day of deliveries and an in-process relay: the
// daily report due at 07:00 goes out once to each of its routes, with the
// day's figures; a notifier started again the same day sends nothing more.
func TestScheduledReportIsEmailedOnce(t *testing.T) {
	srv, conn := chtest.Start(t)
	ctx := context.Background()
	if _, err := chstore.Migrate(ctx, conn, chtest.Database, schemas.Migrations); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO delivery_attempted (id, time, provider, source_ip, customer, status, category, reply, signature)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		status, category, reply := "sent", "", "250 ok"
		if i%10 == 0 {
			status, category, reply = "bounced", "policy", "550 5.7.1 rejected by policy"
		}
		if err := batch.Append("d"+string(rune('a'+i)), day.Add(time.Duration(i)*30*time.Minute), "gmail", "192.0.2.1", "acme", status, category, reply, reply); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	relay := startRelay(t, nil, nil)
	second := emailRoute(relay.addr)
	second.Name, second.To = "abuse-mail", []string{"abuse@example.test"}
	cfg := testConfig(emailRoute(relay.addr), second)
	cfg.Reports = []ReportSchedule{{Period: "daily", At: "07:00", Routes: []string{"ops-mail", "abuse-mail"}}}
	ch := chstore.DefaultConfig()
	ch.Addr, ch.Database = srv.Addr(), chtest.Database
	js := startJetStream(t)
	now := func() time.Time { return time.Date(2026, 12, 7, 7, 3, 0, 0, time.UTC) }

	// Two copies run at once: each report is claimed by one of them.
	runOnce := func() {
		var copies []*Notifier
		for range 2 {
			n, err := New(cfg, worker.Settings{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), JetStream: js,
				Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"}), Now: now, ClickHouse: ch,
				Source: schemas.Source{Worker: WorkerName, Host: "test"}})
			if err != nil {
				t.Fatal(err)
			}
			copies = append(copies, n)
		}
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, n := range copies {
			wg.Go(func() {
				if err := n.Run(runCtx); err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		// The metric counts a report once it is marked sent.
		sent := func() float64 {
			var sum float64
			for _, n := range copies {
				sum += testutil.ToFloat64(n.metrics.reports.WithLabelValues("ops-mail", "daily")) +
					testutil.ToFloat64(n.metrics.reports.WithLabelValues("abuse-mail", "daily"))
			}
			return sum
		}
		testwait.Eventually(t, 30*time.Second, "both routes to have the report", func() bool { return sent() >= 2 })
		cancel()
		wg.Wait()
		if got := sent(); got != 2 {
			t.Errorf("the two copies marked %v reports sent, want 2 (one per route)", got)
		}
	}
	runOnce()
	got := relay.got()
	if len(got) != 2 {
		t.Fatalf("relay got %d messages, want 2 (one per route)", len(got))
	}
	for _, m := range got {
		msg, err := mail.ReadMessage(bytes.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		if want := "mailmon daily report 2026-12-06 00:00 to 2026-12-07 00:00 UTC"; msg.Header.Get("Subject") != want {
			t.Errorf("Subject %q, want %q", msg.Header.Get("Subject"), want)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		// 40 attempts on 6 December, 4 of them bounced with one reply.
		for _, want := range []string{"40", "550 5.7.1 rejected by policy", "gmail"} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("report body lacks %q:\n%s", want, body)
			}
		}
	}

	// The same day again: both routes had it, nothing more is sent.
	relay2 := len(relay.got())
	n, err := New(cfg, worker.Settings{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), JetStream: js,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"}), Now: now, ClickHouse: ch,
		Source: schemas.Source{Worker: WorkerName, Host: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	build := func(context.Context, report.Options) (report.Report, error) {
		t.Error("a report already sent to every route was built again")
		return report.Report{}, nil
	}
	for _, s := range cfg.Reports {
		n.sendDueReport(ctx, kv, s, build)
	}
	if len(relay.got()) != relay2 {
		t.Errorf("relay got %d more messages after a restart the same day", len(relay.got())-relay2)
	}
}
