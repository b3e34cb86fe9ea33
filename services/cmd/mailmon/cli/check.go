package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Nagios/Icinga plugin conventions, followed by `mailmon dnsbl check` and
// `mailmon check probes|alerts`: the exit status is the state, and the
// first line of standard output is
//
//	SERVICE STATE - message | 'label'=value[UOM];[warn];[crit];[min];[max] ...
//
// with more lines of detail (long output) after it. A usage or config
// problem, or a server that cannot be reached, is UNKNOWN: the plugin could
// not tell, which is not the same as OK.
type pluginState int

const (
	stateOK       pluginState = 0
	stateWarning  pluginState = 1
	stateCritical pluginState = 2
	stateUnknown  pluginState = 3
)

func (s pluginState) String() string {
	switch s {
	case stateOK:
		return "OK"
	case stateWarning:
		return "WARNING"
	case stateCritical:
		return "CRITICAL"
	}
	return "UNKNOWN"
}

// worse returns the more severe of two states. UNKNOWN ranks between
// WARNING and CRITICAL here, as the plugin guidelines' service states do
// not; a caller that wants "unknown unless something is wrong" decides
// that itself.
func worse(a, b pluginState) pluginState {
	rank := func(s pluginState) int {
		switch s {
		case stateWarning:
			return 1
		case stateUnknown:
			return 2
		case stateCritical:
			return 3
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// perfValue is one performance-data item. Empty thresholds and bounds are
// left empty, as the format allows.
type perfValue struct {
	label          string
	value          float64
	uom            string
	warn, crit     string
	min, max       string
	integerDisplay bool
}

func perfInt(label string, v int, warn, crit string, max int) perfValue {
	p := perfValue{label: label, value: float64(v), warn: warn, crit: crit, min: "0", integerDisplay: true}
	if max >= 0 {
		p.max = strconv.Itoa(max)
	}
	return p
}

func (p perfValue) String() string {
	v := strconv.FormatFloat(p.value, 'f', -1, 64)
	if p.integerDisplay {
		v = strconv.FormatInt(int64(p.value), 10)
	}
	label := p.label
	if strings.ContainsAny(label, " ='") {
		label = "'" + strings.ReplaceAll(label, "'", "") + "'"
	}
	return fmt.Sprintf("%s=%s%s;%s;%s;%s;%s", label, v, p.uom, p.warn, p.crit, p.min, p.max)
}

// pluginResult is what a check prints.
type pluginResult struct {
	service string
	state   pluginState
	message string
	long    []string
	perf    []perfValue
}

// write prints the result and returns the exit status.
func (r pluginResult) write(out io.Writer) int {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s - %s", r.service, r.state, pluginText(r.message))
	if len(r.perf) > 0 {
		b.WriteString(" |")
		for _, p := range r.perf {
			b.WriteString(" " + p.String())
		}
	}
	b.WriteByte('\n')
	for _, l := range r.long {
		b.WriteString(pluginText(l) + "\n")
	}
	io.WriteString(out, b.String())
	return int(r.state)
}

// unknown is the result of a check that could not run.
func unknown(service string, err error) pluginResult {
	return pluginResult{service: service, state: stateUnknown, message: err.Error()}
}

// pluginText makes text safe for one line of plugin output: "|" starts
// performance data, so it becomes "/", and control characters (a newline
// would start the long output) become spaces. Text that came from outside
// (a blocklist's TXT, a provider's reply) goes through here.
func pluginText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '|':
			return '/'
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}

// listNames joins up to max names and says how many more there are.
func listNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + fmt.Sprintf(", and %d more", len(names)-max)
}

const checkUsage = `usage: mailmon check probes [-window 1h] [-warning 20] [-critical 50] [-config FILE]
       mailmon check alerts [-window 720h] [-warning 1] [-critical 1] [-rule PREFIX] [-silenced] [-config FILE]

Nagios/Icinga plugins: one status line with performance data, then details;
exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for usage and config
problems and for a NATS that cannot be reached). They read the PROBE and
ALERT streams of a running mailmon (nats.url, or the embedded server's
nats.embedded.listen) as the read-only check-cli user.

probes   the probe results of the last -window, per route × provider: the
         share of probes that failed (refused or failed at our own relay,
         or missing at the provider) in the worst pair; -warning and
         -critical are percentages. No probe sent at all is CRITICAL.
alerts   the alerts firing now (the last status per alert over -window,
         by default all the ALERT stream keeps: an alert stays firing until
         its resolved event, however long ago it fired): CRITICAL when at
         least -critical critical ones fire, WARNING when at least -warning
         warning-or-critical ones do. Silenced alerts are left out unless
         -silenced.`

func checkCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(errOut, checkUsage)
		if len(args) == 0 {
			return int(stateUnknown)
		}
		return exitOK
	}
	switch args[0] {
	case "probes":
		return checkProbesCmd(ctx, args[1:], out, errOut)
	case "alerts":
		return checkAlertsCmd(ctx, args[1:], out, errOut)
	}
	fmt.Fprintf(errOut, "mailmon check: unknown check %q\n%s\n", args[0], checkUsage)
	return unknown("CHECK", fmt.Errorf("unknown check %q (probes or alerts)", args[0])).write(out)
}
