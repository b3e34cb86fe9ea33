package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/silence"
)

const silenceUsage = `usage: mailmon silence add MATCHER... -for DURATION -comment TEXT [-start TIME] [-by NAME] [-config FILE]
       mailmon silence list [-all] [-json] [-config FILE]
       mailmon silence expire ID [-config FILE]

A silence holds back the notifications of matching alerts for a while
(planned maintenance); the alerts are still recorded. MATCHER is
LABEL=VALUE, VALUE exact or ending in * for a prefix; every matcher must
match. Labels: rule, subject, severity, customer, provider, source_ip,
recipient_domain. At least one matcher is required; a silence lasts at
most 720h. Example:

  mailmon silence add -for 2h -comment "gmail seed moved" rule=probe_missing provider=gmail

The commands talk to the NATS of a running mailmon (nats.url, or the
embedded server's nats.embedded.listen) as the silence-cli user.`

// userSilenceCLI is the NATS user of `mailmon silence` (pipelines/access.yaml).
const userSilenceCLI = "silence-cli"

func silenceCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(errOut, silenceUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	f := newFlags("silence "+sub, errOut)
	var (
		forDur           time.Duration
		start            string
		comment          string
		by               = os.Getenv("USER")
		all, asJSON      bool
		wantArgs, maxArg int
	)
	switch sub {
	case "add":
		f.fs.DurationVar(&forDur, "for", 0, "how long the silence lasts from its start, e.g. 2h (at most 720h)")
		f.fs.StringVar(&start, "start", "", "when it starts, RFC 3339 (default now)")
		f.fs.StringVar(&comment, "comment", "", "why (required): shown in the list and kept with the silence")
		f.fs.StringVar(&by, "by", by, "who adds it (default $USER)")
		wantArgs, maxArg = 1, silence.MaxMatchers
	case "list":
		f.fs.BoolVar(&all, "all", false, "include silences that have ended (kept for a week)")
		f.fs.BoolVar(&asJSON, "json", false, "one JSON object per line")
	case "expire":
		wantArgs, maxArg = 1, 1
	default:
		fmt.Fprintf(errOut, "mailmon silence: unknown subcommand %q\n%s\n", sub, silenceUsage)
		return exitUsage
	}
	positional, err := parseInterleaved(f.fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(positional) < wantArgs || len(positional) > maxArg {
		what := map[string]string{"add": "at least one matcher (LABEL=VALUE): a silence without one would mute every alert", "list": "no arguments", "expire": "one silence ID"}[sub]
		fmt.Fprintf(errOut, "mailmon silence %s: needs %s\n%s\n", sub, what, silenceUsage)
		return exitUsage
	}

	var toAdd silence.Silence
	if sub == "add" {
		var problems []string
		for _, arg := range positional {
			m, err := silence.ParseMatcher(arg)
			if err != nil {
				problems = append(problems, err.Error())
			}
			toAdd.Matchers = append(toAdd.Matchers, m)
		}
		if forDur <= 0 {
			problems = append(problems, "-for DURATION is required, e.g. -for 2h")
		}
		if strings.TrimSpace(comment) == "" {
			problems = append(problems, "-comment TEXT is required: say why, for whoever finds the alert muted")
		}
		if by == "" {
			problems = append(problems, "-by NAME is required ($USER is not set)")
		}
		if start != "" {
			t, err := time.Parse(time.RFC3339, start)
			if err != nil {
				problems = append(problems, fmt.Sprintf("-start %q: not an RFC 3339 time (2026-12-07T22:00:00Z)", start))
			}
			toAdd.StartsAt = t
		}
		if len(problems) > 0 {
			fmt.Fprintf(errOut, "mailmon silence add:\n  %s\n", strings.Join(problems, "\n  "))
			return exitUsage
		}
		toAdd.Comment, toAdd.CreatedBy = comment, by
	}

	cfg, err := app.Load(f.config)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon silence %s: config %s:\n%v\n", sub, f.config, err)
		return exitUsage
	}
	nc, js, err := dialJetStream(cfg, userSilenceCLI)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon silence %s: %v\n", sub, err)
		return exitFailure
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := silence.Open(ctx, js)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon silence %s: %v\n", sub, err)
		return exitFailure
	}
	defer store.Close()
	now := time.Now()
	switch sub {
	case "add":
		if toAdd.StartsAt.IsZero() {
			toAdd.StartsAt = now
		}
		toAdd.EndsAt = toAdd.StartsAt.Add(forDur)
		var added silence.Silence
		added, err = store.Add(ctx, toAdd, now)
		if err == nil {
			fmt.Fprintf(out, "silence %s: %s from %s until %s (%s)\n", added.ID, matchersText(added.Matchers),
				added.StartsAt.Format(time.RFC3339), added.EndsAt.Format(time.RFC3339), added.EndsAt.Sub(added.StartsAt))
		}
	case "list":
		err = printSilences(out, store.List(), now, all, asJSON)
		if n, last := store.Refused(); n > 0 {
			fmt.Fprintf(errOut, "warning: %d stored silence records refused (they mute nothing); last: %s\n", n, last)
		}
	case "expire":
		var s silence.Silence
		s, err = store.Expire(ctx, positional[0], now)
		if err == nil {
			fmt.Fprintf(out, "silence %s expired at %s: %s\n", s.ID, s.EndsAt.Format(time.RFC3339), matchersText(s.Matchers))
		}
	}
	if err != nil {
		fmt.Fprintf(errOut, "mailmon silence %s: %v\n", sub, err)
		return exitFailure
	}
	return exitOK
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments (the flag package stops at the first non-flag), so both
// `silence add -for 2h rule=x` and `silence add rule=x -for 2h` work. "--"
// ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func matchersText(ms []silence.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, " ")
}

// silenceRow is one silence as `mailmon silence list -json` prints it.
type silenceRow struct {
	silence.Silence
	State string `json:"state"`
}

func printSilences(out io.Writer, list []silence.Silence, now time.Time, all, asJSON bool) error {
	var rows []silenceRow
	for _, s := range list {
		state := s.State(now)
		if state == silence.StateExpired && !all {
			continue
		}
		rows = append(rows, silenceRow{s, state})
	}
	if asJSON {
		return writeJSONLines(out, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(out, "no silences")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTS\tENDS\tLEFT\tMATCHERS\tBY\tCOMMENT")
	for _, r := range rows {
		left := "-"
		if r.State != silence.StateExpired {
			left = r.EndsAt.Sub(now).Round(time.Second).String()
		}
		// Tabs cannot be in a stored comment (Validate refuses control
		// characters), so the columns hold.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.StartsAt.UTC().Format(time.RFC3339),
			r.EndsAt.UTC().Format(time.RFC3339), left, matchersText(r.Matchers), r.CreatedBy, r.Comment)
	}
	return tw.Flush()
}
