package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// probePair counts the probe results of one route × provider.
type probePair struct {
	route, provider string
	sent            int // probe.sent events, whatever their outcome
	relayFailed     int // sent events whose outcome was not "accepted"
	received, spam  int
	missing, late   int
}

func (p *probePair) name() string { return p.route + "/" + p.provider }

// concluded is how many probes have an outcome: refused or failed at our
// relay, found, or declared missing. Late arrivals were declared missing
// first, so they are not counted twice.
func (p *probePair) concluded() int { return p.relayFailed + p.received + p.missing }

func (p *probePair) failed() int { return p.relayFailed + p.missing }

// failedPercent is the share of concluded probes that failed.
func (p *probePair) failedPercent() float64 {
	if p.concluded() == 0 {
		return 0
	}
	return 100 * float64(p.failed()) / float64(p.concluded())
}

func checkProbesCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	const service = "PROBES"
	f := newCheckFlags("probes", errOut, time.Hour)
	warn := f.fs.Float64("warning", 20, "WARNING when a route × provider has at least this percentage of its probes failed")
	crit := f.fs.Float64("critical", 50, "CRITICAL when a route × provider has at least this percentage of its probes failed")
	cfg, bad := f.parse(service, args)
	if bad != nil {
		return bad.write(out)
	}
	if *warn < 0 || *crit < 0 || *warn > 100 || *crit > 100 {
		return unknown(service, fmt.Errorf("usage: -warning and -critical are percentages (0-100)")).write(out)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	nc, js, err := dialCheck(cfg)
	if err != nil {
		return unknown(service, err).write(out)
	}
	defer nc.Close()
	now := time.Now()
	pairs := map[string]*probePair{}
	pair := func(r schemas.ProbeRoute) *probePair {
		key := r.Route + "\x00" + r.Provider
		p := pairs[key]
		if p == nil {
			p = &probePair{route: r.Route, provider: r.Provider}
			pairs[key] = p
		}
		return p
	}
	undecodable, err := readEvents(ctx, js, "PROBE", "mailmon.probe.>", now.Add(-f.window), func(ev schemas.Event) {
		switch e := ev.(type) {
		case *schemas.ProbeSent:
			p := pair(e.ProbeRoute)
			p.sent++
			if e.Outcome != schemas.OutcomeAccepted {
				p.relayFailed++
			}
		case *schemas.ProbeReceived:
			p := pair(e.ProbeRoute)
			p.received++
			if e.Placement == schemas.PlacementSpam {
				p.spam++
			}
		case *schemas.ProbeMissing:
			pair(e.ProbeRoute).missing++
		case *schemas.ProbeLate:
			pair(e.ProbeRoute).late++
		}
	})
	if err != nil {
		return unknown(service, err).write(out)
	}
	return probesVerdict(pairs, f.window, *warn, *crit, undecodable).write(out)
}

// probesVerdict judges the pairs: the worst pair's failed share against
// the thresholds; no probe sent at all in the window is CRITICAL (the
// probe-sender is not running, or every route is down before submission).
func probesVerdict(byKey map[string]*probePair, window time.Duration, warn, crit float64, undecodable int) pluginResult {
	pairs := make([]*probePair, 0, len(byKey))
	for _, p := range byKey {
		pairs = append(pairs, p)
	}
	// Worst first, then by name, so the message names the worst pairs.
	slices.SortFunc(pairs, func(a, b *probePair) int {
		if c := cmpFloat(b.failedPercent(), a.failedPercent()); c != 0 {
			return c
		}
		return strings.Compare(a.name(), b.name())
	})
	var total probePair
	worst := 0.0
	var failing []string
	r := pluginResult{service: "PROBES", state: stateOK}
	for _, p := range pairs {
		total.sent += p.sent
		total.relayFailed += p.relayFailed
		total.received += p.received
		total.spam += p.spam
		total.missing += p.missing
		total.late += p.late
		pct := p.failedPercent()
		worst = max(worst, pct)
		state := stateOK
		switch {
		case p.concluded() > 0 && pct >= crit:
			state = stateCritical
		case p.concluded() > 0 && pct >= warn:
			state = stateWarning
		}
		r.state = worse(r.state, state)
		if state != stateOK {
			failing = append(failing, fmt.Sprintf("%s %d of %d failed (%s)", p.name(), p.failed(), p.concluded(), failureKinds(p)))
		}
		r.long = append(r.long, fmt.Sprintf("%s %s: sent %d, relay failed %d, received %d (spam %d), missing %d, late %d, failed %.0f%%",
			state, p.name(), p.sent, p.relayFailed, p.received, p.spam, p.missing, p.late, pct))
	}
	switch {
	case total.sent == 0:
		r.state = stateCritical
		r.message = fmt.Sprintf("no probe sent in the last %s: is the probe-sender running?", window)
	case len(failing) > 0:
		r.message = fmt.Sprintf("%d of %d route/provider pairs failing in the last %s: %s", len(failing), len(pairs), window, listNames(failing, 3))
	default:
		r.message = fmt.Sprintf("%d route/provider pairs, %d probes sent, %d received (%d in spam), %d missing, %d failed at the relay in the last %s",
			len(pairs), total.sent, total.received, total.spam, total.missing, total.relayFailed, window)
	}
	if undecodable > 0 {
		r.long = append(r.long, fmt.Sprintf("%d messages in the PROBE stream could not be decoded and were left out", undecodable))
	}
	pct := func(v float64) string { return fmt.Sprintf("%g", v) }
	r.perf = []perfValue{
		perfInt("sent", total.sent, "", "", -1),
		perfInt("received", total.received, "", "", -1),
		perfInt("spam", total.spam, "", "", -1),
		perfInt("missing", total.missing, "", "", -1),
		perfInt("late", total.late, "", "", -1),
		perfInt("relay_failed", total.relayFailed, "", "", -1),
		perfInt("failing_pairs", len(failing), "", "", len(pairs)),
		{label: "worst_failed", value: float64(int(worst*10+0.5)) / 10, uom: "%", warn: pct(warn), crit: pct(crit), min: "0", max: "100"},
	}
	return r
}

func failureKinds(p *probePair) string {
	var parts []string
	if p.missing > 0 {
		parts = append(parts, fmt.Sprintf("%d missing", p.missing))
	}
	if p.relayFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed at our relay", p.relayFailed))
	}
	return strings.Join(parts, ", ")
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
