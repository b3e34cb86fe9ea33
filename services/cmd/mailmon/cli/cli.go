// Package cli is mailmon's command line: one subcommand per worker, `run`
// for several workers in one process, and the operator commands
// (check-config, pipelines apply, schemas migrate, version).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/obs"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3".
var Version = "dev"

// exit codes: 0 success, 1 runtime failure, 2 usage or config problems.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, out, errOut io.Writer) int
}

func commands() []command {
	cmds := []command{
		{"run", "run several workers in one process (embedded NATS unless nats.url is set)", runCmd},
		{"check-config", "print the effective config with secrets redacted, or every problem in it", checkConfigCmd},
		{"pipelines", "pipelines apply: create or update the JetStream streams, consumers and buckets", pipelinesCmd},
		{"schemas", "schemas migrate: apply the ClickHouse migrations", schemasCmd},
		{"inspect", "inspect arf|bounce|postfix-log|rejection FILE|-: print what a parser sees, as JSON lines", inspectCmd},
		{"enforcement", "enforcement list|explain SUBJECT|lift SUBJECT: the cut-offs and reroutes in force", enforcementCmd},
		{"suppression", "suppression add|remove|release|list|explain|import|export: the suppression list (CSV in and out)", suppressionCmd},
		{"dnsbl", "dnsbl check IP|DOMAIN: ask every blocklist zone now, one result per zone", dnsblCmd},
		{"fbl", "fbl import DIR|FILE: feed reports and bounces from a maildir, .eml files or a file to the fbl-ingester once", fblCmd},
		{"probe", "probe now: send one round of probes at once and print the results as they arrive", probeCmd},
		{"silence", "silence add MATCHER... -for 2h -comment TEXT|list|expire ID: hold back matching alerts' notifications", silenceCmd},
		{"check", "check probes|alerts: Nagios/Icinga plugin checks (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)", checkCmd},
		{"report", "report daily|weekly [-customer C] [-format text|json|html] [-at TIME]: deliveries, replies, probes, listings, decisions and the FBL review", reportCmd},
		{"lab", "lab [status]: run the lab world (every worker against a local MTA, providers, DNS and blocklist on loopback), or print its summary", labCmd},
		{"version", "print the version", versionCmd},
	}
	for _, d := range app.Workers() {
		cmds = append(cmds, command{d.Name, d.Summary, workerCmd(d.Name)})
	}
	return cmds
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], out, errOut)
		}
	}
	fmt.Fprintf(errOut, "mailmon: unknown command %q\n\n", args[0])
	usage(errOut)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mailmon watches outbound mail from the outside: probes, MTA logs, feedback loops, blocklists.")
	fmt.Fprintln(w, "\nUsage: mailmon <command> [flags]   (mailmon <command> -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
}

// flags holds the flags most commands share.
type flags struct {
	fs       *flag.FlagSet
	config   string
	httpAddr string
}

func newFlags(name string, errOut io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet("mailmon "+name, flag.ContinueOnError)}
	f.fs.SetOutput(errOut)
	def := os.Getenv("MAILMON_CONFIG")
	if def == "" {
		def = "mailmon.yaml"
	}
	f.fs.StringVar(&f.config, "config", def, "config file (YAML); default from $MAILMON_CONFIG")
	return f
}

func (f *flags) withHTTP() *flags {
	f.fs.StringVar(&f.httpAddr, "http.addr", "", "listen address for /metrics, /healthz, /readyz (overrides http.addr)")
	return f
}

// load parses the flags and the config file. It prints problems itself and
// returns ok=false with the exit code to use.
func (f *flags) load(args []string, errOut io.Writer) (app.Config, int, bool) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return app.Config{}, exitOK, false
		}
		return app.Config{}, exitUsage, false
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(errOut, "%s: unexpected arguments: %s\n", f.fs.Name(), strings.Join(f.fs.Args(), " "))
		return app.Config{}, exitUsage, false
	}
	cfg, err := app.Load(f.config)
	if err != nil {
		fmt.Fprintf(errOut, "%s: config %s:\n%v\n", f.fs.Name(), f.config, err)
		return app.Config{}, exitUsage, false
	}
	if f.httpAddr != "" {
		cfg.HTTP.Addr = f.httpAddr
	}
	return cfg, exitOK, true
}

func runCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	f := newFlags("run", errOut).withHTTP()
	workers := f.fs.String("workers", "all", "workers to run: all, or a comma-separated list")
	cfg, code, ok := f.load(args, errOut)
	if !ok {
		return code
	}
	defs, err := app.SelectWorkers(*workers)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon run: %v\n", err)
		return exitUsage
	}
	return runWorkers(ctx, cfg, defs, errOut)
}

func workerCmd(name string) func(ctx context.Context, args []string, out, errOut io.Writer) int {
	return func(ctx context.Context, args []string, out, errOut io.Writer) int {
		f := newFlags(name, errOut).withHTTP()
		cfg, code, ok := f.load(args, errOut)
		if !ok {
			return code
		}
		defs, err := app.SelectWorkers(name)
		if err != nil {
			fmt.Fprintf(errOut, "mailmon %s: %v\n", name, err)
			return exitUsage
		}
		return runWorkers(ctx, cfg, defs, errOut)
	}
}

func runWorkers(ctx context.Context, cfg app.Config, defs []app.Definition, errOut io.Writer) int {
	logger := obs.NewLogger(cfg.Log, errOut)
	// The local default keeps ClickHouse tables in place even before the
	// sink runs, so dashboards and ad-hoc queries find them.
	err := app.Run(ctx, cfg, logger, app.RunOptions{Workers: defs, ClickHouse: cfg.ClickHouse.Local.Enabled})
	if err != nil {
		logger.Error("mailmon stopped with an error", "error", err)
		return exitFailure
	}
	logger.Info("mailmon stopped")
	return exitOK
}

func checkConfigCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	f := newFlags("check-config", errOut)
	cfg, code, ok := f.load(args, errOut)
	if !ok {
		return code
	}
	if err := config.Print(out, cfg); err != nil {
		fmt.Fprintf(errOut, "mailmon check-config: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func pipelinesCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] != "apply" {
		fmt.Fprintln(errOut, "usage: mailmon pipelines apply [-config FILE]")
		return exitUsage
	}
	f := newFlags("pipelines apply", errOut)
	cfg, code, ok := f.load(args[1:], errOut)
	if !ok {
		return code
	}
	logger := obs.NewLogger(cfg.Log, errOut)
	// Start applies the topology; an embedded server keeps it in its store.
	rt, err := app.Start(ctx, cfg, logger, app.StartOptions{})
	if err != nil {
		fmt.Fprintf(errOut, "mailmon pipelines apply: %v\n", err)
		return exitFailure
	}
	defer rt.Close()
	if rt.JetStream == nil {
		fmt.Fprintln(errOut, "mailmon pipelines apply: needs the admin user: set nats.users.admin (or a shared nats.user)")
		return exitFailure
	}
	top, _ := pipelines.Default()
	fmt.Fprintf(out, "applied %d streams, %d consumers, %d buckets (replicas %d)\n",
		len(top.Streams), len(top.Consumers), len(top.Buckets), max(cfg.NATS.Replicas, 1))
	return exitOK
}

func schemasCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] != "migrate" {
		fmt.Fprintln(errOut, "usage: mailmon schemas migrate [-config FILE]")
		return exitUsage
	}
	f := newFlags("schemas migrate", errOut)
	cfg, code, ok := f.load(args[1:], errOut)
	if !ok {
		return code
	}
	conn, err := chstore.Open(ctx, app.ClickHouseClient(cfg))
	if err != nil {
		fmt.Fprintf(errOut, "mailmon schemas migrate: %v\n", err)
		return exitFailure
	}
	defer conn.Close()
	applied, err := chstore.MigrateFor(ctx, conn, app.ClickHouseClient(cfg), schemas.Migrations)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon schemas migrate: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(out, "applied %d new migrations to %s\n", len(applied), cfg.ClickHouse.Database)
	for _, name := range applied {
		fmt.Fprintf(out, "  %s\n", name)
	}
	return exitOK
}

func versionCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	v := Version
	if info, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(out, "mailmon %s (%s)\n", v, info.GoVersion)
		return exitOK
	}
	fmt.Fprintf(out, "mailmon %s\n", v)
	return exitOK
}
