package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/services/clickhousesink"
	"github.com/mailmon/mailmon/services/complaintevaluator"
	"github.com/mailmon/mailmon/services/console"
	"github.com/mailmon/mailmon/services/dnssweeper"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/mailboxretriever"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/notifier"
	"github.com/mailmon/mailmon/services/policyservice"
	"github.com/mailmon/mailmon/services/probesender"
	"github.com/mailmon/mailmon/services/suppressor"
)

// Definition registers one worker: its kebab-case name (also its
// subcommand), what it needs from the runtime, and how to build it from the
// config file.
type Definition struct {
	Name    string
	Summary string
	// NeedsClickHouse, when it says so for the config, makes the runtime
	// connect to ClickHouse (starting the local server if configured) and
	// apply the migrations before the worker starts.
	NeedsClickHouse func(cfg Config) bool
	// StartsWithoutNATS: the worker serves from local state while NATS is
	// unreachable, so a process running only such workers starts anyway:
	// its connections retry in the background (the worker reports not
	// ready meanwhile) and the topology is left to whoever applies it.
	StartsWithoutNATS bool
	Build             func(cfg Config, s worker.Settings) (worker.Runner, error)
}

// definitions lists every worker in this binary, in start order. Each
// worker issue adds its entry here.
var definitions = []Definition{
	{
		Name:            clickhousesink.WorkerName,
		Summary:         "store every event stream in ClickHouse (batched, at-least-once, deduplicated by id)",
		NeedsClickHouse: always,
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return clickhousesink.New(cfg.ClickHouseSink, s)
		},
	},
	{
		Name:    complaintevaluator.WorkerName,
		Summary: "judge complaint rates and other triggers over sliding windows; cut off or reroute, release on expiry",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return complaintevaluator.New(cfg.ComplaintEvaluator, s)
		},
	},
	{
		Name:    dnssweeper.WorkerName,
		Summary: "sweep our IPs and domains against DNS blocklists (self-tested zones, transitions only) and audit PTR/SPF/DKIM/DMARC/MX",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return dnssweeper.New(cfg.DNSSweeper, s)
		},
	},
	{
		Name:              policyservice.WorkerName,
		StartsWithoutNATS: true,
		Summary:           "answer Postfix check_policy_service requests from the enforcement decisions (DUNNO, REJECT/DEFER, FILTER)",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			pc := cfg.PolicyService.WithDataDir(cfg.DataDir)
			pc.Suppression = cfg.Suppression
			return policyservice.New(pc, s)
		},
	},
	{
		Name: notifier.WorkerName,
		// Only to build the scheduled reports it e-mails.
		NeedsClickHouse: func(cfg Config) bool { return len(cfg.Notifier.Reports) > 0 },
		Summary:         "deliver alerts to webhooks (generic JSON, Slack, Alertmanager), grouped and deduplicated per subject",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return notifier.New(cfg.Notifier, s)
		},
	},
	{
		Name:    probesender.WorkerName,
		Summary: "send tagged probes from each outgoing path to seed mailboxes every interval, timing the SMTP transaction",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return probesender.New(cfg.ProbeSender, s)
		},
	},
	{
		Name:    mailboxretriever.WorkerName,
		Summary: "read seed mailboxes (IMAP IDLE, POP3) and report each probe received, missing or late, with placement and verdicts",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return mailboxretriever.New(cfg.MailboxRetriever, s)
		},
	},
	{
		Name:    fblingester.WorkerName,
		Summary: "receive ARF complaint reports and bounces (SMTP listener, IMAP pull, directory import); publish complaint, auth-failure and bounce events before answering 250",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return fblingester.New(cfg.FBLIngester, s)
		},
	},
	{
		Name:            console.WorkerName,
		Summary:         "serve the read-only ops console at / on http.addr: overview, probes, deliveries, blocklists, complaints, alerts, trace, report (HTML or JSON)",
		NeedsClickHouse: func(cfg Config) bool { return cfg.Console.Enabled },
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			if err := cfg.Console.CheckExposure(cfg.HTTP.Addr); err != nil {
				return nil, err
			}
			return console.New(ConsoleConfig(cfg), s)
		},
	},
	{
		Name:    suppressor.WorkerName,
		Summary: "keep the suppression lists from traced permanent bounces, trusted complaints and successful deliveries; expire entries",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return suppressor.New(cfg.Suppression, s)
		},
	},
	{
		Name:    mtalogtailer.WorkerName,
		Summary: "follow Postfix/Exim logs (rotation-safe, checkpointed) and publish one classified delivery.attempted per recipient attempt",
		Build: func(cfg Config, s worker.Settings) (worker.Runner, error) {
			return mtalogtailer.New(cfg.MTALogTailer, s)
		},
	},
}

// always is NeedsClickHouse of the workers that need it whatever the config.
func always(Config) bool { return true }

// Workers returns the registered workers.
func Workers() []Definition { return slices.Clone(definitions) }

// SelectWorkers resolves a -workers flag value: "all" or a comma-separated
// list of names. Unknown names are an error that lists the known ones.
func SelectWorkers(spec string) ([]Definition, error) {
	if spec == "all" || spec == "" {
		return Workers(), nil
	}
	var out []Definition
	var unknown []string
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(definitions, func(d Definition) bool { return d.Name == name })
		if i < 0 {
			unknown = append(unknown, name)
			continue
		}
		if !slices.ContainsFunc(out, func(d Definition) bool { return d.Name == name }) {
			out = append(out, definitions[i])
		}
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(definitions))
		for _, d := range definitions {
			known = append(known, d.Name)
		}
		return nil, fmt.Errorf("unknown worker(s) %s; known: all, %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}
