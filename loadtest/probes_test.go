package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

func TestParseProbesFlags(t *testing.T) {
	o, err := parseProbesFlags(nil, &bytes.Buffer{})
	if err != nil || o.n != 300 || o.accounts != 4 || o.junkEvery != 4 || o.timeout != 5*time.Minute {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-n", "0"}, {"-accounts", "0"}, {"-junk-every", "-1"}, {"-concurrency", "0"}, {"-timeout", "0s"}, {"-deadline", "0s"}, {"extra"}} {
		if _, err := parseProbesFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The scoring itself: a probe found in the wrong folder is misplaced, an
// accepted probe with no outcome is lost, a doubled event is counted, and
// any of them fails the run.
func TestProbesScoreCountsLostMisplacedAndDoubled(t *testing.T) {
	r := &probesRun{opts: probesOptions{n: 4, accounts: 2, junkEvery: 4}, log: &bytes.Buffer{}}
	r.res = probesResult{Probes: 4}
	r.plan()
	if got := r.targets[3]; got.placement != schemas.PlacementSpam || got.folder != "Junk" || got.account != "seed2" {
		t.Fatalf("target 3 expects %+v, want seed2's Junk", got)
	}
	t0 := time.Now()
	o := &probeOutcomes{sent: map[string]*schemas.ProbeSent{}, received: map[string]*schemas.ProbeReceived{},
		late: map[string]*schemas.ProbeLate{}, missing: map[string]*schemas.ProbeMissing{}}
	for i := range 4 {
		id := probeTarget(i) + "-id"
		s := &schemas.ProbeSent{Outcome: schemas.OutcomeAccepted, MessageID: id + "@example.test", TotalMs: 10}
		s.ProbeID, s.Target, s.Time = id, probeTarget(i), t0.Add(time.Duration(i)*10*time.Millisecond)
		o.sent[id] = s
		if i == 2 {
			continue // never received: lost
		}
		want := r.targets[i]
		rec := &schemas.ProbeReceived{SentAt: s.Time, DetectionMs: 700}
		rec.ProbeID, rec.MessageID, rec.Time = id, s.MessageID, s.Time.Add(300*time.Millisecond)
		rec.Account, rec.Placement, rec.Folder = want.account, want.placement, want.folder
		if i == 3 {
			rec.Placement, rec.Folder = schemas.PlacementInbox, "INBOX" // sieve did not file it
		}
		o.received[id] = rec
	}
	if o.settled(4) {
		t.Error("settled with an accepted probe that has no outcome")
	}
	o.doubled = 1
	arrivals := map[string]time.Time{probeTarget(0) + "-id@example.test": t0.Add(200 * time.Millisecond)}
	r.score(o, arrivals)
	res := r.res
	if res.Sent != 4 || res.Accepted != 4 || res.Received != 3 || res.Lost != 1 || res.Misplaced != 1 || res.Duplicates != 1 {
		t.Errorf("sent %d accepted %d received %d lost %d misplaced %d duplicates %d, want 4 4 3 1 1 1",
			res.Sent, res.Accepted, res.Received, res.Lost, res.Misplaced, res.Duplicates)
	}
	if res.DetectP50Ms != 700 || res.DetectExactN != 1 || res.DetectExactP50Ms != 100 || res.DeliverP50Ms != 200 || res.EndToEndP50Ms != 300 {
		t.Errorf("detect %d, exact %d over %d, deliver %d, e2e %d", res.DetectP50Ms, res.DetectExactP50Ms, res.DetectExactN, res.DeliverP50Ms, res.EndToEndP50Ms)
	}
	if res.ok() {
		t.Error("a run with a lost and a misplaced probe is ok")
	}
}

// The scenario end to end with a few probes: real Postfix and Dovecot,
// mailmon built and run, every probe back in the right folder.
func TestProbesScenarioEndToEnd(t *testing.T) {
	if err := needMailPeers(); err != nil {
		unavailable(t, "%v", err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"probes", "-n", "24", "-accounts", "3", "-timeout", "2m", "-deadline", "30s"}, &stdout, &stderr)
	got := lastJSONLine(t, stdout.String())
	line := strings.TrimSpace(stdout.String())
	var res probesResult
	if err := json.Unmarshal([]byte(line[strings.LastIndexByte(line, '\n')+1:]), &res); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !res.ok() {
		t.Fatalf("exit %d: %v\n%s", code, got, stderr.String())
	}
	if res.Sent != 24 || res.Received != 24 || res.InJunk != 6 || res.Lost != 0 || res.Misplaced != 0 {
		t.Errorf("sent %d received %d in junk %d (want 24, 24, 6)", res.Sent, res.Received, res.InJunk)
	}
	if res.OursPerS <= 0 || res.BaselinePerS <= 0 || res.Ratio <= 0 || res.DetectP50Ms <= 0 || res.DetectExactN == 0 {
		t.Errorf("figures missing: %+v", res)
	}
	t.Logf("%s", line[strings.LastIndexByte(line, '\n')+1:])
}
