package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

const enforcementUsage = `usage: mailmon enforcement list [-json] [-config FILE]
       mailmon enforcement explain SUBJECT [-config FILE]
       mailmon enforcement lift SUBJECT [-by NAME] [-note TEXT] [-config FILE]

SUBJECT is customer:NAME, ip:ADDR or customer:NAME/provider:PROVIDER.
The commands talk to the NATS of a running mailmon (nats.url, or the
embedded server's nats.embedded.listen) as the enforcement-cli user.`

// enforcementCmd lists, explains and lifts the decisions in force.
func enforcementCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(errOut, enforcementUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, rest := args[0], args[1:]
	var subject enforcement.Subject
	if sub == "explain" || sub == "lift" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintf(errOut, "mailmon enforcement %s: SUBJECT is required\n%s\n", sub, enforcementUsage)
			return exitUsage
		}
		s, err := enforcement.ParseSubject(rest[0])
		if err != nil {
			fmt.Fprintf(errOut, "mailmon enforcement %s: %v\n", sub, err)
			return exitUsage
		}
		subject, rest = s, rest[1:]
	}
	f := newFlags("enforcement "+sub, errOut)
	asJSON := false
	by, note := os.Getenv("USER"), ""
	switch sub {
	case "list":
		f.fs.BoolVar(&asJSON, "json", false, "print one JSON record per line")
	case "explain":
	case "lift":
		f.fs.StringVar(&by, "by", by, "operator lifting the decision (recorded in the lift event)")
		f.fs.StringVar(&note, "note", "", "reason for lifting it")
	default:
		fmt.Fprintf(errOut, "mailmon enforcement: unknown subcommand %q\n%s\n", sub, enforcementUsage)
		return exitUsage
	}
	cfg, code, ok := f.load(rest, errOut)
	if !ok {
		return code
	}
	nc, js, err := dialJetStream(cfg, pipelines.UserEnforcementCLI)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon enforcement %s: %v\n", sub, err)
		return exitFailure
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, enforcement.Bucket)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon enforcement %s: bucket %s: %v\n", sub, enforcement.Bucket, err)
		return exitFailure
	}
	now := time.Now()
	switch sub {
	case "list":
		err = listDecisions(ctx, kv, now, asJSON, out)
	case "explain":
		err = explainDecision(ctx, js, kv, subject, now, out)
	case "lift":
		if by == "" {
			fmt.Fprintln(errOut, "mailmon enforcement lift: -by NAME is required")
			return exitUsage
		}
		host, _ := os.Hostname()
		pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "mailmon-cli"})
		var ev schemas.DecisionLift
		ev, err = enforcement.Lift(ctx, kv, pub, subject, by, note, schemas.Source{Worker: "mailmon-cli", Host: host}, now)
		if err == nil {
			fmt.Fprintf(out, "lifted %s %s (decision %s, offence %d, held %s); lift event %s\n",
				ev.Action, ev.Subject, ev.DecisionID, ev.Offence, (time.Duration(ev.HeldMs) * time.Millisecond).Round(time.Second), ev.ID)
		}
	}
	if err != nil {
		fmt.Fprintf(errOut, "mailmon enforcement %s: %v\n", sub, err)
		return exitFailure
	}
	return exitOK
}

