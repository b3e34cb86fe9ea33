package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

// inspector prints what one parser sees in its input, as JSON lines, for
// operators debugging a report and for scoring the parsers on corpora. run
// stops with ctx's error between messages or lines once ctx is done.
type inspector struct {
	name, summary string
	run           func(ctx context.Context, in io.Reader, out io.Writer) error
}

// inspectorFlags reads, for the targets that take options, the options
// given before FILE and returns the run to use instead of the inspector's.
var inspectorFlags = map[string]func(args []string, errOut io.Writer) (func(ctx context.Context, in io.Reader, out io.Writer) error, error){
	"rejection": rejectionFlags,
}

// inspectors lists `mailmon inspect` targets; each parser adds its line.
var inspectors = []inspector{
	{"postfix-log", "a Postfix or Exim log: one object per delivery attempt, expiry and NOQUEUE reject, joined and classified", inspectPostfixLog},
	{"arf", "a feedback-loop report (ARF, or a non-ARF look-alike): its fields and trace keys", inspectARF},
	{"bounce", "a bounce (DSN or text): one line per failed recipient with reason and category", inspectBounce},
	{"dmarc", "DMARC aggregate reports (mail, .xml, .gz, .zip): one line per record with the policy-evaluated and raw auth results", inspectDMARC},
	{"tlsrpt", "SMTP TLS reports (mail, .json, .gz): one line per policy with session counts and failure details", inspectTLSRPT},
	{"rejection", "SMTP reply / diagnostic texts, one per line (or JSON {\"text\",\"command\"}; -stage CMD for plain lines): reason, category, signature per line", inspectRejection},
}

func inspectCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) < 2 || args[0] == "-h" || args[0] == "help" {
		inspectUsage(errOut)
		if len(args) == 1 && (args[0] == "-h" || args[0] == "help") {
			return exitOK
		}
		return exitUsage
	}
	for _, ins := range inspectors {
		if ins.name != args[0] {
			continue
		}
		file := args[len(args)-1]
		if len(args) > 2 {
			flags := inspectorFlags[ins.name]
			if flags == nil {
				inspectUsage(errOut)
				return exitUsage
			}
			run, err := flags(args[1:len(args)-1], errOut)
			if err != nil {
				fmt.Fprintf(errOut, "mailmon inspect %s: %v\n", ins.name, err)
				return exitUsage
			}
			ins.run = run
		}
		in := io.Reader(os.Stdin)
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				fmt.Fprintf(errOut, "mailmon inspect %s: %v\n", ins.name, err)
				return exitFailure
			}
			defer f.Close()
			in = f
		}
		if err := runInspector(ctx, ins, in, out); err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted (%v)", context.Cause(ctx))
			}
			fmt.Fprintf(errOut, "mailmon inspect %s: %v\n", ins.name, err)
			return exitFailure
		}
		return exitOK
	}
	fmt.Fprintf(errOut, "mailmon inspect: unknown parser %q\n", args[0])
	inspectUsage(errOut)
	return exitUsage
}

// runInspector runs ins until it ends or ctx is done (SIGINT or SIGTERM),
// whichever comes first. The inspector checks ctx between messages and
// lines, and each one is bounded by its parser's work budget, so it stops
// soon after; but a read of standard input may block for ever, so the
// command does not wait for it: it returns ctx's error at once, and the
// process exits (the inspector's goroutine is left to end on its own when
// Main is called in a test).
func runInspector(ctx context.Context, ins inspector, in io.Reader, out io.Writer) error {
	done := make(chan error, 1)
	go func() { done <- ins.run(ctx, in, out) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func inspectUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: mailmon inspect PARSER [OPTIONS] FILE|-   (prints JSON lines)")
	for _, ins := range inspectors {
		fmt.Fprintf(w, "  %-12s %s\n", ins.name, ins.summary)
	}
}
