package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

const suppressionUsage = `usage: mailmon suppression add ADDRESS (-customer C | -global) [-domain] [-reason manual|unsubscribe|complaint|hard_bounce]
                              [-for DURATION | -until TIME] [-by NAME] [-note TEXT] [-config FILE]
       mailmon suppression remove ADDRESS (-customer C | -global) [-domain] [-by NAME] [-note TEXT] [-config FILE]
       mailmon suppression release -customer C [-reason R] [-dry-run] [-by NAME] [-note TEXT] [-config FILE]
       mailmon suppression list [-customer C] [-reason R] [-json] [-limit N] [-config FILE]
       mailmon suppression explain ADDRESS [-customer C] [-since DURATION] [-config FILE]
       mailmon suppression import FILE|- [-customer C] [-reason R] [-by NAME] [-dry-run] [-config FILE]
       mailmon suppression export [-customer C] [-reason R] [-config FILE]

The suppression list stops mail to an address (or, with -domain, to every
address of a domain) for one customer, or with -global for every customer:
the policy service refuses it at RCPT TO. add and import write entries,
remove and release end them, each with its suppression event. An entry
lasts as suppression.expiry says for its reason (hard_bounce: as
user_unknown; manual and unsubscribe: until removed, unless configured),
or -for / -until.

import reads CSV as ESPs export it: a header naming the address column
(email, address, recipient or "email address"), optionally reason,
created[_at], expires[_at], customer, scope and note; times in RFC 3339,
Unix seconds or "2006-01-02 15:04:05" UTC. A column value wins over the
flag. Importing the same file twice adds nothing the second time. export
writes email,customer,scope,reason,created_at,expires_at,bounce_category,
status,recipient_hash,recipient_domain,note (email empty when
suppression.hash_key is set).

The commands talk to the NATS of a running mailmon (nats.url, or the
embedded server's nats.embedded.listen) as the suppression-cli user.`

// userSuppressionCLI is the NATS user of `mailmon suppression`
// (pipelines/access.yaml).
const userSuppressionCLI = "suppression-cli"

// suppressionSource names the command line as the source of its events.
const suppressionSource = "mailmon-cli"

// suppressionFlags are the flags of every suppression subcommand; each
// subcommand registers the ones it takes.
type suppressionFlags struct {
	customer, reason, by, note, until string
	global, domain, dryRun, asJSON    bool
	forDur, since                     time.Duration
	limit                             int
}

func suppressionCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(errOut, suppressionUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	f := newFlags("suppression "+sub, errOut)
	fl := suppressionFlags{by: os.Getenv("USER")}
	fs := f.fs
	customer := func() { fs.StringVar(&fl.customer, "customer", "", "the customer whose list it is") }
	operator := func() {
		fs.StringVar(&fl.by, "by", fl.by, "operator making the change, recorded in its event (default $USER)")
		fs.StringVar(&fl.note, "note", "", "note recorded in the event")
	}
	scope := func() {
		customer()
		fs.BoolVar(&fl.global, "global", false, "the global list (every customer) instead of a customer's")
		fs.BoolVar(&fl.domain, "domain", false, "the entry for the address's domain (or a domain given as ADDRESS): every address there")
	}
	reason := func(def string) {
		fs.StringVar(&fl.reason, "reason", def, "reason: hard_bounce, complaint, unsubscribe, manual, soft_bounces")
	}
	nargs := 0
	switch sub {
	case "add":
		scope()
		operator()
		reason(schemas.SuppressManual)
		fs.DurationVar(&fl.forDur, "for", 0, "how long the entry lasts, e.g. 720h (default: suppression.expiry of the reason; manual never)")
		fs.StringVar(&fl.until, "until", "", "when the entry ends, RFC 3339")
		nargs = 1
	case "remove":
		scope()
		operator()
		nargs = 1
	case "release":
		customer()
		operator()
		reason("")
		fs.BoolVar(&fl.dryRun, "dry-run", false, "print what would be released, change nothing")
	case "list":
		customer()
		reason("")
		fs.BoolVar(&fl.asJSON, "json", false, "one JSON object per line")
		fs.IntVar(&fl.limit, "limit", 1000, "print at most N entries (0: all)")
	case "explain":
		customer()
		fs.DurationVar(&fl.since, "since", 0, "read the history of the last DURATION only (default: the whole SUPPRESSION stream, 90 days)")
		nargs = 1
	case "import":
		customer()
		reason(schemas.SuppressManual)
		fs.StringVar(&fl.by, "by", fl.by, "operator importing, recorded in the events (default $USER)")
		fs.BoolVar(&fl.dryRun, "dry-run", false, "read and check the file, print what would be added, change nothing")
		nargs = 1
	case "export":
		customer()
		reason("")
	default:
		fmt.Fprintf(errOut, "mailmon suppression: unknown subcommand %q\n%s\n", sub, suppressionUsage)
		return exitUsage
	}
	positional, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(positional) != nargs {
		what := map[int]string{0: "no arguments", 1: "one argument (ADDRESS, or FILE for import)"}[nargs]
		fmt.Fprintf(errOut, "mailmon suppression %s: takes %s\n%s\n", sub, what, suppressionUsage)
		return exitUsage
	}
	if problems := fl.check(sub); len(problems) > 0 {
		fmt.Fprintf(errOut, "mailmon suppression %s:\n  %s\n", sub, strings.Join(problems, "\n  "))
		return exitUsage
	}
	if fl.reason != "" {
		fl.reason, _ = suppression.ParseReason(fl.reason) // checked above
	}

	cfg, err := app.Load(f.config)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon suppression %s: config %s:\n%v\n", sub, f.config, err)
		return exitUsage
	}
	// An import reads its file before connecting: a file that cannot be
	// read changes nothing.
	var rows suppression.CSVResult
	var file string
	if sub == "import" {
		file = positional[0]
		rows, err = readSuppressionImport(file)
		if err != nil {
			fmt.Fprintf(errOut, "mailmon suppression import: %v\n", err)
			return exitFailure
		}
	}
	nc, js, err := dialJetStream(cfg, userSuppressionCLI)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon suppression %s: %v\n", sub, err)
		return exitFailure
	}
	defer nc.Close()
	if sub == "add" || sub == "remove" || sub == "explain" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	kv, err := js.KeyValue(ctx, suppression.Bucket)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon suppression %s: bucket %s: %v\n", sub, suppression.Bucket, err)
		return exitFailure
	}
	host, _ := os.Hostname()
	op := &suppressionOp{
		cfg: cfg.Suppression, kv: kv, js: js, out: out, errOut: errOut, now: time.Now().UTC(), fl: fl,
		w: suppression.Writer{KV: kv, Pub: bus.NewPublisher(js, bus.PublisherOptions{Worker: suppressionSource}),
			Source: schemas.Source{Worker: suppressionSource, Host: host}},
	}
	code := exitOK
	switch sub {
	case "add":
		err = op.add(ctx, positional[0])
	case "remove":
		err = op.remove(ctx, positional[0])
	case "release":
		err = op.release(ctx)
	case "list":
		err = op.list(ctx)
	case "explain":
		err = op.explain(ctx, positional[0])
	case "import":
		code, err = op.importRows(ctx, file, rows)
	case "export":
		err = op.export(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		fmt.Fprintf(errOut, "mailmon suppression %s: %v\n", sub, err)
		return exitFailure
	}
	return code
}

// check reports every problem with the flags of sub at once.
func (fl suppressionFlags) check(sub string) []string {
	var p []string
	if fl.reason != "" {
		if _, err := suppression.ParseReason(fl.reason); err != nil {
			p = append(p, "-reason: "+err.Error())
		}
	}
	switch sub {
	case "add", "remove":
		if fl.global == (fl.customer != "") {
			p = append(p, "give either -customer C or -global")
		}
		if fl.global && fl.domain {
			p = append(p, "-domain entries are per customer: -global -domain is not a list")
		}
	case "release":
		if fl.customer == "" {
			p = append(p, "-customer C is required (a release empties one customer's list, or part of it)")
		}
	case "list":
		if fl.limit < 0 {
			p = append(p, "-limit must not be negative")
		}
	}
	switch sub {
	case "add", "remove", "release", "import":
		if fl.by == "" && !fl.dryRun {
			p = append(p, "-by NAME is required ($USER is not set)")
		}
	}
	if sub == "add" {
		if fl.forDur < 0 {
			p = append(p, "-for must not be negative")
		}
		if fl.forDur > 0 && fl.until != "" {
			p = append(p, "give -for or -until, not both")
		}
		if fl.until != "" {
			if _, err := time.Parse(time.RFC3339, fl.until); err != nil {
				p = append(p, fmt.Sprintf("-until %q: not an RFC 3339 time (2027-01-31T00:00:00Z)", fl.until))
			}
		}
	}
	return p
}