// dialJetStream connects as user (see pipelines/access.yaml) with a
// JetStream context on the connection, what every operator command talking
// to a running mailmon needs.
func dialJetStream(cfg app.Config, user string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := app.DialNATS(cfg, user)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// writeJSONLines writes one JSON document per line: the -json output of
// the list commands.
func writeJSONLines[T any](out io.Writer, items []T) error {
	enc := json.NewEncoder(out)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func listDecisions(ctx context.Context, kv jetstream.KeyValue, now time.Time, asJSON bool, out io.Writer) error {
	recs, err := enforcement.List(ctx, kv, now)
	if err != nil && recs == nil {
		return err
	}
	if asJSON {
		return errors.Join(writeJSONLines(out, recs), err)
	}
	if len(recs) == 0 {
		fmt.Fprintln(out, "no decisions in force")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tACTION\tRULE\tOFFENCE\tDECIDED\tUNTIL\tLEFT")
	for _, r := range recs {
		until, left := "lifted by hand", "-"
		if !r.Until.IsZero() {
			until = r.Until.UTC().Format(time.RFC3339)
			left = r.Until.Sub(now).Round(time.Second).String()
		}
		action := r.Action
		if r.Action == schemas.ActionReroute {
			action += "→" + r.Transport
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Subject, action, r.Rule, r.Offence, r.DecidedAt.UTC().Format(time.RFC3339), until, left)
	}
	tw.Flush()
	return err
}

// explainDecision prints the decision in force for s with its evidence,
// and every decision event about s still in the DECISION stream.
func explainDecision(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, s enforcement.Subject, now time.Time, out io.Writer) error {
	r, _, found, err := enforcement.Get(ctx, kv, s, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "subject: %s\n", s)
	if !found {
		fmt.Fprintln(out, "in force: nothing (mail flows normally)")
	} else {
		fmt.Fprintf(out, "in force: %s (rule %s, offence %d)\n", r.Action, r.Rule, r.Offence)
		fmt.Fprintf(out, "  decision: %s at %s by %s@%s\n", r.DecisionID, r.DecidedAt.UTC().Format(time.RFC3339), r.Source.Worker, r.Source.Host)
		if r.Until.IsZero() {
			fmt.Fprintln(out, "  until: lifted by hand (mailmon enforcement lift)")
		} else {
			fmt.Fprintf(out, "  until: %s (%s left)\n", r.Until.UTC().Format(time.RFC3339), r.Until.Sub(now).Round(time.Second))
		}
		if r.Action == schemas.ActionReroute {
			fmt.Fprintf(out, "  postfix: FILTER %s:\n", r.Transport)
		} else {
			fmt.Fprintf(out, "  postfix: %s %s\n", r.PolicyAction, r.PolicyText)
		}
		if r.Summary != "" {
			fmt.Fprintf(out, "  why: %s\n", r.Summary)
		}
		ev := r.Evidence
		fmt.Fprintf(out, "  evidence: %d complaints / %d delivered over %s = rate %.4f%% (threshold %g)\n",
			ev.Complaints, ev.Delivered, time.Duration(ev.WindowMs)*time.Millisecond, ev.Rate*100, ev.Threshold)
		for i, n := range ev.EvidenceNames {
			if i < len(ev.EvidenceValues) {
				fmt.Fprintf(out, "    %s: %s\n", n, ev.EvidenceValues[i])
			}
		}
		if len(ev.SampleComplaintIDs) > 0 {
			fmt.Fprintf(out, "  sample complaints: %s\n", strings.Join(ev.SampleComplaintIDs, ", "))
		}
	}
	return printHistory(ctx, js, s, out)
}

// printHistory lists the decision events about s in the DECISION stream.
func printHistory(ctx context.Context, js jetstream.JetStream, s enforcement.Subject, out io.Writer) error {
	cons, err := js.OrderedConsumer(ctx, "DECISION", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mailmon.decision.>"}})
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer iter.Stop()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		fmt.Fprintln(out, "history: none in the DECISION stream")
		return nil
	}
	fmt.Fprintln(out, "history:")
	want := s.String()
	for {
		msg, err := iter.Next()
		if err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		if ev, err := schemas.Decode(msg.Data()); err == nil {
			if line := historyLine(ev, want); line != "" {
				fmt.Fprintln(out, "  "+line)
			}
		}
		md, err := msg.Metadata()
		if err != nil || md.NumPending == 0 {
			return nil
		}
	}
}

func historyLine(ev schemas.Event, subject string) string {
	t := ev.EventHeader().Time.UTC().Format(time.RFC3339)
	switch e := ev.(type) {
	case *schemas.DecisionCutoff:
		if e.Subject == subject {
			return fmt.Sprintf("%s cutoff  %s offence %d until %s (%s)", t, e.Rule, e.Offence, untilText(e.Until), e.ID)
		}
	case *schemas.DecisionReroute:
		if e.Subject == subject {
			return fmt.Sprintf("%s reroute %s offence %d until %s via %s (%s)", t, e.Rule, e.Offence, untilText(e.Until), e.Transport, e.ID)
		}
	case *schemas.DecisionRelease:
		if e.Subject == subject {
			return fmt.Sprintf("%s release %s of %s after %s", t, e.Action, e.DecisionID, time.Duration(e.HeldMs)*time.Millisecond)
		}
	case *schemas.DecisionLift:
		if e.Subject == subject {
			return fmt.Sprintf("%s lift    %s of %s by %s: %s", t, e.Action, e.DecisionID, e.LiftedBy, e.Note)
		}
	}
	return ""
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "lifted by hand"
	}
	return t.UTC().Format(time.RFC3339)
}
