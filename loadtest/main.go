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
  sink       N mixed events through JetStream into ClickHouse by the clickhouse-sink
             worker, against a raw clickhouse-go batch insert of the same rows
  arf-parse  the ARF and bounce corpora (../shared/corpora) parsed and classified by
             mailmon inspect, against Debian's Sisimai (libsisimai-perl) on the same files
  dmarc-parse
             the DMARC aggregate and SMTP TLS report corpus (../shared/corpora/dmarc) as
             report mails, unwrapped and parsed by mailmon inspect dmarc/tlsrpt, against
             the standard library's mail, multipart, gzip, zip and encoding/xml on them
  postfix-parse
             Postfix log lines per second parsed, joined and classified by mailmon
             inspect postfix-log over the corpus logs (repeated to -lines), against
             Debian's pflogsumm over the same file

  enforcement
             many customers' deliveries and complaints through the complaint-evaluator
             and the policy service: enforce_p99_ms (crossing complaint published to the
             new answer), wrongly_blocked, released (every decision expired on time)

  suppression
             N entries (10M by default) in the suppression bucket, then the policy service
             started on them from the bucket and from its snapshot: start time, resident
             bytes per entry, p50/p99 answer latency against the same service with an
             empty bucket (ratio)

  dnsbl-sweep
             a /16 (-prefix) and 2000 domains x the test zones of a real rbldnsd with a
             known answer key, swept by the dns-sweeper worker, against a bare
             miekg/dns client's query rate on the same server

  console    N days of synthetic traffic (30 x 1M deliveries a day by default) loaded
             into ClickHouse (the last day through the clickhouse-sink worker), then
             every console page and Grafana panel query fetched K times: p50/p95 per
             page, and each page's figures from its rollup against the raw tables

  probes     one round of N probes from the probe-sender through a real Postfix to a real
             Dovecot (sieve files some into Junk), read back by the mailbox-retriever
             over IMAP IDLE: lost, misplaced, detection p50/p99, against raw
             Postfix -> Dovecot throughput of the same number of messages

  cluster    3 NATS nodes (R3), 2 ClickHouse replicas + ZooKeeper and two copies of
             every worker that can run twice, as separate processes, under a steady
             mixed load; SIGKILLs the NATS stream leader, a ClickHouse replica, a sink,
             the dns-sweeper leader and an evaluator, one at a time: lost, doubled,
             policy answers, takeover times (-short: the CI run, about 2 minutes)

  evaluator-restart
             -days of -per-day deliveries and complaints in the streams, then the
             complaint-evaluator restarted from its checkpoint and rebuilt from the
             streams, each timed to its first judgement: the ratio, and both projected
             to 10M deliveries a day (linear fit over -per-day/2 and -per-day)

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
	case "dnsbl-sweep":
		return runDNSBLSweep(ctx, args[1:], stdout, stderr)
	case "arf-parse":
		return runARFParse(ctx, args[1:], stdout, stderr)
	case "dmarc-parse":
		return runDMARCParse(ctx, args[1:], stdout, stderr)
	case "dmarc-parse-baseline": // the baseline's child process (dmarcparse.go)
		return runDMARCParseBaseline(args[1:], stdout, stderr)
	case "postfix-parse":
		return runPostfixParse(ctx, args[1:], stdout, stderr)
	case "enforcement":
		return runEnforcement(ctx, args[1:], stdout, stderr)
	case "suppression":
		return runSuppression(ctx, args[1:], stdout, stderr)
	case "probes":
		return runProbes(ctx, args[1:], stdout, stderr)
	case "console":
		return runConsole(ctx, args[1:], stdout, stderr)
	case "cluster":
		return runCluster(ctx, args[1:], stdout, stderr)
	case "evaluator-restart":
		return runEvaluatorRestart(ctx, args[1:], stdout, stderr)
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
