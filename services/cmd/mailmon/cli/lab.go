package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mailmon/mailmon/services/cmd/mailmon/lab"
	"github.com/mailmon/mailmon/services/internal/obs"
)

// labConfig is the lab's config, the default of `mailmon lab` when
// $MAILMON_CONFIG is unset.
const labConfig = "deploy/config/mailmon.lab.yaml"

// labCmd runs the lab world (`mailmon lab`) or prints its summary
// (`mailmon lab status`).
func labCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) > 0 && args[0] == "status" {
		return labStatusCmd(ctx, args[1:], out, errOut)
	}
	f := labFlags("lab", errOut).withHTTP()
	interval := f.fs.Duration("status-interval", 30*time.Second, "how often the summary is printed; 0 prints none")
	submission := f.fs.Int("submission-port", lab.DefaultSubmissionPort, "loopback port where the lab's customers submit mail to its MTA")
	cfg, code, ok := f.load(args, errOut)
	if !ok {
		return code
	}
	if err := lab.Prepare(&cfg); err != nil {
		fmt.Fprintf(errOut, "mailmon lab: config %s:\n%v\n", f.config, err)
		return exitUsage
	}
	logger := obs.NewLogger(cfg.Log, errOut)
	err := lab.Run(ctx, cfg, lab.Options{Logger: logger, Status: out, StatusInterval: *interval, SubmissionPort: *submission})
	if err != nil {
		logger.Error("mailmon lab stopped with an error", "error", err)
		return exitFailure
	}
	logger.Info("mailmon lab stopped; its state stays under " + cfg.DataDir + " for the next run")
	return exitOK
}

func labStatusCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	f := labFlags("lab status", errOut)
	cfg, code, ok := f.load(args, errOut)
	if !ok {
		return code
	}
	if err := lab.Prepare(&cfg); err != nil {
		fmt.Fprintf(errOut, "mailmon lab status: config %s:\n%v\n", f.config, err)
		return exitUsage
	}
	conn, err := lab.OpenClickHouse(ctx, cfg)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon lab status: %v (is `mailmon lab` running?)\n", err)
		return exitFailure
	}
	defer conn.Close()
	s, err := lab.ReadSummary(ctx, conn, cfg, cfg.DataDir)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon lab status: %v\n", err)
		return exitFailure
	}
	s.Print(out)
	return exitOK
}

// labFlags are the shared flags with the lab's config as the default.
func labFlags(name string, errOut io.Writer) *flags {
	f := newFlags(name, errOut)
	if os.Getenv("MAILMON_CONFIG") == "" {
		f.config = labConfig
		f.fs.Lookup("config").DefValue = labConfig
	}
	return f
}
