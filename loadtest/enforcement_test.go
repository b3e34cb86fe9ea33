package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseEnforcementFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseEnforcementFlags(nil, &stderr)
	if err != nil || o.customers != 300 || o.bad != 30 || o.deliveries != 1000 {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-bad", "0"}, {"-bad", "300"}, {"-deliveries", "10"}, {"-ttl", "10ms"}, {"extra"}} {
		if _, err := parseEnforcementFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestEnforcementScenarioEndToEnd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"enforcement", "-customers", "40", "-bad", "5", "-deliveries", "500", "-ttl", "2s", "-timeout", "3m"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, stdout.String())
	}
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, res, stderr.String())
	}
	for _, k := range []string{"enforce_p99_ms", "wrongly_blocked", "released"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %s: %v", k, res)
		}
	}
	if res["wrongly_blocked"].(float64) != 0 || res["released"] != true || res["enforced"].(float64) != 5 {
		t.Errorf("result %v", res)
	}
	if !strings.Contains(stderr.String(), "enforced 5/5") {
		t.Errorf("progress:\n%s", stderr.String())
	}
}
