package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/dnssweeper"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

const dnsblUsage = `usage: mailmon dnsbl check IP|DOMAIN [-config FILE] [-format json|table] [-zones a,b] [-resolver HOST:PORT]

Asks every zone of dns_sweeper (or -zones) about one IP address or domain,
through dns_sweeper.resolver, and prints one result per zone as soon as it
is known. Each zone is self-tested first: a zone that fails is "unknown",
never "not_listed". Statuses: listed, not_listed, error (an error code,
timeout, SERVFAIL, a rewritten NXDOMAIN ...), unknown, not_applicable.
Exit status 0 when the checks ran, 1 on failure, 2 on usage errors.`

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
		return exitUsage
	}
	args = args[1:]
	var targetArg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		targetArg, args = args[0], args[1:]
	}
	f := newFlags("dnsbl check", errOut)
	format := f.fs.String("format", "json", "output: json (one object per line) or table")
	zonesFlag := f.fs.String("zones", "", "comma-separated zones to ask (default: dns_sweeper.zones)")
	resolver := f.fs.String("resolver", "", "DNS server host:port (default: dns_sweeper.resolver)")
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(errOut, dnsblUsage)
			return exitOK
		}
		return exitUsage
	}
	rest := f.fs.Args()
	if targetArg == "" && len(rest) > 0 {
		targetArg, rest = rest[0], rest[1:]
	}
	if targetArg == "" || len(rest) > 0 || (*format != "json" && *format != "table") {
		fmt.Fprintln(errOut, dnsblUsage)
		return exitUsage
	}
	target, err := dnsbl.ParseTarget(targetArg)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon dnsbl check: %v\n", err)
		return exitUsage
	}
	cfg, err := app.Load(f.config)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon dnsbl check: config %s:\n%v\n", f.config, err)
		return exitUsage
	}
	sc := cfg.DNSSweeper
	if *resolver != "" {
		sc.Resolver = *resolver
	}
	if *zonesFlag != "" {
		sc.Zones = strings.Split(*zonesFlag, ",")
	}
	if err := sc.Validate(); err != nil {
		fmt.Fprintf(errOut, "mailmon dnsbl check: dns_sweeper: %v\n", err)
		return exitUsage
	}
	zones, warnings, err := dnsbl.Default().With(sc.CustomZones).Select(sc.Zones)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon dnsbl check: %v\n", err)
		return exitUsage
	}
	for _, w := range warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	client := dnssweeper.NewClient(sc.Resolver, dnssweeper.ClientOptions{Timeout: sc.Timeout.Std(), Retries: sc.Retries, TCPFallback: sc.TCPFallback, MaxIdle: 2 * len(zones)})
	defer client.Close()
	checker, err := dnssweeper.NewChecker(client, zones, sc.DQSKey.Reveal(), sc.ZoneRate, sc.FetchTXT)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon dnsbl check: %v\n", err)
		return exitUsage
	}
	emit := reportPrinter(out, *format)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i, b := range checker.Zones() {
		wg.Go(func() {
			rep := checkZone(ctx, checker, i, b, target)
			mu.Lock()
			defer mu.Unlock()
			counts[rep.Status]++
			emit(rep)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(errOut, "mailmon dnsbl check: interrupted")
		return exitFailure
	}
	fmt.Fprintf(errOut, "%s: listed on %d of %d zones (%d not listed, %d error, %d unknown, %d not applicable) via %s\n",
		target, counts["listed"], len(zones), counts["not_listed"], counts["error"], counts["unknown"], counts["not_applicable"], sc.Resolver)
	return exitOK
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
// (the header comes with the first row).
func reportPrinter(out io.Writer, format string) func(zoneReport) {
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
