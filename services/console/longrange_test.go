package console_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/console"
)

// TestLongRangesMergeHourlyAndFiveMinuteRows: ranges of days read whole
// days (probes, charted by the day) and hours from the daily and hourly
// rollups and the minutes at either end from the 5-minute ones. Deliveries and probes spread over ten days, at minutes
// off the hour, must show the same totals as the raw tables over the range
// each page reports, for named ranges and a from/to that starts and ends
// mid-hour.
func TestLongRangesMergeHourlyAndFiveMinuteRows(t *testing.T) {
	s := seed(t, console.DefaultConfig())
	ctx := context.Background()
	deliveries, err := s.conn.PrepareBatch(ctx, "INSERT INTO delivery_attempted (id, time, provider, source_ip, customer, status, category)")
	if err != nil {
		t.Fatal(err)
	}
	probes, err := s.conn.PrepareBatch(ctx, "INSERT INTO probe_received (id, time, provider, source_ip, placement, latency_ms)")
	if err != nil {
		t.Fatal(err)
	}
	statuses := []string{"sent", "sent", "deferred", "bounced"}
	for i := range 3000 {
		at := s.now.Add(-time.Duration(i) * (4*time.Minute + 37*time.Second)) // about one a 5-minute bucket, over 9.6 days
		if err := deliveries.Append(fmt.Sprintf("long-d%d", i), at, "gmail", "192.0.2.200", "longrange", statuses[i%4], "policy"); err != nil {
			t.Fatal(err)
		}
		if err := probes.Append(fmt.Sprintf("long-p%d", i), at, "gmail", "192.0.2.200", []string{"inbox", "spam"}[i%2], int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := deliveries.Send(); err != nil {
		t.Fatal(err)
	}
	if err := probes.Send(); err != nil {
		t.Fatal(err)
	}

	from := s.now.Add(-6*24*time.Hour - 37*time.Minute).Format(time.RFC3339)
	to := s.now.Add(-2*24*time.Hour - 18*time.Minute).Format(time.RFC3339)
	// Nine days, charted by the day, with events on both sides of each end.
	dayFrom := s.now.Add(-9*24*time.Hour - 2*time.Hour - 37*time.Minute).Format(time.RFC3339)
	dayTo := s.now.Add(-5*time.Hour - 17*time.Minute).Format(time.RFC3339)
	for _, query := range []string{"range=7d", "range=30d", "from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to),
		"from=" + url.QueryEscape(dayFrom) + "&to=" + url.QueryEscape(dayTo)} {
		t.Run(query, func(t *testing.T) {
			s.queries.reset()
			d := getJSON[console.Deliveries](t, s.handler, "/deliveries?source_ip=192.0.2.200&"+query)
			if !slices.ContainsFunc(s.queries.all(), func(q string) bool { return strings.Contains(q, "delivery_status_1h") }) {
				t.Errorf("%s did not read the hourly rollup", query)
			}
			// The range covers the 5-minute buckets From ... To.
			lo, hi := d.Params.From, d.Params.To.Truncate(5*time.Minute).Add(5*time.Minute)
			want := map[string]uint64{}
			rows, err := s.conn.Query(ctx, `SELECT status, count() FROM delivery_attempted
				WHERE source_ip = '192.0.2.200' AND time >= ? AND time < ? GROUP BY status`, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var status string
				var n uint64
				if err := rows.Scan(&status, &n); err != nil {
					t.Fatal(err)
				}
				want[status] = n
			}
			rows.Close()
			same(t, query+" deliveries by status", d.Totals, want)
			var seriesSum uint64
			for _, series := range d.Series {
				for _, pt := range series.Points {
					seriesSum += pt.Count
				}
			}
			if total := want["sent"] + want["deferred"] + want["bounced"]; seriesSum != total {
				t.Errorf("%s: the chart's points add up to %d attempts, the range holds %d", query, seriesSum, total)
			}

			s.queries.reset()
			p := getJSON[console.Probes](t, s.handler, "/probes?source_ip=192.0.2.200&"+query)
			// A 30-day chart steps by the day: whole days come from the daily rollup.
			readsDaily := slices.ContainsFunc(s.queries.all(), func(q string) bool { return strings.Contains(q, "probe_received_1d") })
			if wantDaily := query == "range=30d" || strings.Contains(query, url.QueryEscape(dayFrom)); readsDaily != wantDaily {
				t.Errorf("%s: read probe_received_1d: %v", query, readsDaily)
			}
			var inbox, spam uint64
			if err := s.conn.QueryRow(ctx, `SELECT countIf(placement = 'inbox'), countIf(placement = 'spam') FROM probe_received
				WHERE source_ip = '192.0.2.200' AND time >= ? AND time < ?`, lo, hi).Scan(&inbox, &spam); err != nil {
				t.Fatal(err)
			}
			if len(p.Rows) != 1 || p.Rows[0].Inbox != inbox || p.Rows[0].Spam != spam {
				t.Errorf("%s probes %+v, want inbox %d spam %d", query, p.Rows, inbox, spam)
			}
		})
	}
}
