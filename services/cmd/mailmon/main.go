// Command mailmon is the outbound e-mail deliverability monitor: every
// worker is a subcommand, and `mailmon run` runs several in one process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mailmon/mailmon/services/cmd/mailmon/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
