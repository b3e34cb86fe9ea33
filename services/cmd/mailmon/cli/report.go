package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/report"
)

const reportUsage = `usage: mailmon report daily|weekly [-customer C] [-format text|json|html] [-at TIME] [-config FILE]
The deliverability summary of the 24 hours (daily) or 7 days (weekly) before
-at, rounded down to the hour: deliveries by status, deferrals and bounces by
reason and provider, top remote replies and rejecting domains, probe
placement, blocklist listings, decisions and the FBL review, read from
ClickHouse. -at 2026-12-07 gives the calendar day of 6 December.`

// reportTimeLayouts are the forms -at accepts; those without a zone are UTC.
var reportTimeLayouts = []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// reportCmd prints the daily or weekly report.
func reportCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(out, reportUsage)
			return exitOK
		}
		fmt.Fprintln(errOut, reportUsage)
		return exitUsage
	}
	period, err := report.ParsePeriod(args[0])
	if err != nil {
		fmt.Fprintf(errOut, "mailmon report: %v\n%s\n", err, reportUsage)
		return exitUsage
	}
	f := newFlags("report "+args[0], errOut)
	customer := f.fs.String("customer", "", "only this customer's deliveries, replies, decisions and complaints")
	format := f.fs.String("format", "text", "output: text, json or html (an HTML fragment)")
	at := f.fs.String("at", "", "end of the period, RFC 3339 or 2006-01-02[T15:04] in UTC (default now)")
	// Flags are checked before the config is read, so a mistyped flag is
	// reported as such whatever the config.
	if err := f.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(errOut, "%s: unexpected arguments: %s\n", f.fs.Name(), strings.Join(f.fs.Args(), " "))
		return exitUsage
	}
	write, err := reportWriter(*format)
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", f.fs.Name(), err)
		return exitUsage
	}
	opts := report.Options{Period: period, Customer: *customer}
	if *at != "" {
		if opts.End, err = parseReportTime(*at); err != nil {
			fmt.Fprintf(errOut, "%s: %v\n", f.fs.Name(), err)
			return exitUsage
		}
	}
	cfg, err := app.Load(f.config)
	if err != nil {
		fmt.Fprintf(errOut, "%s: config %s:\n%v\n", f.fs.Name(), f.config, err)
		return exitUsage
	}

	conn, err := chstore.Open(ctx, app.ClickHouseClient(cfg))
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", f.fs.Name(), err)
		return exitFailure
	}
	defer conn.Close()
	r, err := report.Build(ctx, conn, opts)
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", f.fs.Name(), err)
		return exitFailure
	}
	if err := write(r, out); err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", f.fs.Name(), err)
		return exitFailure
	}
	return exitOK
}

// reportWriter returns the renderer of a -format value.
func reportWriter(format string) (func(report.Report, io.Writer) error, error) {
	switch format {
	case "text":
		return report.Report.WriteText, nil
	case "html":
		return report.Report.WriteHTML, nil
	case "json":
		return func(r report.Report, w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}, nil
	}
	return nil, fmt.Errorf("-format %q: want text, json or html", format)
}

// parseReportTime reads -at: RFC 3339, or a date with an optional time in UTC.
func parseReportTime(s string) (time.Time, error) {
	for _, layout := range reportTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("-at %q: want RFC 3339 (2026-12-07T10:00:00Z) or 2026-12-07[T10:00] in UTC", s)
}
