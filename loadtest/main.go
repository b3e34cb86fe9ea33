package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: go run ./loadtest SCENARIO [flags]   (SCENARIO -h for its flags)

Scenarios:
  sink   N mixed events through JetStream into ClickHouse by the clickhouse-sink
         worker, against a raw clickhouse-go batch insert of the same rows

Progress goes to stderr; the last stdout line is one JSON object with the figures.
The exit status is non-zero when events were lost or doubled, or the run failed.
`

// run dispatches to a scenario and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "sink":
		return runSink(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "loadtest: unknown scenario %q\n\n%s", args[0], usage)
		return 2
	}
}

// progress writes one timestamped progress line to w (stderr).
func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s loadtest: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
