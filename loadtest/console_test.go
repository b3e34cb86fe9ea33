package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

func TestParseConsoleFlags(t *testing.T) {
	defaults := consoleOptions{
		shape:    worldShape{days: 30, perDay: 1_000_000, ips: 20, providers: 8, customers: 40, seed: 17},
		sinkDays: 1, fetches: 20, timeout: 90 * time.Minute, workers: consoleWorkers,
		batchRows: 100_000, maxBacklog: 500_000, targetP95: 500 * time.Millisecond,
	}
	small := defaults
	small.shape.days, small.shape.perDay, small.sinkDays, small.fetches, small.keep = 2, 20000, 2, 3, true
	tests := []struct {
		name    string
		args    []string
		want    consoleOptions
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{name: "small", args: []string{"-days", "2", "-deliveries-per-day", "20000", "-sink-days", "2", "-fetches", "3", "-keep"}, want: small},
		{name: "more sink days than days", args: []string{"-days", "2", "-sink-days", "3"}, wantErr: "-sink-days must be between 0 and -days (2), got 3"},
		{name: "every problem at once", args: []string{"-days", "0", "-fetches", "0", "-timeout", "0s", "-workers", " "},
			wantErr: "-days must be at least 1, got 0; -fetches must be at least 1, got 0; -sink-days must be between 0 and -days (0), got 1; -timeout must be positive, got 0s; -workers must name at least one worker"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected arguments: now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConsoleFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("options = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func testWorld(t *testing.T, shape worldShape) *world {
	t.Helper()
	w, err := newWorld(filepath.Join("..", "schemas", "testdata", "events"), shape, time.Date(2026, 3, 14, 10, 2, 17, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The generated traffic is valid by the contract, lies inside its bucket,
// has exactly deliveries-per-day deliveries a day, one probe per IP x
// provider per bucket, complaints near 0.1 % and every kind the pages
// read; the same seed gives the same traffic.
func TestWorldTraffic(t *testing.T) {
	shape := worldShape{days: 2, perDay: 5000, ips: 4, providers: 3, customers: 6, seed: 1}
	w := testWorld(t, shape)
	if got := w.end.Sub(w.start); got != 48*time.Hour {
		t.Fatalf("world spans %s, want 48h", got)
	}
	counts := map[string]int{}
	statuses := map[string]int{}
	traced := 0
	var first []string
	for b := range w.buckets() {
		start := w.bucketStart(b)
		err := w.generate(b, func(ev schemas.Event) error {
			k, err := schemas.KindOf(ev)
			if err != nil {
				return err
			}
			if err := schemas.Validate(ev); err != nil {
				t.Fatalf("bucket %d: %s: %v", b, k.Type, err)
			}
			h := ev.EventHeader()
			if h.Time.Before(start) || !h.Time.Before(start.Add(bucketLen)) {
				t.Fatalf("bucket %d (%s): %s at %s, outside the bucket", b, start, k.Type, h.Time)
			}
			counts[k.Table]++
			if d, ok := ev.(*schemas.DeliveryAttempted); ok {
				statuses[d.Status]++
				if d.TrackingID == traceSample {
					traced++
				}
				if b == 0 && len(first) < 5 {
					first = append(first, d.Customer+"/"+d.SourceIP+"/"+d.Provider+"/"+d.Status)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if counts["delivery_attempted"] != 2*5000 {
		t.Errorf("%d deliveries, want %d", counts["delivery_attempted"], 2*5000)
	}
	if want := w.buckets() * 4 * 3; counts["probe_sent"] != want {
		t.Errorf("%d probes sent, want one per IP x provider x bucket = %d", counts["probe_sent"], want)
	}
	if got, max := counts["probe_received"]+counts["probe_missing"], counts["probe_sent"]; got > max || got < max*95/100 {
		t.Errorf("%d probes received or missing of %d sent", got, max)
	}
	if c := counts["complaint_received"]; c < 3 || c > 40 {
		t.Errorf("%d complaints for %d deliveries, want about 0.1-0.4 %%", c, counts["delivery_attempted"])
	}
	if traced != 1 {
		t.Errorf("%d deliveries carry the trace page's tracking id %s, want 1", traced, traceSample)
	}
	for _, s := range []string{schemas.StatusSent, schemas.StatusDeferred, schemas.StatusBounced} {
		if statuses[s] == 0 {
			t.Errorf("no %s delivery", s)
		}
	}
	for _, typ := range worldKinds {
		k, _ := schemas.KindByType(typ)
		if counts[k.Table] == 0 {
			t.Errorf("no %s event in two days", typ)
		}
	}

	again := testWorld(t, shape)
	var second []string
	err := again.generate(0, func(ev schemas.Event) error {
		if d, ok := ev.(*schemas.DeliveryAttempted); ok && len(second) < 5 {
			second = append(second, d.Customer+"/"+d.SourceIP+"/"+d.Provider+"/"+d.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(first, " ") != strings.Join(second, " ") {
		t.Errorf("the same seed gave other traffic: %v, then %v", first, second)
	}
}

// The whole scenario on a small volume: the traffic loads once both ways,
// every rollup answer equals the raw one, every page and panel answers
// with figures.
func TestConsoleScenarioEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		unavailable(t, "clickhouse-server: %v", err)
	}
	var stdout, stderr bytes.Buffer
	// Two days, few IPs and providers (the probes are per IP x provider
	// every 5 minutes), two fetches of each page: a minute on 2 cores.
	code := run(t.Context(), []string{"console", "-days", "2", "-deliveries-per-day", "20000", "-ips", "4", "-providers", "3", "-customers", "8",
		"-fetches", "2", "-timeout", "5m"}, &stdout, &stderr)
	got := lastJSONLine(t, stdout.String())
	if code != 0 {
		t.Fatalf("exit status %d\nresult: %v\nprogress:\n%s", code, got, stderr.String())
	}
	var res consoleResult
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows["delivery_attempted"] != 2*20000 || res.SinkEvents == 0 || res.DirectEvents == 0 || res.SinkEvents+res.DirectEvents != res.N {
		t.Errorf("loaded %d events (%d through the sink, %d directly), rows %v", res.N, res.SinkEvents, res.DirectEvents, res.Rows)
	}
	if res.Lost != 0 || res.Duplicates != 0 || res.DirectMismatch != 0 || !res.AnswersEqual {
		t.Errorf("lost %d, duplicates %d, direct mismatch %d, answers equal %v", res.Lost, res.Duplicates, res.DirectMismatch, res.AnswersEqual)
	}
	if res.OursPerS <= 0 || res.BaselinePerS <= 0 || res.Ratio <= 0 {
		t.Errorf("rates: sink %v, direct %v, ratio %v", res.OursPerS, res.BaselinePerS, res.Ratio)
	}
	if len(res.Answers) < 10 {
		t.Errorf("%d answers compared", len(res.Answers))
	}
	for _, a := range res.Answers {
		if !a.Equal || a.Rows == 0 || a.Rollup.P50ms <= 0 || a.Raw.P50ms <= 0 {
			t.Errorf("answer %+v", a)
		}
	}
	pages := map[string]bool{}
	for _, p := range res.Pages {
		if p.Errors != 0 || p.Bytes == 0 || p.P50ms <= 0 {
			t.Errorf("page %+v", p)
		}
		pages[strings.SplitN(p.Page, "?", 2)[0]+" "+p.Format] = true
	}
	for _, path := range []string{"/", "/probes", "/deliveries", "/blocklists", "/complaints", "/alerts", "/trace", "/report"} {
		for _, format := range []string{"html", "json"} {
			if !pages[path+" "+format] {
				t.Errorf("page %s was not fetched as %s", path, format)
			}
		}
	}
	if len(res.Panels) == 0 {
		t.Error("no Grafana panel query was run")
	}
	for _, p := range res.Panels {
		if p.Errors != 0 || p.P50ms <= 0 {
			t.Errorf("panel %+v", p)
		}
	}
	if res.KeptDir != "" {
		t.Errorf("temp dir kept without -keep: %s", res.KeptDir)
	}
}
