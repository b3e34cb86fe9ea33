package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSuppressionFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseSuppressionFlags(nil, &stderr)
	if err != nil || o.n != 10_000_000 || o.conns != 20 || o.rate != 2000 {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-n", "10"}, {"-conns", "0"}, {"-rate", "5"}, {"-hit", "2"}, {"-duration", "1s"}, {"extra"}} {
		if _, err := parseSuppressionFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// A small run end to end: every answer checked against the entries the
// harness stored (which also checks that it derives keys as the
// suppressor does), the figures present. The targets are not checked: at
// a few thousand entries the memory per entry is mostly noise.
func TestSuppressionScenarioEndToEnd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run(t.Context(), []string{"suppression", "-n", "3000", "-duration", "5s", "-settle", "0s", "-rate", "400", "-conns", "4", "-timeout", "4m"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	var res suppressionResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, stdout.String())
	}
	if res.Error != "" || res.WrongAnswers != 0 {
		t.Fatalf("result %+v\n%s", res, stderr.String())
	}
	if res.Rejected == 0 || res.Requests < 1000 || res.OursP99us <= 0 || res.BaseP99us <= 0 || res.ColdStartS <= 0 ||
		res.WarmEnforcingS <= 0 || res.SnapshotBytes != 32+12*3000 || res.RSSWarmMB <= 0 {
		t.Errorf("result %+v", res)
	}
}