// suppressionOp is one run of a suppression subcommand.
type suppressionOp struct {
	cfg         suppression.Config
	kv          jetstream.KeyValue
	js          jetstream.JetStream
	w           suppression.Writer
	out, errOut io.Writer
	now         time.Time
	fl          suppressionFlags
}

// scope is the scope the -customer, -global and -domain flags name.
func (o *suppressionOp) scope() string {
	switch {
	case o.fl.global:
		return schemas.SuppressGlobalRecipient
	case o.fl.domain:
		return schemas.SuppressCustomerDomain
	}
	return schemas.SuppressCustomerRecipient
}

// expiryKind is the suppression.expiry key for an entry of reason (and
// bounce category, for a bounce).
func suppressionExpiryKind(reason, bounceCategory string) string {
	switch reason {
	case schemas.SuppressHardBounce:
		if bounceCategory != "" {
			return bounceCategory
		}
		return "user_unknown"
	case schemas.SuppressComplaint:
		return suppression.ExpiryComplaint
	case schemas.SuppressSoftBounces:
		return suppression.ExpirySoftBounces
	case schemas.SuppressUnsubscribe:
		return suppression.ExpiryUnsubscribe
	}
	return suppression.ExpiryManual
}

// defaultExpiry is when an entry of reason made at created ends by the
// config: zero for never (also when the config does not list it).
func (o *suppressionOp) defaultExpiry(reason, bounceCategory string, created time.Time) time.Time {
	d, ok := o.cfg.ExpiryFor(suppressionExpiryKind(reason, bounceCategory))
	if !ok || d <= 0 {
		return time.Time{}
	}
	return created.Add(d)
}

// who prints an entry's target without the hash key: the address when it
// is kept in clear, else its digest.
func entryWho(e suppression.Entry) string {
	if e.Recipient != "" {
		return e.Recipient
	}
	return "hash:" + e.RecipientHash
}

func (o *suppressionOp) add(ctx context.Context, address string) error {
	t, err := o.cfg.Normalize.TargetFor(o.scope(), o.fl.customer, address)
	if err != nil {
		return err
	}
	expires := o.defaultExpiry(o.fl.reason, "", o.now)
	switch {
	case o.fl.forDur > 0:
		expires = o.now.Add(o.fl.forDur)
	case o.fl.until != "":
		expires, _ = time.Parse(time.RFC3339, o.fl.until)
		if !expires.After(o.now) {
			return fmt.Errorf("-until %s is not in the future", o.fl.until)
		}
	}
	e := suppression.NewEntry(o.cfg.Hasher(), t, o.fl.reason, o.now, expires)
	e.Operator, e.Note = o.fl.by, o.fl.note
	e.AddedID = suppression.AddedID(o.now, e.Key, "manual", o.fl.by, strconv.FormatInt(o.now.UnixNano(), 10))
	added, err := o.addEntry(ctx, e)
	if err != nil {
		return err
	}
	if !added {
		old, _, _, err := suppression.Get(ctx, o.kv, e.Key)
		if err != nil {
			return err
		}
		return fmt.Errorf("%s is already suppressed (%s %s since %s, expires %s): remove it first to change it",
			entryWho(old), old.Scope, old.Reason, old.Created.Format(time.RFC3339), suppressionExpires(old.Expires))
	}
	fmt.Fprintf(o.out, "added %s %s %s for %s, expires %s (event %s)\n", e.Scope, suppressionOwner(e.Customer), entryWho(e), e.Reason, suppressionExpires(e.Expires), e.AddedID)
	return nil
}

