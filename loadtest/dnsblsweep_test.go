package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/peers"
)

func TestParseDNSBLFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseDNSBLFlags(nil, &stderr)
	if err != nil || o.prefix != "10.20.0.0/16" || o.zones != 2 || o.rounds != 5 || o.concurrency != 32 {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-prefix", "10.0.0.0/8"}, {"-prefix", "2001:db8::/112"}, {"-prefix", "x"}, {"-zones", "0"},
		{"-listed", "0"}, {"-listed", "0.4", "-errors", "0.2"}, {"-rounds", "0"}, {"-concurrency", "0"}, {"extra"}} {
		if _, err := parseDNSBLFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The answer key holds what the zone files say: listings (single entries
// and a /28 range) and error-code entries, disjoint, on every zone.
func TestDNSBLAnswerKey(t *testing.T) {
	r := &dnsblRun{opts: dnsblOptions{prefix: "10.9.8.0/22", zones: 2, domains: 300, listedFrac: 0.05, errorFrac: 0.01, seed: 7}, res: &dnsblResult{}}
	files := r.generate()
	if len(r.ips) != 1024 || r.res.Pairs != 2*1024+300 || len(r.names) != r.res.Pairs {
		t.Fatalf("ips %d pairs %d names %d", len(r.ips), r.res.Pairs, len(r.names))
	}
	for p := range r.errs {
		if r.listed[p] {
			t.Errorf("%v both listed and an error", p)
		}
	}
	for _, z := range []string{"bl0.test", "bl1.test"} {
		f := files[z+".zone"]
		if !strings.Contains(f, "127.0.0.2\n") || !strings.Contains(f, "/28 :127.0.0.3:") || !strings.Contains(f, ":127.255.255.254:") {
			t.Errorf("%s lacks the test entry, the range or an error code:\n%.300s", z, f)
		}
	}
	if !strings.HasPrefix(files["dbl.test.zone"], ":127.0.1.2:") || !strings.Contains(files["dbl.test.zone"], "\ntest\n") {
		t.Errorf("domain zone:\n%.200s", files["dbl.test.zone"])
	}
	n := 0
	for p := range r.listed {
		if p.zone == "bl0.test" {
			n++
		}
	}
	if n != 51+16 {
		t.Errorf("%d listings on bl0.test, want 51 single + 16 in the /28", n)
	}
}

func TestDNSBLSweepEndToEnd(t *testing.T) {
	if _, err := os.Stat(peers.RbldnsdBin); err != nil {
		unavailable(t, "rbldnsd: %v", err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"dnsbl-sweep", "-prefix", "10.20.0.0/22", "-domains", "200", "-rounds", "2", "-listed", "0.05", "-timeout", "3m"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	var res dnsblResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, stdout.String())
	}
	if code != 0 || !res.correct() {
		t.Fatalf("exit %d: %+v\n%s", code, res, stderr.String())
	}
	if res.ExpectedListed == 0 || res.ExpectedErrors == 0 || len(res.OursRuns) != 2 || len(res.BaselineRuns) != 3 || res.Ratio <= 0 {
		t.Errorf("result %+v", res)
	}
}
