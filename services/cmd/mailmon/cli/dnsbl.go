package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/dnssweeper"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

const dnsblUsage = `usage: mailmon dnsbl check IP|DOMAIN [-config FILE] [-format json|table|nagios] [-zones a,b] [-resolver HOST:PORT]
                         [-critical-weight 1] [-warning-weight 0]

Asks every zone of dns_sweeper (or -zones) about one IP address or domain,
through dns_sweeper.resolver, and prints one result per zone as soon as it
is known. Each zone is self-tested first: a zone that fails is "unknown",
never "not_listed". Statuses: listed, not_listed, error (an error code,
timeout, SERVFAIL, a rewritten NXDOMAIN ...), unknown, not_applicable.
-format nagios prints one Nagios/Icinga plugin line with performance data
instead, then a line per listing or unknown zone.

Exit status, in every format, as a Nagios plugin's: 0 OK (listed nowhere,
every zone answered), 1 WARNING (listed only on zones weighing less than
-critical-weight, at least -warning-weight), 2 CRITICAL (listed on a zone
of weight -critical-weight or more; the catalogue's weights: 3 for
Spamhaus, 0 informational), 3 UNKNOWN (a zone could not be asked or failed
its self-test and nothing is listed; usage and config problems too).`

// zoneReport is one line of `mailmon dnsbl check`.
type zoneReport struct {
	Zone      string   `json:"zone"`
	List      string   `json:"list"`
	Weight    float64  `json:"weight"`
	Target    string   `json:"target"`
	Query     string   `json:"query,omitempty"`
	Status    string   `json:"status"`
	Codes     []string `json:"codes,omitempty"`
	Meanings  []string `json:"meanings,omitempty"`
	TXT       string   `json:"txt,omitempty"`
	DelistURL string   `json:"delist_url,omitempty"`
	Cause     string   `json:"cause,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Ms        int64    `json:"ms"`
}

func dnsblCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(errOut, dnsblUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help") {
			return exitOK
		}
		return int(stateUnknown)
	}
	args = args[1:]
	var targetArg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		targetArg, args = args[0], args[1:]
	}
	f := newFlags("dnsbl check", errOut)
	format := f.fs.String("format", "json", "output: json (one object per line), table, or nagios (one plugin line)")
	critWeight := f.fs.Float64("critical-weight", 1, "CRITICAL when listed on a zone of at least this catalogue weight")
	warnWeight := f.fs.Float64("warning-weight", 0, "WARNING when listed on a zone of at least this weight (below: OK, noted)")
	zonesFlag := f.fs.String("zones", "", "comma-separated zones to ask (default: dns_sweeper.zones)")
	resolver := f.fs.String("resolver", "", "DNS server host:port (default: dns_sweeper.resolver)")
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(errOut, dnsblUsage)
			return exitOK
		}
		return int(stateUnknown)
	}
	// Problems before any zone is asked are UNKNOWN; under -format nagios
	// they are also the plugin line, which is all Nagios shows.
	fail := func(err error) int {
		fmt.Fprintf(errOut, "mailmon dnsbl check: %v\n", err)
		if *format == "nagios" {
			return unknown("DNSBL", err).write(out)
		}
		return int(stateUnknown)
	}
	rest := f.fs.Args()
	if targetArg == "" && len(rest) > 0 {
		targetArg, rest = rest[0], rest[1:]
	}
	if targetArg == "" || len(rest) > 0 || (*format != "json" && *format != "table" && *format != "nagios") {
		fmt.Fprintln(errOut, dnsblUsage)
		return fail(errors.New("usage: one IP|DOMAIN, -format json, table or nagios"))
	}
	if *critWeight < *warnWeight {
		return fail(fmt.Errorf("usage: -critical-weight %g is below -warning-weight %g", *critWeight, *warnWeight))
	}
	target, err := dnsbl.ParseTarget(targetArg)
	if err != nil {
		return fail(err)
	}
	cfg, err := app.Load(f.config)
	if err != nil {
		return fail(fmt.Errorf("config %s:\n%v", f.config, err))
	}
	sc := cfg.DNSSweeper
	if *resolver != "" {
		sc.Resolver = *resolver
	}
	if *zonesFlag != "" {
		sc.Zones = strings.Split(*zonesFlag, ",")
	}
	if err := sc.Validate(); err != nil {
		return fail(fmt.Errorf("dns_sweeper: %v", err))
	}
	zones, warnings, err := dnsbl.Default().With(sc.CustomZones).Select(sc.Zones)
	if err != nil {
		return fail(err)
	}
	for _, w := range warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	client := dnssweeper.NewClient(sc.Resolver, dnssweeper.ClientOptions{Timeout: sc.Timeout.Std(), Retries: sc.Retries, TCPFallback: sc.TCPFallback, MaxIdle: 2 * len(zones)})
	defer client.Close()
	checker, err := dnssweeper.NewChecker(client, zones, sc.DQSKey.Reveal(), sc.ZoneRate, sc.FetchTXT)
	if err != nil {
		return fail(err)
	}
	emit := reportPrinter(out, *format)
	var mu sync.Mutex
	counts := map[string]int{}
	var reports []zoneReport
	var wg sync.WaitGroup
	for i, b := range checker.Zones() {
		wg.Go(func() {
			rep := checkZone(ctx, checker, i, b, target)
			mu.Lock()
			defer mu.Unlock()
			counts[rep.Status]++
			reports = append(reports, rep)
			emit(rep)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fail(errors.New("interrupted"))
	}
	fmt.Fprintf(errOut, "%s: listed on %d of %d zones (%d not listed, %d error, %d unknown, %d not applicable) via %s\n",
		target, counts["listed"], len(zones), counts["not_listed"], counts["error"], counts["unknown"], counts["not_applicable"], sc.Resolver)
	verdict := dnsblVerdict(target.String(), reports, *warnWeight, *critWeight)
	if *format == "nagios" {
		return verdict.write(out)
	}
	return int(verdict.state)
}

// dnsblVerdict judges one target's zone reports as a Nagios check: a
// listing on a zone of weight >= crit is CRITICAL, on one of weight >= warn
// WARNING; a zone that could not be asked (an error answer, a failed
// self-test) is UNKNOWN unless something is listed, because "not listed
// anywhere we could ask" is not "not listed".
func dnsblVerdict(target string, reports []zoneReport, warn, crit float64) pluginResult {
	// Heaviest listings first, then by zone name: the message names them.
	slices.SortFunc(reports, func(a, b zoneReport) int {
		if a.Weight != b.Weight {
			return cmpFloat(b.Weight, a.Weight)
		}
		return strings.Compare(a.Zone, b.Zone)
	})
	r := pluginResult{service: "DNSBL", state: stateOK}
	var listed, unknownZones []string
	asked := 0
	for _, z := range reports {
		switch z.Status {
		case "not_applicable":
			continue
		case "listed":
			listed = append(listed, z.Zone)
			state := stateOK
			switch {
			case z.Weight >= crit:
				state = stateCritical
			case z.Weight >= warn:
				state = stateWarning
			}
			r.state = worse(r.state, state)
			line := fmt.Sprintf("%s: listed on %s (%s, weight %g) %s", state, z.Zone, z.List, z.Weight, strings.Join(z.Codes, ","))
			if z.TXT != "" {
				line += ": " + z.TXT
			}
			if z.DelistURL != "" {
				line += " - delist: " + z.DelistURL
			}
			r.long = append(r.long, line)
		case "error", "unknown":
			unknownZones = append(unknownZones, z.Zone)
			r.long = append(r.long, fmt.Sprintf("UNKNOWN: %s could not be checked (%s): %s", z.Zone, z.Status, z.Detail))
		}
		asked++
	}
	if len(listed) == 0 && len(unknownZones) > 0 {
		r.state = stateUnknown
	}
	switch {
	case len(listed) > 0:
		r.message = fmt.Sprintf("%s listed on %d of %d zones (%s)", target, len(listed), asked, listNames(listed, 5))
	case len(unknownZones) > 0:
		r.message = fmt.Sprintf("%s not listed on %d of %d zones; %d could not be checked (%s)", target, asked-len(unknownZones), asked, len(unknownZones), listNames(unknownZones, 5))
	case asked == 0:
		r.state = stateUnknown
		r.message = fmt.Sprintf("no configured zone lists targets like %s", target)
	default:
		r.message = fmt.Sprintf("%s listed on 0 of %d zones", target, asked)
	}
	if len(unknownZones) > 0 && len(listed) > 0 {
		r.message += fmt.Sprintf("; %d could not be checked", len(unknownZones))
	}
	critThreshold := ""
	if crit > 0 {
		critThreshold = "1"
	}
	r.perf = []perfValue{
		perfInt("listed", len(listed), "", critThreshold, asked),
		perfInt("unknown", len(unknownZones), "", "", asked),
		perfInt("zones", asked, "", "", -1),
	}
	return r
}

// checkZone self-tests one zone and asks it about target, both at once.
func checkZone(ctx context.Context, c *dnssweeper.Checker, zone int, b *dnsbl.Blocklist, target dnsbl.Target) zoneReport {
	started := time.Now()
	rep := zoneReport{Zone: b.Name(), List: b.Zone().ListName(), Weight: b.Zone().Weight, Target: target.String()}
	if !b.Applies(target) {
		rep.Status = "not_applicable"
		switch {
		case b.Zone().Kind == dnsbl.KindDomain:
			rep.Detail = "the zone lists domains"
		case target.Kind == dnsbl.KindIP:
			rep.Detail = "the zone does not list IPv6 addresses"
		default:
			rep.Detail = "the zone lists IP addresses"
		}
		return rep
	}
	var selfTest *dnsbl.Result
	done := make(chan struct{})
	go func() { selfTest, _ = c.SelfTest(ctx, zone); close(done) }()
	ch := c.CheckTarget(ctx, zone, target)
	<-done
	rep.Ms = time.Since(started).Milliseconds()
	rep.Query = ch.QueryName
	if selfTest != nil {
		rep.Status, rep.Cause, rep.Detail = "unknown", string(selfTest.Cause), selfTest.Detail
		return rep
	}
	r := ch.Result
	rep.Status, rep.Codes, rep.Meanings = string(r.Status), r.Codes, r.Meanings
	switch r.Status {
	case dnsbl.Listed:
		rep.TXT, rep.DelistURL = ch.TXT, b.DelistURL(target)
	case dnsbl.Error:
		rep.Cause, rep.Detail = string(r.Cause), r.Detail
	}
	return rep
}

// reportPrinter writes one report per call, as a JSON line or a table row
// (the header comes with the first row); nothing for -format nagios.
func reportPrinter(out io.Writer, format string) func(zoneReport) {
	if format == "nagios" {
		return func(zoneReport) {} // one plugin line at the end instead
	}
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return func(r zoneReport) { enc.Encode(r) }
	}
	header := false
	return func(r zoneReport) {
		if !header {
			fmt.Fprintf(out, "%-26s %-14s %6s %6s  %s\n", "ZONE", "STATUS", "WEIGHT", "MS", "DETAIL")
			header = true
		}
		var detail string
		switch r.Status {
		case "listed":
			parts := make([]string, len(r.Codes))
			for i, c := range r.Codes {
				parts[i] = c + " " + r.Meanings[i]
			}
			detail = strings.Join(parts, "; ")
			if r.TXT != "" {
				detail += " | " + r.TXT
			}
			if r.DelistURL != "" {
				detail += " | delist: " + r.DelistURL
			}
		default:
			detail = r.Detail
		}
		fmt.Fprintf(out, "%-26s %-14s %6g %6d  %s\n", r.Zone, r.Status, r.Weight, r.Ms, detail)
	}
}
