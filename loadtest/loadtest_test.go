package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

func TestMixCoversEveryKindWeightedTowardsDeliveries(t *testing.T) {
	kinds := schemas.Kinds()
	m := newMix(kinds)
	for _, n := range []int{len(kinds), 100, 1000, 100_000} {
		counts := m.counts(n)
		total := 0
		delivery := -1
		for i, k := range kinds {
			total += counts[i]
			if counts[i] == 0 {
				t.Errorf("n=%d: no %s event", n, k.Type)
			}
			if k.Type == schemas.TypeDeliveryAttempted {
				delivery = counts[i]
			}
		}
		if total != n {
			t.Errorf("n=%d: counts add up to %d", n, total)
		}
		if n < 1000 {
			continue
		}
		for i, k := range kinds {
			if k.Type != schemas.TypeDeliveryAttempted && counts[i] >= delivery {
				t.Errorf("n=%d: %d %s events, not fewer than the %d deliveries", n, counts[i], k.Type, delivery)
			}
		}
		if share := float64(delivery) / float64(n); share < 0.5 {
			t.Errorf("n=%d: deliveries are %.0f%% of the mix, want the majority", n, 100*share)
		}
	}
}

func testGenerator(t *testing.T, n int) *generator {
	t.Helper()
	g, err := newGenerator(filepath.Join("..", "schemas", "testdata", "events"), n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGeneratedEventsAreValidAndRebuildable(t *testing.T) {
	const n = 200
	g := testGenerator(t, n)
	seen := map[string]bool{}
	var last time.Time
	for i := range n {
		ev, err := g.event(i)
		if err != nil {
			t.Fatal(err)
		}
		h := ev.EventHeader()
		if err := schemas.Validate(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if seen[h.ID] {
			t.Fatalf("event %d: id %s repeats", i, h.ID)
		}
		seen[h.ID] = true
		if h.Source.Worker != "loadtest" {
			t.Errorf("event %d: source worker %q", i, h.Source.Worker)
		}
		if !h.Time.After(last) {
			t.Errorf("event %d: time %s not after the previous %s", i, h.Time, last)
		}
		last = h.Time

		k, _ := schemas.KindOf(ev)
		row := schemas.Row(ev)
		if len(row) != len(schemas.Columns(k)) {
			t.Fatalf("%s: row has %d values for %d columns", k.Type, len(row), len(schemas.Columns(k)))
		}
		// The baseline rebuilds each event from its id; it must insert the
		// very row that was published.
		again, err := g.eventWithID(i, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(schemas.Row(again), row) {
			t.Errorf("event %d (%s): rebuilt row differs from the published one", i, k.Type)
		}

		// What is published decodes back to the same event.
		data, err := encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := schemas.Decode(data)
		if err != nil {
			t.Fatalf("event %d: published body does not decode: %v", i, err)
		}
		if !reflect.DeepEqual(schemas.Row(decoded), row) {
			t.Errorf("event %d (%s): decoded body differs from the event", i, k.Type)
		}
	}
}

func TestParseSinkFlags(t *testing.T) {
	kinds := len(schemas.Kinds())
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    sinkOptions
	}{
		{name: "defaults", args: nil, want: sinkOptions{n: 1_000_000, timeout: 10 * time.Minute, workers: sinkWorker, maxPending: 16384, mode: modeBacklog}},
		{name: "all set", args: []string{"-n", "5000", "-timeout", "2m", "-keep", "-max-pending", "100"},
			want: sinkOptions{n: 5000, timeout: 2 * time.Minute, keep: true, workers: sinkWorker, maxPending: 100, mode: modeBacklog}},
		{name: "fewer events than kinds", args: []string{"-n", "3"}, wantErr: fmt.Sprintf("-n must be at least %d", kinds)},
		{name: "every problem at once", args: []string{"-n", "0", "-timeout", "-1s", "-max-pending", "0"},
			wantErr: fmt.Sprintf("-n must be at least %d (one event per kind), got 0; -timeout must be positive, got -1s; -max-pending must be at least 1, got 0", kinds)},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments: extra"},
		{name: "unknown flag", args: []string{"-rate", "5"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSinkFlags(tt.args, &bytes.Buffer{})
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

func TestRunRejectsUnknownScenario(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"flood"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown scenario "flood"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
	if code := run(context.Background(), nil, &stdout, &stderr); code != 2 {
		t.Errorf("no scenario: exit status %d, want 2", code)
	}
}

// requiredKeys are the keys every scenario's last line must carry.
var requiredKeys = []string{"scenario", "n", "ours_per_s", "baseline_per_s", "ratio", "lost", "duplicates", "elapsed_s"}

// lastJSONLine decodes the last line of a scenario's stdout and checks the
// required keys.
func lastJSONLine(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last stdout line is not one JSON object: %v\n%s", err, stdout)
	}
	for _, key := range requiredKeys {
		if _, ok := got[key]; !ok {
			t.Errorf("last line lacks %q: %s", key, lines[len(lines)-1])
		}
	}
	return got
}

// A child that cannot start fails the run with its own words, and the run
// still ends with the JSON line.
func TestSinkReportsChildFailure(t *testing.T) {
	var stdout, stderr bytes.Buffer
	n := len(schemas.Kinds())
	code := run(t.Context(), []string{"sink", "-n", strconv.Itoa(n), "-timeout", "60s", "-workers", "no-such-worker"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	got := lastJSONLine(t, stdout.String())
	if got["scenario"] != "sink" || got["n"] != float64(n) || got["lost"] != float64(n) || got["verified"] != false {
		t.Errorf("result = %v", got)
	}
	if msg, _ := got["error"].(string); !strings.Contains(msg, "mailmon exited before it was ready") || !strings.Contains(msg, "no-such-worker") {
		t.Errorf("error %q does not quote the child's complaint", msg)
	}
}

// insertRows writes events straight into the sink's tables, standing in for
// the sink so the checker can be tested on known contents.
func insertRows(t *testing.T, s *sinkRun, events ...schemas.Event) {
	t.Helper()
	for _, ev := range events {
		k, err := schemas.KindOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.conn.PrepareBatch(t.Context(), schemas.InsertQuery(k))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(schemas.Row(ev)...); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

// The checker finds a missing event, a doubled one, an exact copy that
// ReplacingMergeTree merges away, and a row nobody published; the baseline
// copies the tables and inserts every row once.
func TestVerifyAndBaselineOnRealClickHouse(t *testing.T) {
	const n = 40
	var log bytes.Buffer
	s := &sinkRun{opts: sinkOptions{n: n, workers: sinkWorker, maxPending: 100, mode: modeBacklog}, res: &sinkResult{}, log: &log}
	root, err := s.prepare()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stop, err := s.start(ctx, root, t.TempDir())
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}

	const (
		missing      = 3
		doubled      = 5 // a second row with another time: a different sorting key
		exactCopy    = 7 // the same row twice: merged by OPTIMIZE ... FINAL
		notPublished = n // an event outside the run
	)
	s.ids = make([]string, n)
	s.published.Store(n)
	for i := range n + 1 {
		ev, err := s.gen.event(i)
		if err != nil {
			t.Fatal(err)
		}
		if i < n {
			s.ids[i] = ev.EventHeader().ID
		}
		if i == missing {
			continue
		}
		insertRows(t, s, ev)
		switch i {
		case exactCopy:
			insertRows(t, s, ev)
		case doubled:
			again, err := s.gen.eventWithID(i, ev.EventHeader().ID)
			if err != nil {
				t.Fatal(err)
			}
			again.EventHeader().Time = again.EventHeader().Time.Add(-time.Hour)
			insertRows(t, s, again)
		}
	}

	if err := s.measureBaseline(ctx); err != nil {
		t.Fatal(err)
	}
	if s.res.BaselinePerS <= 0 || s.res.BaselineS <= 0 {
		t.Errorf("baseline figures %v rows/s in %v s", s.res.BaselinePerS, s.res.BaselineS)
	}
	if err := s.verify(ctx); err != nil {
		t.Fatal(err)
	}
	got := *s.res
	want := sinkResult{Lost: 1, Duplicates: 1, RawDuplicateRows: 2, UnexpectedRows: 1, Verified: true}
	if got.Lost != want.Lost || got.Duplicates != want.Duplicates || got.RawDuplicateRows != want.RawDuplicateRows ||
		got.UnexpectedRows != want.UnexpectedRows || got.Verified != want.Verified || got.DeadLetters != 0 {
		t.Errorf("verify = lost %d, duplicates %d, raw duplicate rows %d, unexpected %d, verified %v, dead letters %d; want lost 1, duplicates 1, raw 2, unexpected 1, verified, no dead letters",
			got.Lost, got.Duplicates, got.RawDuplicateRows, got.UnexpectedRows, got.Verified, got.DeadLetters)
	}
	if got.ok() {
		t.Error("a result with losses and duplicates counts as ok")
	}
}

// The whole scenario on a small run: every event lands once, and the last
// line carries the figures.
func TestSinkScenarioEndToEnd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"sink", "-n", "3000", "-timeout", "90s"}, &stdout, &stderr)
	got := lastJSONLine(t, stdout.String())
	if code != 0 {
		t.Fatalf("exit status %d\nresult: %v\nprogress:\n%s", code, got, stderr.String())
	}
	if got["lost"] != 0.0 || got["duplicates"] != 0.0 || got["unexpected_rows"] != 0.0 || got["verified"] != true || got["timed_out"] != false {
		t.Errorf("result = %v", got)
	}
	for _, key := range []string{"ours_per_s", "baseline_per_s", "ratio", "elapsed_s", "ack_only_per_s"} {
		if v, _ := got[key].(float64); v <= 0 {
			t.Errorf("%s = %v, want a positive figure", key, got[key])
		}
	}
	if c, _ := got["ceiling_ratio"].(float64); c <= 0 || c >= 1 {
		t.Errorf("ceiling_ratio = %v, want a figure between 0 and 1", got["ceiling_ratio"])
	}
	if runtime.GOOS == "linux" {
		for _, key := range []string{"ingest_cpu_s", "baseline_cpu_s", "ack_only_cpu_s"} {
			cpu, _ := got[key].(map[string]any)
			if len(cpu) < 3 {
				t.Errorf("%s = %v, want the CPU time of the harness, mailmon and clickhouse-server", key, got[key])
			}
		}
	}
	if _, kept := got["kept_dir"]; kept {
		t.Errorf("temp dir kept without -keep: %v", got["kept_dir"])
	}
}
