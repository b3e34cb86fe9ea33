package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRestartFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseRestartFlags(nil, &stderr)
	if err != nil || o.days != 7 || o.perDay != 100_000 || o.settle != restartSettle {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-days", "8"}, {"-days", "0"}, {"-per-day", "10"}, {"-complaint-rate", "0.002"}, {"-customers", "0"}, {"-settle", "-1s"}, {"extra"}} {
		if _, err := parseRestartFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestProject(t *testing.T) {
	for _, c := range []struct {
		x1     int
		y1     float64
		x2     int
		y2     float64
		x      int
		want   float64
		reason string
	}{
		{100, 10, 200, 20, 1000, 100, "through the origin"},
		{100, 11, 200, 21, 1000, 101, "with an intercept"},
		{100, 20, 200, 10, 1000, 10, "a time that fell between two volumes stays at the larger volume's"},
		{100, 5, 100, 7, 1000, 7, "one volume"},
	} {
		if got := project(c.x1, c.y1, c.x2, c.y2, c.x); got != c.want {
			t.Errorf("%s: project = %v, want %v", c.reason, got, c.want)
		}
	}
}

// The whole scenario at a small volume: both starts judge, the one with
// checkpoints used one, and the result carries the projection. (At this
// volume a few ms of noise, extrapolated 2500 times, decide the target: the
// exit status is only held to agree with it.)
func TestEvaluatorRestartScenarioEndToEnd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"evaluator-restart", "-per-day", "4000", "-customers", "20", "-settle", "1s", "-timeout", "5m"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	var res restartResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, stdout.String())
	}
	if res.Error != "" {
		t.Fatalf("exit %d: %+v\n%s", code, res, stderr.String())
	}
	if (code == 0) != res.ProjectedOK {
		t.Errorf("exit %d with projected_ok %v", code, res.ProjectedOK)
	}
	if len(res.Levels) != 2 || res.Levels[1].Deliveries < 7*4000 || res.Levels[0].CheckpointBytes == 0 {
		t.Errorf("levels %+v", res.Levels)
	}
	for _, lv := range res.Levels {
		if lv.RebuildS <= 0 || lv.CheckpointS <= 0 || lv.Ratio <= 0 {
			t.Errorf("level %+v: a start not timed", lv)
		}
	}
	if res.CheckAt <= 0 || res.RebuildAt <= 0 || res.RebuildCPU <= 0 || res.CheckCPU <= 0 {
		t.Errorf("projection %+v", res)
	}
	if !strings.Contains(stderr.String(), "from the checkpoint") {
		t.Errorf("progress:\n%s", stderr.String())
	}
}