// addEntry adds e unless its key already holds an entry, once more if
// another writer changed the key meanwhile.
func (o *suppressionOp) addEntry(ctx context.Context, e suppression.Entry) (bool, error) {
	added, err := o.w.Add(ctx, e, nil)
	if errors.Is(err, suppression.ErrChanged) {
		added, err = o.w.Add(ctx, e, nil)
	}
	return added, err
}

func (o *suppressionOp) remove(ctx context.Context, address string) error {
	t, err := o.cfg.Normalize.TargetFor(o.scope(), o.fl.customer, address)
	if err != nil {
		return err
	}
	key := o.cfg.Hasher().Key(t)
	causeID := strconv.FormatInt(o.now.UnixNano(), 10)
	e, ok, err := o.w.Remove(ctx, key, schemas.UnsuppressManual, causeID, o.now, nil, o.fl.by, o.fl.note, nil)
	if errors.Is(err, suppression.ErrChanged) {
		e, ok, err = o.w.Remove(ctx, key, schemas.UnsuppressManual, causeID, o.now, nil, o.fl.by, o.fl.note, nil)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not on the %s list %s", t.Value, t.Scope, suppressionOwner(t.Customer))
	}
	fmt.Fprintf(o.out, "removed %s %s %s (%s since %s)\n", e.Scope, suppressionOwner(e.Customer), entryWho(e), e.Reason, e.Created.Format(time.RFC3339))
	return nil
}

