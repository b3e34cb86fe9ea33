package notifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lease"
	"github.com/mailmon/mailmon/services/internal/report"
)

// ReportSchedule is one report (what `mailmon report` prints) that the
// notifier e-mails on a schedule.
type ReportSchedule struct {
	// Period is "daily" (the previous UTC day, sent every day at `at`) or
	// "weekly" (the 7 UTC days before `weekday`, sent that day at `at`).
	Period string `yaml:"period"`
	// At is the UTC time of day the report goes out, "HH:MM"; 07:00 when
	// empty.
	At string `yaml:"at"`
	// Weekday is the day a weekly report goes out; monday when empty.
	Weekday string `yaml:"weekday"`
	// Customer restricts the report to one customer; every customer when
	// empty.
	Customer string `yaml:"customer"`
	// Routes are the names of the email routes that receive it.
	Routes []string `yaml:"routes"`
}

// reportCheckEvery is how often the notifier looks for a report that is
// due (and retries one that failed).
const reportCheckEvery = time.Minute

func (s ReportSchedule) validate(routes []Route) error {
	var check config.Check
	if _, err := report.ParsePeriod(s.Period); err != nil {
		check.Addf("period", "must be daily or weekly, got %q", s.Period)
	}
	if _, err := s.timeOfDay(); err != nil {
		check.Addf("at", "must be HH:MM (UTC), got %q", s.At)
	}
	if _, err := s.weekday(); err != nil {
		check.Addf("weekday", "must be a day of the week (monday ... sunday), got %q", s.Weekday)
	}
	if len(s.Routes) == 0 {
		check.Addf("routes", "at least one email route is required")
	}
	for i, name := range s.Routes {
		j := slices.IndexFunc(routes, func(r Route) bool { return r.Name == name })
		switch {
		case j < 0:
			check.Addf(fmt.Sprintf("routes[%d]", i), "no route is named %q", name)
		case routes[j].Kind != KindEmail:
			check.Addf(fmt.Sprintf("routes[%d]", i), "route %q is a %s route; reports go to email routes", name, routes[j].Kind)
		}
	}
	return check.Err()
}

