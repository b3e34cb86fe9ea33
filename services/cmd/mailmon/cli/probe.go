package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/worker"
	"github.com/mailmon/mailmon/services/probesender"
)

const probeUsage = `Usage: mailmon probe now -config FILE [-wait DURATION]

Sends one round of probes at once (every probe_sender source to every
target, no jitter) through the running mailmon's NATS, and prints each
probe's submission and then its result (received, missing, late) as the
mailbox-retriever reports it. Exits 0 when every probe was accepted and
received, 1 otherwise.`

func probeCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] != "now" {
		fmt.Fprintln(errOut, probeUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help") {
			return exitOK
		}
		return exitUsage
	}
	f := newFlags("probe now", errOut)
	wait := f.fs.Duration("wait", 0, "how long to wait for the results (default: the longest deadline plus a minute)")
	cfg, code, ok := f.load(args[1:], errOut)
	if !ok {
		return code
	}
	if len(cfg.ProbeSender.Sources) == 0 || len(cfg.ProbeSender.Targets) == 0 {
		fmt.Fprintln(errOut, "mailmon probe now: probe_sender has no sources or targets")
		return exitUsage
	}
	if *wait <= 0 {
		*wait = cfg.MailboxRetriever.Deadline.Std()
		for _, a := range cfg.MailboxRetriever.Accounts {
			*wait = max(*wait, a.Deadline.Std())
		}
		*wait += time.Minute
	}
	track, err := app.TrackingSettings(cfg.Tracking)
	if err == nil && track.Keyring == nil {
		err = worker.ErrNoTrackingKey
	}
	if err != nil {
		fmt.Fprintf(errOut, "mailmon probe now: tracking.key: %v\n", err)
		return exitUsage
	}
	nc, js, err := dialJetStream(cfg, probesender.WorkerName)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon probe now: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	return probeNow(ctx, js, cfg.ProbeSender, track, *wait, out, errOut)
}

// probeNow is `mailmon probe now` once connected.
func probeNow(ctx context.Context, js jetstream.JetStream, cfg probesender.Config, track worker.Tracking, wait time.Duration, out, errOut io.Writer) int {
	sender, err := probesender.New(cfg, worker.Settings{JetStream: js, Tracking: track})
	if err != nil {
		fmt.Fprintf(errOut, "mailmon probe now: %v\n", err)
		return exitUsage
	}
	// Listen before sending, so no result can slip by.
	cons, err := js.OrderedConsumer(ctx, "PROBE", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"mailmon.probe.>"}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		fmt.Fprintf(errOut, "mailmon probe now: listen for results: %v\n", err)
		return exitFailure
	}
	var mu sync.Mutex
	w := lineWriter{w: out}
	results := make(chan schemas.Event, 256)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if m.Subject() == schemas.SubjectProbeSent {
			return
		}
		if ev, err := schemas.Decode(m.Data()); err == nil {
			select {
			case results <- ev:
			default:
			}
		}
	})
	if err != nil {
		fmt.Fprintf(errOut, "mailmon probe now: listen for results: %v\n", err)
		return exitFailure
	}
	defer cc.Stop()

	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	expect := map[string]*schemas.ProbeSent{}
	failed := false
	sent := sender.Round(ctx, 0, func(ev *schemas.ProbeSent) {
		mu.Lock()
		defer mu.Unlock()
		w.printf("sent      %-16s via %-12s %s\n", ev.Target, ev.Route, submission(ev))
	})
	for _, ev := range sent {
		if ev.Outcome == schemas.OutcomeAccepted {
			expect[ev.ProbeID] = ev
		} else {
			failed = true
		}
	}
	if len(sent) < len(cfg.Sources)*len(cfg.Targets) {
		failed = true
	}
	for len(expect) > 0 {
		select {
		case <-ctx.Done():
			for _, ev := range expect {
				w.printf("no result %-16s via %-12s within %s (is the mailbox-retriever running?)\n", ev.Target, ev.Route, wait)
			}
			return exitFailure
		case ev := <-results:
			switch e := ev.(type) {
			case *schemas.ProbeReceived:
				if expect[e.ProbeID] == nil {
					continue
				}
				delete(expect, e.ProbeID)
				w.printf("received  %-16s via %-12s %s (%s) latency %s detection %s hops %d%s\n", e.Target, e.Route, e.Placement, e.Folder,
					time.Duration(e.LatencyMs)*time.Millisecond, time.Duration(e.DetectionMs)*time.Millisecond, e.ReceivedHops, verdictText(e.ProbeVerdicts))
			case *schemas.ProbeMissing:
				if expect[e.ProbeID] == nil {
					continue
				}
				delete(expect, e.ProbeID)
				failed = true
				w.printf("missing   %-16s via %-12s not found after %s in %s\n", e.Target, e.Route,
					time.Duration(e.WaitedMs)*time.Millisecond, strings.Join(e.FoldersChecked, ", "))
			}
		}
	}
	if failed {
		return exitFailure
	}
	return exitOK
}

type lineWriter struct{ w io.Writer }

func (l lineWriter) printf(format string, args ...any) { fmt.Fprintf(l.w, format, args...) }

func submission(ev *schemas.ProbeSent) string {
	if ev.Outcome == schemas.OutcomeAccepted {
		s := "accepted"
		if ev.ReplyCode != 0 {
			s += fmt.Sprintf(" %d %s %s", ev.ReplyCode, ev.EnhancedStatus, ev.ReplyText)
		}
		return fmt.Sprintf("%s (%d ms)", strings.TrimSpace(s), ev.TotalMs)
	}
	s := fmt.Sprintf("%s in %s", ev.Outcome, ev.FailedPhase)
	if ev.ReplyCode != 0 {
		s += fmt.Sprintf(": %d %s %s", ev.ReplyCode, ev.EnhancedStatus, ev.ReplyText)
	}
	if ev.Error != "" {
		s += ": " + ev.Error
	}
	return s
}

func verdictText(v schemas.ProbeVerdicts) string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"spf", v.SPF}, {"dkim", v.DKIM}, {"dmarc", v.DMARC}} {
		if p.v != "" {
			parts = append(parts, p.k+"="+p.v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}
