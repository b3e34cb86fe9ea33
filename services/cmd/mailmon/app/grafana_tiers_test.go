package app

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/deploy/grafana"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/chtest"
)

// hourlyBranch is the condition under which the probe panels read whole
// hours from the hourly rollups (a chart interval of an hour or more).
const hourlyBranch = "$__interval_s >= 3600"

// TestGrafanaProbePanelsReadHoursOverLongRanges: over a month the probe
// panels read whole hours from probe_*_1h and the minutes at either end
// from probe_*_5m. Each answers exactly what it answers from the 5-minute
// rollups alone, with probes at both ends of the range, on the first
// whole hour and inside.
func TestGrafanaProbePanelsReadHoursOverLongRanges(t *testing.T) {
	ctx := context.Background()
	_, conn := chtest.Start(t)
	if _, err := chstore.Migrate(ctx, conn, chtest.Database, schemas.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	seedGrafanaEvents(t, conn)
	from := grafanaDay.AddDate(0, 0, -29).Add(-17 * time.Minute)
	to := grafanaDay.AddDate(0, 0, 1).Add(13 * time.Minute)
	firstHour := from.Truncate(time.Hour).Add(time.Hour)
	var rows [][]any
	for i, at := range []time.Time{from, from.Add(9 * time.Minute), firstHour, firstHour.Add(-time.Minute), to.Add(-time.Minute), to.Truncate(time.Hour), grafanaDay.AddDate(0, 0, -10)} {
		rows = append(rows, []any{fmt.Sprintf("edge-%d", i), at, "gmail", "192.0.2.1", []string{"inbox", "spam"}[i%2], int64(1000 * (i + 1))})
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO probe_received (id, time, provider, source_ip, placement, latency_ms)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	panels, err := grafana.Panels()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range panels {
		if !strings.Contains(p.SQL, "probe_received") {
			continue
		}
		name := p.Dashboard + " / " + p.Title
		if !strings.Contains(p.SQL, hourlyBranch) {
			t.Errorf("%s reads probes without the hourly rollups", name)
			continue
		}
		tiered, err := grafana.Expand(p.SQL, from, to)
		if err != nil {
			t.Fatal(err)
		}
		fiveMinute, err := grafana.Expand(strings.ReplaceAll(p.SQL, hourlyBranch, "0 = 1"), from, to)
		if err != nil {
			t.Fatal(err)
		}
		_, got := queryStrings(t, conn, name, tiered)
		_, want := queryStrings(t, conn, name, fiveMinute)
		if len(want) == 0 {
			t.Errorf("%s: no rows over the month", name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s over a month: hourly and 5-minute rollups answer\n%v\nthe 5-minute ones alone\n%v", name, got, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no probe panel found")
	}
}