func (s ReportSchedule) timeOfDay() (time.Duration, error) {
	if s.At == "" {
		return 7 * time.Hour, nil
	}
	t, err := time.Parse("15:04", s.At)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func (s ReportSchedule) weekday() (time.Weekday, error) {
	if s.Weekday == "" {
		return time.Monday, nil
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(d.String(), s.Weekday) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown weekday %q", s.Weekday)
}

// due returns the latest time at or before now the report was due, and the
// end of the period that report covers: midnight UTC of the day it is sent.
// Only the latest is sent: after an outage of days, yesterday's report is
// news, the ones before it are not.
func (s ReportSchedule) due(now time.Time) (at, end time.Time) {
	offset, _ := s.timeOfDay()
	weekday, _ := s.weekday()
	day := now.UTC().Truncate(24 * time.Hour)
	for {
		at = day.Add(offset)
		if !at.After(now) && (s.Period != string(report.Weekly) || day.Weekday() == weekday) {
			return at, day
		}
		day = day.AddDate(0, 0, -1)
	}
}

// reportKey names one report sent to one route in notifier_state.
func reportKey(s ReportSchedule, route string, end time.Time) string {
	sum := sha256.Sum256([]byte(s.Period + "\x00" + s.Customer + "\x00" + route))
	return "report." + hex.EncodeToString(sum[:12]) + "." + end.Format("20060102")
}

// reportClaimTTL is how long a copy's claim on one report keeps the other
// copies from sending it: long enough to build and send it, short enough
// that a copy that died holding it delays the report little.
const reportClaimTTL = 10 * time.Minute

// reportLoop sends each scheduled report when it is due, once per route:
// a route's report is marked sent in notifier_state after its relay took
// it, so a restart does not send it again, and a failed send is retried
// every minute until the next report is due (after the claim of the copy
// that failed expires). Several notifiers share the work by claiming each
// report in the leases bucket first; a crash between the relay's 250 and
// the mark sends a report twice.
func (n *Notifier) reportLoop(ctx context.Context, kv jetstream.KeyValue) {
	var conn driver.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// ClickHouse is opened when a report is first built and again after
	// a failure, so an outage at start only delays the reports.
	build := func(ctx context.Context, opts report.Options) (report.Report, error) {
		if conn == nil {
			c, err := chstore.Open(ctx, n.set.ClickHouse)
			if err != nil {
				return report.Report{}, err
			}
			conn = c
		}
		r, err := report.Build(ctx, conn, opts)
		if err != nil {
			conn.Close()
			conn = nil
		}
		return r, err
	}
	ticker := time.NewTicker(reportCheckEvery)
	defer ticker.Stop()
	for {
		for _, s := range n.cfg.Reports {
			n.sendDueReport(ctx, kv, s, build)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sendDueReport sends schedule s's latest due report to each of its routes
// that has not had it.
func (n *Notifier) sendDueReport(ctx context.Context, kv jetstream.KeyValue, s ReportSchedule, build func(context.Context, report.Options) (report.Report, error)) {
	_, end := s.due(n.now())
	var body []byte
	var subject string
	for _, name := range s.Routes {
		key := reportKey(s, name, end)
		if _, err := kv.Get(ctx, key); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			n.reportFailed(s, name, fmt.Errorf("read %s: %w", Bucket, err))
			continue
		}
		// Several notifier copies: the first to claim the report sends it,
		// the others skip it; a copy that dies before marking it sent
		// leaves the claim to expire, and the report is sent after that.
		claimed, err := lease.Claim(ctx, n.set.JetStream, "notifier."+key, n.holder, reportClaimTTL)
		if err != nil {
			n.reportFailed(s, name, err)
			continue
		}
		if !claimed {
			continue
		}
		if body == nil {
			r, err := build(ctx, report.Options{Period: report.Period(s.Period), Customer: s.Customer, End: end})
			if err != nil {
				n.reportFailed(s, name, err)
				return
			}
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				n.reportFailed(s, name, err)
				return
			}
			body = b.Bytes()
			subject = reportSubject(s, r)
		}
		i := slices.IndexFunc(n.senders, func(snd *sender) bool { return snd.route.Name == name })
		if err := n.senders[i].sendReport(ctx, subject, key, body); err != nil {
			n.reportFailed(s, name, err)
			continue
		}
		if _, err := kv.Put(ctx, key, []byte(n.now().UTC().Format(time.RFC3339))); err != nil {
			// Sent but not marked: the next check sends it again.
			n.reportFailed(s, name, fmt.Errorf("mark sent in %s: %w", Bucket, err))
			continue
		}
		n.metrics.reports.WithLabelValues(name, s.Period).Inc()
		n.log.Info("report sent", "route", name, "period", s.Period, "customer", s.Customer, "end", end)
	}
}

func (n *Notifier) reportFailed(s ReportSchedule, route string, err error) {
	n.metrics.reportErrors.WithLabelValues(route, s.Period).Inc()
	n.log.Warn("scheduled report not sent; retrying in a minute", "route", route, "period", s.Period, "customer", s.Customer, "error", err)
}

// reportSubject names the period and, for one customer's report, the
// customer.
func reportSubject(s ReportSchedule, r report.Report) string {
	subject := fmt.Sprintf("mailmon %s report %s to %s", s.Period, r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04 MST"))
	if s.Customer != "" {
		subject += ", customer " + s.Customer
	}
	return oneLine(subject, maxSubjectRunes)
}

// sendReport e-mails one report through the route's relay: the report's
// text as the plain-text body, with a Message-ID derived from key so a copy
// sent again is recognisable.
func (snd *sender) sendReport(ctx context.Context, subject, key string, body []byte) error {
	now := snd.now()
	return snd.sendMail(ctx, func(from *mail.Address, to []*mail.Address) []byte {
		domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
		sum := sha256.Sum256([]byte(key))
		id := "<mailmon-report." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
		return textMessage(from, to, now, subject, id, nil, body)
	})
}
