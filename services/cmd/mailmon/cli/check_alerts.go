package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/silence"
)

func checkAlertsCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	const service = "ALERTS"
	// The ALERT stream's max_age: a long listing fired once, weeks ago,
	// and still fires until its resolved event.
	f := newCheckFlags("alerts", errOut, 720*time.Hour)
	warn := f.fs.Int("warning", 1, "WARNING when at least this many warning or critical alerts fire (0: never)")
	crit := f.fs.Int("critical", 1, "CRITICAL when at least this many critical alerts fire (0: never)")
	rule := f.fs.String("rule", "", "only alerts whose rule starts with this, e.g. probe_ or dnsbl_listed")
	withSilenced := f.fs.Bool("silenced", false, "count silenced alerts too")
	cfg, bad := f.parse(service, args)
	if bad != nil {
		return bad.write(out)
	}
	if *warn < 0 || *crit < 0 {
		return unknown(service, fmt.Errorf("usage: -warning and -critical are counts, 0 or more")).write(out)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	nc, js, err := dialCheck(cfg)
	if err != nil {
		return unknown(service, err).write(out)
	}
	defer nc.Close()
	now := time.Now()
	// The last status of each alert in the window, by its dedupe key: a
	// later "resolved" closes an earlier "firing".
	last := map[string]*schemas.AlertRaised{}
	undecodable, err := readEvents(ctx, js, "ALERT", "mailmon.alert.>", now.Add(-f.window), func(ev schemas.Event) {
		a, ok := ev.(*schemas.AlertRaised)
		if !ok || !strings.HasPrefix(a.Rule, *rule) {
			return
		}
		last[alertKey(a)] = a
	})
	if err != nil {
		return unknown(service, err).write(out)
	}
	var silences *silence.Store
	if !*withSilenced {
		if silences, err = silence.Open(ctx, js); err != nil {
			return unknown(service, err).write(out)
		}
		defer silences.Close()
	}
	return alertsVerdict(last, silences, now, f.window, *warn, *crit, undecodable).write(out)
}

// alertKey identifies one alert across its events: the dedupe key, or rule
// and subject for an alert without one.
func alertKey(a *schemas.AlertRaised) string {
	if a.DedupeKey != "" {
		return a.DedupeKey
	}
	return a.Rule + "\x00" + a.Subject
}

// alertsVerdict counts the firing alerts by severity (silenced ones apart
// when silences is not nil) and judges them against the thresholds.
func alertsVerdict(last map[string]*schemas.AlertRaised, silences *silence.Store, now time.Time, window time.Duration, warn, crit, undecodable int) pluginResult {
	var firing []*schemas.AlertRaised
	silenced := 0
	for _, a := range last {
		if a.Status != schemas.AlertFiring {
			continue
		}
		if silences != nil {
			if _, ok := silences.Silenced(a, now); ok {
				silenced++
				continue
			}
		}
		firing = append(firing, a)
	}
	rank := map[string]int{schemas.AlertCritical: 0, schemas.AlertWarning: 1, schemas.AlertInfo: 2}
	slices.SortFunc(firing, func(a, b *schemas.AlertRaised) int {
		if c := rank[a.Severity] - rank[b.Severity]; c != 0 {
			return c
		}
		return strings.Compare(a.Rule+" "+a.Subject, b.Rule+" "+b.Subject)
	})
	bySeverity := map[string]int{}
	var names []string
	r := pluginResult{service: "ALERTS", state: stateOK}
	for _, a := range firing {
		bySeverity[a.Severity]++
		names = append(names, fmt.Sprintf("%s %s (%s)", a.Rule, a.Subject, a.Severity))
		r.long = append(r.long, fmt.Sprintf("[%s] %s %s since %s: %s", a.Severity, a.Rule, a.Subject, a.Time.UTC().Format(time.RFC3339), a.Summary))
	}
	critical, warning := bySeverity[schemas.AlertCritical], bySeverity[schemas.AlertWarning]
	switch {
	case crit > 0 && critical >= crit:
		r.state = stateCritical
	case warn > 0 && critical+warning >= warn:
		r.state = stateWarning
	}
	if len(firing) == 0 {
		r.message = fmt.Sprintf("no alert firing (last %s)", window)
	} else {
		r.message = fmt.Sprintf("%d firing (%d critical, %d warning, %d info): %s", len(firing), critical, warning, bySeverity[schemas.AlertInfo], listNames(names, 3))
	}
	if silenced > 0 {
		r.message += fmt.Sprintf("; %d silenced", silenced)
	}
	if undecodable > 0 {
		r.long = append(r.long, fmt.Sprintf("%d messages in the ALERT stream could not be decoded and were left out", undecodable))
	}
	threshold := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprint(n)
	}
	r.perf = []perfValue{
		perfInt("firing", len(firing), "", "", -1),
		perfInt("critical", critical, "", threshold(crit), -1),
		perfInt("warning", warning, threshold(warn), "", -1),
		perfInt("info", bySeverity[schemas.AlertInfo], "", "", -1),
		perfInt("silenced", silenced, "", "", -1),
	}
	return r
}