func (o *suppressionOp) release(ctx context.Context) error {
	var keys []string
	var listed []suppression.Entry
	bad, err := eachSuppressionEntry(ctx, o.kv, suppression.CustomerFilter(o.fl.customer), func(e suppression.Entry) {
		if e.Customer != o.fl.customer || (o.fl.reason != "" && e.Reason != o.fl.reason) {
			return
		}
		keys = append(keys, e.Key)
		if o.fl.dryRun {
			listed = append(listed, e)
		}
	})
	if err != nil {
		return err
	}
	what := fmt.Sprintf("customer %s", o.fl.customer)
	if o.fl.reason != "" {
		what += ", reason " + o.fl.reason
	}
	if o.fl.dryRun {
		printSuppressionEntries(o.out, listed, o.now)
		fmt.Fprintf(o.out, "would release %d entries of %s (dry run: nothing changed)\n", len(keys), what)
		return unreadableEntries(bad)
	}
	causeID := "release/" + strconv.FormatInt(o.now.UnixNano(), 10)
	keep := func(e suppression.Entry) bool { return o.fl.reason != "" && e.Reason != o.fl.reason }
	var released atomic.Int64
	err = forEachParallel(ctx, len(keys), suppressionWorkers, func(ctx context.Context, i int) error {
		_, ok, err := o.w.Remove(ctx, keys[i], schemas.UnsuppressReleased, causeID, o.now, nil, o.fl.by, o.fl.note, keep)
		if errors.Is(err, suppression.ErrChanged) {
			_, ok, err = o.w.Remove(ctx, keys[i], schemas.UnsuppressReleased, causeID, o.now, nil, o.fl.by, o.fl.note, keep)
		}
		if ok {
			released.Add(1)
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(o.out, "released %d entries of %s before failing\n", released.Load(), what)
		return err
	}
	fmt.Fprintf(o.out, "released %d entries of %s\n", released.Load(), what)
	return unreadableEntries(bad)
}

func unreadableEntries(n int) error {
	if n > 0 {
		return fmt.Errorf("%d stored entries could not be read and were left alone", n)
	}
	return nil
}

// listFilter is the key filter of -customer: one customer's entries, or
// every entry.
func (o *suppressionOp) listFilter() []string {
	if o.fl.customer != "" {
		return suppression.CustomerFilter(o.fl.customer)
	}
	return []string{">"}
}

func (o *suppressionOp) list(ctx context.Context) error {
	var entries []suppression.Entry
	more := false
	stop := errors.New("limit reached")
	bad, err := eachSuppressionEntryUntil(ctx, o.kv, o.listFilter(), func(e suppression.Entry) error {
		if o.fl.reason != "" && e.Reason != o.fl.reason {
			return nil
		}
		if o.fl.limit > 0 && len(entries) == o.fl.limit {
			more = true
			return stop
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return err
	}
	if o.fl.asJSON {
		if err := writeJSONLines(o.out, entries); err != nil {
			return err
		}
	} else {
		if len(entries) == 0 {
			fmt.Fprintln(o.out, "no entries")
		}
		printSuppressionEntries(o.out, entries, o.now)
	}
	if more {
		fmt.Fprintf(o.errOut, "more entries than -limit %d; -limit 0 lists them all\n", o.fl.limit)
	}
	return unreadableEntries(bad)
}

func printSuppressionEntries(out io.Writer, entries []suppression.Entry, now time.Time) {
	if len(entries) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tCUSTOMER\tRECIPIENT\tDOMAIN\tREASON\tCREATED\tEXPIRES\tBY")
	for _, e := range entries {
		exp := suppressionExpires(e.Expires)
		if !e.Active(now) {
			exp += " (expired)"
		}
		reason := e.Reason
		if e.BounceCategory != "" {
			reason += "/" + e.BounceCategory
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Scope, orDash(e.Customer), entryWho(e), e.RecipientDomain, reason,
			e.Created.Format(time.RFC3339), exp, orDash(e.Operator))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func suppressionExpires(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func suppressionOwner(c string) string {
	if c == "" {
		return "(global)"
	}
	return "of customer " + c
}

func (o *suppressionOp) explain(ctx context.Context, address string) error {
	n := o.cfg.Normalize
	addr, domain, err := n.Address(address)
	if err != nil {
		return err
	}
	h := o.cfg.Hasher()
	fmt.Fprintf(o.out, "address: %s (domain %s)\n", addr, domain)
	if h.Keyed() {
		fmt.Fprintln(o.out, "addresses are stored as keyed digests (suppression.hash_key)")
	}
	checks := h.RequestKeys(o.fl.customer, addr, domain)
	if o.fl.customer != "" {
		dry := "no"
		if o.cfg.DryRun(o.fl.customer) {
			dry = "yes: its entries are counted, not enforced (suppression.dry_run_customers)"
		}
		fmt.Fprintf(o.out, "customer: %s (dry run: %s)\n", o.fl.customer, dry)
	} else {
		fmt.Fprintln(o.out, "customer: none given (-customer C also checks that customer's address and domain entries)")
	}
	fmt.Fprintln(o.out, "keys checked:")
	inForce := 0
	keys := map[string]string{}
	for _, c := range checks {
		keys[c.Key] = c.Scope
		e, _, found, err := suppression.Get(ctx, o.kv, c.Key)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(o.out, "  %-18s %s: none\n", c.Scope, c.Key)
			continue
		}
		state := "in force"
		if !e.Active(o.now) {
			state = "expired, not enforced (the suppressor's sweep removes it)"
		} else {
			inForce++
		}
		fmt.Fprintf(o.out, "  %-18s %s: %s\n", c.Scope, c.Key, state)
		reason := e.Reason
		if e.BounceCategory != "" || e.Status != "" {
			reason += fmt.Sprintf(" (%s %s)", e.BounceCategory, e.Status)
		}
		fmt.Fprintf(o.out, "    reason: %s\n    created: %s (event %s)\n    expires: %s\n", reason, e.Created.Format(time.RFC3339), e.AddedID, suppressionExpires(e.Expires))
		if len(e.SourceEventIDs) > 0 {
			fmt.Fprintf(o.out, "    source events: %s\n", strings.Join(e.SourceEventIDs, ", "))
		}
		if e.Reply != "" {
			fmt.Fprintf(o.out, "    reply: %s\n", e.Reply)
		}
		if e.Operator != "" || e.Note != "" {
			fmt.Fprintf(o.out, "    by: %s %s\n", orDash(e.Operator), e.Note)
		}
	}
	switch {
	case inForce == 0:
		fmt.Fprintln(o.out, "verdict: not suppressed")
	case o.cfg.DryRun(o.fl.customer):
		fmt.Fprintln(o.out, "verdict: suppressed, but the customer is in dry run: mail flows, the policy service counts it")
	default:
		fmt.Fprintf(o.out, "verdict: suppressed: the policy service answers REJECT %s\n", o.cfg.RejectText)
	}
	var start time.Time
	if o.fl.since > 0 {
		start = o.now.Add(-o.fl.since)
	}
	return printSuppressionHistory(ctx, o.js, keys, start, suppressionHistoryBudget, o.out)
}

// suppressionHistoryBudget bounds the time explain reads the SUPPRESSION
// stream: the events do not name their key in the subject, so every
// event is read and matched.
const suppressionHistoryBudget = 20 * time.Second

// printSuppressionHistory lists the SUPPRESSION stream's events about
// keys (key → scope), from start (zero: the stream's first), for at most
// budget.
func printSuppressionHistory(ctx context.Context, js jetstream.JetStream, keys map[string]string, start time.Time, budget time.Duration, out io.Writer) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mailmon.suppression.>"}}
	if !start.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.OrderedConsumer(ctx, "SUPPRESSION", cfg)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		if start.IsZero() {
			fmt.Fprintln(out, "history: none in the SUPPRESSION stream")
		} else {
			fmt.Fprintf(out, "history: none in the SUPPRESSION stream since %s\n", start.UTC().Format(time.RFC3339))
		}
		return nil
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer iter.Stop()
	fmt.Fprintln(out, "history:")
	found, read, began := 0, 0, time.Now()
	for {
		msg, err := iter.Next()
		if err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		read++
		if ev, err := schemas.Decode(msg.Data()); err == nil {
			t := ev.EventHeader().Time.UTC().Format(time.RFC3339)
			switch e := ev.(type) {
			case *schemas.SuppressionAdded:
				if scope, ok := keys[e.Key]; ok {
					found++
					fmt.Fprintf(out, "  %s added   %-18s %s expires %s by %s/%s %s (%s)\n", t, scope, e.Reason, suppressionExpires(e.Expires),
						e.Source.Worker, orDash(e.Operator), e.Note, e.ID)
				}
			case *schemas.SuppressionRemoved:
				if scope, ok := keys[e.Key]; ok {
					found++
					fmt.Fprintf(out, "  %s removed %-18s %s (%s) after %s by %s/%s %s (%s)\n", t, scope, e.Reason, e.Cause,
						(time.Duration(e.HeldMs) * time.Millisecond).Round(time.Second), e.Source.Worker, orDash(e.Operator), e.Note, e.ID)
				}
			}
		}
		md, err := msg.Metadata()
		if err != nil || md.NumPending == 0 {
			if found == 0 {
				fmt.Fprintln(out, "  none for these keys")
			}
			return nil
		}
		if time.Since(began) > budget {
			fmt.Fprintf(out, "  incomplete: stopped after %d events in %s, %d newer ones not read; narrow it with -since\n",
				read, budget, md.NumPending)
			return nil
		}
	}
}

// readImport reads and checks a whole import file (- is standard input).
func readSuppressionImport(file string) (suppression.CSVResult, error) {
	in := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return suppression.CSVResult{}, err
		}
		defer f.Close()
		in = f
	}
	return suppression.ReadCSV(in, suppression.DefaultCSVLimits())
}

// importEntry builds the entry of an import row: customer, scope and
// reason from its columns, else from the flags; expiry from its column,
// else from suppression.expiry counted from its creation.
func (o *suppressionOp) importEntry(r suppression.CSVRow, file string) (e suppression.Entry, seed []string, err error) {
	customer := r.Customer
	if customer == "" && r.Scope != schemas.SuppressGlobalRecipient {
		customer = o.fl.customer
	}
	scope := r.Scope
	if scope == "" {
		scope = schemas.SuppressCustomerRecipient
		if customer == "" {
			return suppression.Entry{}, nil, errors.New("no customer: give -customer C, a customer column, or scope global_recipient")
		}
	}
	reason := r.Reason
	if reason == "" {
		reason = o.fl.reason
	}
	created := r.Created
	if created.IsZero() {
		created = o.now
	}
	expires := r.Expires
	if expires.IsZero() {
		expires = o.defaultExpiry(reason, r.BounceCategory, created)
	}
	h := o.cfg.Hasher()
	if r.Email != "" {
		t, err := o.cfg.Normalize.TargetFor(scope, customer, r.Email)
		if err != nil {
			return suppression.Entry{}, nil, err
		}
		e = suppression.NewEntry(h, t, reason, created, expires)
	} else {
		// A row of an export of hashed addresses: the digest is the key,
		// which matches only under the hash key it was exported with.
		if !h.Keyed() {
			return suppression.Entry{}, nil, errors.New("a row with only recipient_hash needs suppression.hash_key, the key it was exported under")
		}
		if scope != schemas.SuppressGlobalRecipient && customer == "" {
			return suppression.Entry{}, nil, fmt.Errorf("scope %s needs a customer", scope)
		}
		if scope == schemas.SuppressGlobalRecipient {
			customer = ""
		}
		e = suppression.Entry{
			SuppressionTarget: schemas.SuppressionTarget{
				Key: suppression.KeyOf(scope, customer, r.RecipientHash), Scope: scope, Customer: customer,
				RecipientHash: r.RecipientHash, RecipientDomain: r.RecipientDomain,
			},
			Reason: reason, Created: created.UTC(), Expires: expires.UTC(),
		}
		if expires.IsZero() {
			e.Expires = time.Time{}
		}
	}
	e.BounceCategory, e.Status = r.BounceCategory, r.Status
	e.Operator, e.Note = o.fl.by, r.Note
	if e.Note == "" {
		e.Note = "import " + filepath.Base(file)
	}
	// The id comes from the row (see importRows).
	seed = []string{"import", e.Reason, r.Email, r.RecipientHash, r.Created.Format(time.RFC3339Nano),
		r.Expires.Format(time.RFC3339Nano), r.BounceCategory, r.Status, r.Note}
	return e, seed, nil
}

// suppressionWorkers is how many rows an import writes at once: each row is
// a few round trips to NATS, so a handful in flight hides their latency.
const suppressionWorkers = 8

// Outcomes of an import row.
const (
	importAdded = iota + 1
	importPresent
	importExpired
	importRepeated
)

func (o *suppressionOp) importRows(ctx context.Context, file string, res suppression.CSVResult) (int, error) {
	for _, e := range res.Errors {
		fmt.Fprintf(o.errOut, "line %d: %v\n", e.Line, e.Err)
	}
	if res.ErrorCount > len(res.Errors) {
		fmt.Fprintf(o.errOut, "... and %d more bad lines\n", res.ErrorCount-len(res.Errors))
	}
	errs := res.ErrorCount
	// First every row's entry, in file order: a row that cannot be one is
	// reported, a second row for a key already seen counts as a duplicate.
	count := map[int]int{}
	type item struct {
		e    suppression.Entry
		seed []string
	}
	var todo []item
	seen := map[string]bool{}
	for _, r := range res.Rows {
		e, seed, err := o.importEntry(r, file)
		switch {
		case err != nil:
			if errs < 100 {
				fmt.Fprintf(o.errOut, "line %d: %v\n", r.Line, err)
			}
			errs++
		case !e.Active(o.now):
			count[importExpired]++
		case seen[e.Key]:
			count[importRepeated]++
		default:
			seen[e.Key] = true
			todo = append(todo, item{e, seed})
		}
	}
	stream, err := o.js.Stream(ctx, suppressionStream)
	if err != nil {
		return exitFailure, fmt.Errorf("bucket %s: %w", suppression.Bucket, err)
	}
	outcome := make([]int, len(todo))
	err = forEachParallel(ctx, len(todo), suppressionWorkers, func(ctx context.Context, i int) error {
		e := todo[i].e
		old, found, generation, err := lastSuppressionRecord(ctx, stream, e.Key)
		if err != nil {
			return err
		}
		if found {
			outcome[i] = importPresent
			// This row's own entry, from an earlier import of it: Add
			// publishes its event again (the same id), in case that import
			// stopped between the entry and its event.
			mine := e
			mine.AddedID = old.AddedID
			if !o.fl.dryRun && bytes.Equal(mine.Marshal(), old.Marshal()) {
				if _, err := o.addEntry(ctx, mine); err != nil {
					return fmt.Errorf("%s: %w", entryWho(e), err)
				}
			}
			return nil
		}
		if o.fl.dryRun {
			outcome[i] = importAdded
			return nil
		}
		// The id comes from the row and from the key's last deletion: the
		// same row imported again is the same entry, and after the entry
		// was removed, a new one with a new event (an event id used twice
		// would be dropped as a duplicate).
		e.AddedID = suppression.AddedID(e.Created, e.Key, append(todo[i].seed, "after", strconv.FormatUint(generation, 10))...)
		ok, err := o.addEntry(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: %w", entryWho(e), err)
		}
		outcome[i] = importPresent
		if ok {
			outcome[i] = importAdded
		}
		return nil
	})
	for _, oc := range outcome {
		count[oc]++
	}
	if err != nil {
		fmt.Fprintf(o.out, "import %s: %d added, %d already suppressed before failing\n", file, count[importAdded], count[importPresent])
		return exitFailure, err
	}
	verb := "added"
	if o.fl.dryRun {
		verb = "would be added (dry run: nothing changed)"
	}
	fmt.Fprintf(o.out, "import %s: %d %s, %d skipped (%d already suppressed, %d expired, %d repeated in the file), %d errors\n",
		file, count[importAdded], verb, count[importPresent]+count[importExpired]+count[importRepeated], count[importPresent], count[importExpired], count[importRepeated], errs)
	if errs > 0 {
		return exitFailure, nil
	}
	return exitOK, nil
}

// suppressionStream is the stream that holds the suppression bucket.
const suppressionStream = "KV_" + suppression.Bucket

// lastRecord reads the last record of key in the bucket's stream: the
// entry stored under it (found), else the sequence of its deletion
// (generation; 0 when the key never held an entry).
func lastSuppressionRecord(ctx context.Context, stream jetstream.Stream, key string) (e suppression.Entry, found bool, generation uint64, err error) {
	msg, err := stream.GetLastMsgForSubject(ctx, "$KV."+suppression.Bucket+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return suppression.Entry{}, false, 0, nil
	}
	if err != nil {
		return suppression.Entry{}, false, 0, fmt.Errorf("suppression: get %s: %w", key, err)
	}
	if op := msg.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return suppression.Entry{}, false, msg.Sequence, nil
	}
	e, err = suppression.Unmarshal(msg.Data)
	if err != nil {
		return suppression.Entry{}, false, 0, fmt.Errorf("suppression: %s: %w", key, err)
	}
	return e, true, msg.Sequence, nil
}

// forEachParallel calls fn for 0..n-1 on up to workers goroutines. The first
// error stops the rest and is returned.
func forEachParallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (o *suppressionOp) export(ctx context.Context) error {
	cw := suppression.NewCSVWriter(o.out)
	var werr error
	bad, err := eachSuppressionEntryUntil(ctx, o.kv, o.listFilter(), func(e suppression.Entry) error {
		if (o.fl.reason != "" && e.Reason != o.fl.reason) || !e.Active(o.now) {
			return nil
		}
		werr = cw.Write(suppression.CSVRowOf(e))
		return werr
	})
	if err != nil {
		return err
	}
	if err := cw.Flush(); err != nil {
		return err
	}
	return unreadableEntries(bad)
}

// eachEntry calls fn with every stored entry under filters (KV key
// filters), in the order they were written; bad counts values that do not
// decode.
func eachSuppressionEntry(ctx context.Context, kv jetstream.KeyValue, filters []string, fn func(suppression.Entry)) (bad int, err error) {
	return eachSuppressionEntryUntil(ctx, kv, filters, func(e suppression.Entry) error { fn(e); return nil })
}

// eachEntryUntil is eachEntry stopping at fn's first error, which it
// returns.
func eachSuppressionEntryUntil(ctx context.Context, kv jetstream.KeyValue, filters []string, fn func(suppression.Entry) error) (bad int, err error) {
	w, err := kv.WatchFiltered(ctx, append([]string(nil), filters...), jetstream.IgnoreDeletes())
	if err != nil {
		return 0, fmt.Errorf("read bucket %s: %w", suppression.Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return bad, ctx.Err()
		case kve, ok := <-w.Updates():
			if !ok {
				return bad, fmt.Errorf("read bucket %s: watch ended", suppression.Bucket)
			}
			if kve == nil {
				return bad, nil // every stored entry seen
			}
			if kve.Operation() != jetstream.KeyValuePut {
				continue
			}
			e, err := suppression.Unmarshal(kve.Value())
			if err != nil {
				bad++
				continue
			}
			if err := fn(e); err != nil {
				return bad, err
			}
		}
	}
}
