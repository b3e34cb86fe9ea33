package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
)

// The enforcement scenario: many customers with deliveries and complaints,
// a few of them pushed over the act threshold one by one. It measures how
// long from the complaint that crosses the threshold being published to
// the policy service answering the new action, as Postfix would ask it;
// whether any customer under the threshold was ever refused or rerouted;
// and whether every decision was released on time.
const (
	enforcementWorkers = "complaint-evaluator,policy-service"
	// enforceTargetP99 and releaseTolerance are the targets the exit status
	// checks: p99 <= 1 s, and a release seen by the policy service within
	// a second of the decision's until.
	enforceTargetP99 = time.Second
	releaseTolerance = time.Second
	// probeEvery spaces a prober's policy requests while it waits.
	probeEvery = 2 * time.Millisecond
)

type enforcementOptions struct {
	customers, bad, deliveries int
	ttl, timeout, spacing      time.Duration
	keep                       bool
}

func parseEnforcementFlags(args []string, stderr io.Writer) (enforcementOptions, error) {
	fs := flag.NewFlagSet("enforcement", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o enforcementOptions
	fs.IntVar(&o.customers, "customers", 300, "customers sending mail")
	fs.IntVar(&o.bad, "bad", 30, "customers among them pushed over the act threshold (0.3 %)")
	fs.IntVar(&o.deliveries, "deliveries", 1000, "deliveries per customer (the rate's denominator; at least 500)")
	fs.DurationVar(&o.ttl, "ttl", 5*time.Second, "length of a first offence (the decisions' TTL)")
	fs.DurationVar(&o.spacing, "spacing", 20*time.Millisecond, "time between two crossing complaints")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, log, NATS data)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if o.customers < 2 || o.bad < 1 || o.bad >= o.customers {
		problems = append(problems, "-bad must be at least 1 and below -customers")
	}
	if o.deliveries < 500 {
		problems = append(problems, "-deliveries must be at least 500 (the scenario's min_delivered)")
	}
	if o.ttl < time.Second || o.timeout <= 0 || o.spacing < 0 {
		problems = append(problems, "-ttl must be at least 1s, -timeout positive, -spacing not negative")
	}
	return o, joinProblems(problems)
}

// enforcementResult is the JSON line the scenario ends with.
type enforcementResult struct {
	Scenario   string  `json:"scenario"`
	Customers  int     `json:"customers"`
	Bad        int     `json:"bad"`
	Deliveries int     `json:"deliveries"`
	Complaints int     `json:"complaints"`
	Decisions  int     `json:"decisions"`
	Enforced   int     `json:"enforced"`
	EnforceP50 int64   `json:"enforce_p50_ms"`
	EnforceP99 int64   `json:"enforce_p99_ms"`
	EnforceMax int64   `json:"enforce_max_ms"`
	Wrongly    int     `json:"wrongly_blocked"`
	WrongAsked int     `json:"wrongly_blocked_checks"`
	Released   bool    `json:"released"`
	ReleaseLag int64   `json:"release_lag_max_ms"`
	ReplayS    float64 `json:"ingest_s"`
	ElapsedS   float64 `json:"elapsed_s"`
	Error      string  `json:"error,omitempty"`
	KeptDir    string  `json:"kept_dir,omitempty"`
}

func (r enforcementResult) ok() bool {
	return r.Error == "" && r.Enforced == r.Bad && r.EnforceP99 <= enforceTargetP99.Milliseconds() && r.Wrongly == 0 && r.Released
}

func runEnforcement(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseEnforcementFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "enforcement", err)
	}
	started := time.Now()
	res := enforcementResult{Scenario: "enforcement", Customers: opts.customers, Bad: opts.bad}
	e := &enforcementRun{opts: opts, res: &res, log: stderr}
	if err := e.run(ctx); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "enforcement", res, res.ok())
}

type enforcementRun struct {
	opts enforcementOptions
	res  *enforcementResult
	log  io.Writer

	js         jetstream.JetStream
	httpPort   int
	policyAddr string
	child      *child

	wrongMu sync.Mutex
	wrong   map[string]string // good customer → the answer it got
}

func customerName(i int) string { return fmt.Sprintf("cust-%05d", i) }

// bad customers are the first opts.bad.
func (e *enforcementRun) isBad(i int) bool { return i < e.opts.bad }

func (e *enforcementRun) run(parent context.Context) (err error) {
	ctx, cancel := context.WithTimeout(parent, e.opts.timeout)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, endDir, err := tempRunDir("mailmon-loadtest-enforcement-", e.opts.keep, &e.res.KeptDir, e.log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	progress(e.log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}
	cfgPath, natsPort, err := e.writeConfig(dir)
	if err != nil {
		return err
	}
	e.child, err = startChild(bin, cfgPath, enforcementWorkers)
	if err != nil {
		return err
	}
	defer func() {
		if err := e.child.stop(); err != nil {
			progress(e.log, "stop: %v", err)
		}
	}()
	if err := e.child.waitReady(ctx, e.httpPort); err != nil {
		return err
	}
	nc, err := connectChildNATS(cfgPath, natsPort)
	if err != nil {
		return err
	}
	defer nc.Close()
	if e.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192)); err != nil {
		return err
	}

	// 1. Deliveries for everyone, and complaints under the act threshold:
	// good customers 0-2 per 1000 (up to 0.2 %), bad customers 2.
	ingest := time.Now()
	var evs []schemas.Event
	now := time.Now()
	for i := range e.opts.customers {
		c := customerName(i)
		for j := range e.opts.deliveries {
			evs = append(evs, delivered(c, j, now.Add(-10*time.Minute)))
		}
	}
	perThousand := func(n int) int { return n * e.opts.deliveries / 1000 }
	act := (3*e.opts.deliveries + 999) / 1000 // complaints that reach 0.3 %
	complaints := 0
	for i := range e.opts.customers {
		n := min(perThousand(i%3), act-1) // good: 0, 1 or 2 per 1000
		if e.isBad(i) {
			n = act - 1 // one short of 0.3 %
		}
		for range n {
			evs = append(evs, complained(customerName(i), now.Add(-time.Minute)))
			complaints++
		}
	}
	e.res.Deliveries = e.opts.customers * e.opts.deliveries
	progress(e.log, "publishing %d deliveries, then %d complaints under the threshold", e.res.Deliveries, complaints)
	// Complaints come hours after the mail they are about: publish the
	// deliveries first and let the evaluator count them, so complaints are
	// judged against the whole denominator.
	if err := e.publish(ctx, evs[:e.res.Deliveries]...); err != nil {
		return err
	}
	if err := e.waitCounted(ctx, e.res.Deliveries, 0); err != nil {
		return err
	}
	if err := e.publish(ctx, evs[e.res.Deliveries:]...); err != nil {
		return err
	}
	if err := e.waitCounted(ctx, e.res.Deliveries, complaints); err != nil {
		return err
	}
	e.res.ReplayS = round(time.Since(ingest).Seconds(), 3)
	progress(e.log, "evaluator counted everything after %.1fs", time.Since(ingest).Seconds())

	// 2. Good customers are asked about all the time: any answer other
	// than DUNNO is a customer wrongly blocked.
	e.wrong = map[string]string{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watchers sync.WaitGroup
	defer watchers.Wait()
	for w := range 4 {
		watchers.Go(func() { e.watchGood(watchCtx, w, 4) })
	}

	// 3. The crossing complaints, one bad customer at a time, each timed
	// until the policy service answers the cut-off.
	progress(e.log, "pushing %d customers over the threshold", e.opts.bad)
	lat := make([]time.Duration, e.opts.bad)
	enforcedAt := make([]time.Time, e.opts.bad)
	errs := make([]error, e.opts.bad)
	var probes sync.WaitGroup
	for i := range e.opts.bad {
		ev := complained(customerName(i), time.Now())
		published := time.Now()
		if err := e.publishOne(ctx, ev); err != nil {
			return err
		}
		complaints++
		probes.Go(func() {
			at, err := e.waitAnswer(ctx, customerName(i), func(a string) bool { return a != "DUNNO" })
			lat[i], enforcedAt[i], errs[i] = at.Sub(published), at, err
		})
		time.Sleep(e.opts.spacing)
	}
	probes.Wait()
	e.res.Complaints = complaints
	var ok []time.Duration
	for i, err := range errs {
		if err != nil {
			progress(e.log, "%s never enforced: %v", customerName(i), err)
			continue
		}
		ok = append(ok, lat[i])
	}
	e.res.Enforced = len(ok)
	slices.Sort(ok)
	if len(ok) > 0 {
		e.res.EnforceP50 = ok[len(ok)/2].Milliseconds()
		e.res.EnforceP99 = ok[min(len(ok)-1, (len(ok)*99+99)/100-1)].Milliseconds()
		e.res.EnforceMax = ok[len(ok)-1].Milliseconds()
	}
	progress(e.log, "enforced %d/%d: p50 %dms p99 %dms max %dms", len(ok), e.opts.bad, e.res.EnforceP50, e.res.EnforceP99, e.res.EnforceMax)

	// 4. Releases: every bad customer answered DUNNO again by its
	// decision's until (+ tolerance), and a release event for every
	// decision, at its until.
	decisions, err := e.decisions(ctx)
	if err != nil {
		return err
	}
	e.res.Decisions = len(decisions)
	released := len(decisions) == e.opts.bad
	var relProbes sync.WaitGroup
	lags := make([]time.Duration, e.opts.bad)
	relErrs := make([]error, e.opts.bad)
	for i := range e.opts.bad {
		d, found := decisions[customerName(i)]
		if !found {
			released = false
			continue
		}
		relProbes.Go(func() {
			at, err := e.waitAnswer(ctx, customerName(i), func(a string) bool { return a == "DUNNO" })
			lags[i], relErrs[i] = at.Sub(d.Until), err
		})
	}
	relProbes.Wait()
	stopWatch()
	watchers.Wait()
	for i := range e.opts.bad {
		if relErrs[i] != nil {
			released = false
			continue
		}
		e.res.ReleaseLag = max(e.res.ReleaseLag, lags[i].Milliseconds())
		if lags[i] > releaseTolerance || lags[i] < -50*time.Millisecond {
			released = false
		}
	}
	if err := e.checkReleaseEvents(ctx, decisions); err != nil {
		progress(e.log, "release events: %v", err)
		released = false
	}
	e.res.Released = released
	e.wrongMu.Lock()
	e.res.Wrongly = len(e.wrong)
	for c, a := range e.wrong {
		progress(e.log, "wrongly blocked: %s got %q", c, a)
	}
	e.wrongMu.Unlock()
	// A decision about a good customer is a wrong block too, even if no
	// probe happened to see it.
	for c := range decisions {
		if i, _ := strconv.Atoi(strings.TrimPrefix(c, "cust-")); !e.isBad(i) {
			e.res.Wrongly++
		}
	}
	progress(e.log, "released on time: %v (max lag %dms); wrongly blocked: %d", released, e.res.ReleaseLag, e.res.Wrongly)
	return e.child.failed()
}

func (e *enforcementRun) writeConfig(dir string) (string, int, error) {
	p, err := freePorts()
	if err != nil {
		return "", 0, err
	}
	e.httpPort = p.HTTP
	e.policyAddr = fmt.Sprintf("127.0.0.1:%d", p.ClickHouseTCP) // a free port; ClickHouse is not used
	doc := childConfigHead("# Written by the mailmon load-test harness (enforcement scenario).", dir, p.HTTP, p.NATS) + fmt.Sprintf(`complaint_evaluator:
  windows: [1h, 24h]
  customer:
    warn_rate: 0.001
    act_rate: 0.003
    min_delivered: 500
    act: true
    action: cutoff
  customer_provider:
    warn_rate: 0
    act_rate: 0
    action: reroute
  source_ip:
    warn_rate: 0
    act_rate: 0
    action: reroute
  decisions:
    first: %s
    cutoff_action: REJECT
    cutoff_status: 5.7.1
  tick: 100ms
policy_service:
  listen: %q
`, e.opts.ttl, e.policyAddr)
	path := filepath.Join(dir, "mailmon.yaml")
	return path, p.NATS, os.WriteFile(path, []byte(doc), 0o600)
}

func delivered(customer string, j int, at time.Time) schemas.Event {
	providers := []string{"gmail", "yahoo", "outlook"}
	p := providers[j%len(providers)]
	ev := &schemas.DeliveryAttempted{
		OutgoingMessage: schemas.OutgoingMessage{Customer: customer, SourceIP: fmt.Sprintf("192.0.2.%d", j%8+1), Provider: p, RecipientDomain: p + ".test"},
		TrackingStatus:  schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mx", Recipient: fmt.Sprintf("r%d@%s.test", j, p),
		Status: schemas.StatusSent, DelayMs: -1, DelayBeforeQmgrMs: -1, DelayInQmgrMs: -1, DelayConnSetupMs: -1, DelayTransmissionMs: -1,
	}
	schemas.Stamp(ev, schemas.Source{Worker: "loadtest", Host: "loadtest"}, at)
	return ev
}

func complained(customer string, at time.Time) schemas.Event {
	ev := &schemas.ComplaintReceived{Customer: customer, SourceIP: "192.0.2.1", Provider: "yahoo", TraceMethod: schemas.TraceTrackingHeader,
		Counted: true, Trusted: true, Trust: schemas.TrustTrustedInput, Format: "arf", ReceivedVia: schemas.ReceivedViaFile, FeedbackType: "abuse"}
	schemas.Stamp(ev, schemas.Source{Worker: "loadtest", Host: "loadtest"}, at)
	return ev
}

func message(ev schemas.Event) (*nats.Msg, error) {
	k, err := schemas.KindOf(ev)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: k.Subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{ev.EventHeader().ID}}}, nil
}

func (e *enforcementRun) publish(ctx context.Context, evs ...schemas.Event) error {
	for _, ev := range evs {
		m, err := message(ev)
		if err != nil {
			return err
		}
		for {
			_, err := e.js.PublishMsgAsync(m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return err
			}
			select { // let the acks catch up
			case <-e.js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *enforcementRun) publishOne(ctx context.Context, ev schemas.Event) error {
	m, err := message(ev)
	if err != nil {
		return err
	}
	_, err = e.js.PublishMsg(ctx, m)
	return err
}

// waitCounted polls the evaluator's metrics until it has read the events.
func (e *enforcementRun) waitCounted(ctx context.Context, deliveries, complaints int) error {
	want := map[string]int{schemas.TypeDeliveryAttempted: deliveries, schemas.TypeComplaintReceived: complaints}
	for {
		got, err := e.eventsRead(ctx)
		if err == nil && got[schemas.TypeDeliveryAttempted] >= want[schemas.TypeDeliveryAttempted] && got[schemas.TypeComplaintReceived] >= want[schemas.TypeComplaintReceived] {
			return nil
		}
		if err := e.child.failed(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("evaluator read %v of %v: %w", got, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// eventsRead parses mailmon_complaint_evaluator_events_total by type.
func (e *enforcementRun) eventsRead(ctx context.Context) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", e.httpPort), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	const prefix = `mailmon_complaint_evaluator_events_total{type="`
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		typ, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		out[typ] = int(f)
	}
	return out, sc.Err()
}

func (e *enforcementRun) dialPolicy() (*policyClient, error) { return dialPolicyClient(e.policyAddr) }

// enforcementRequest is a Postfix request about customer's mail.
func enforcementRequest(customer string) string {
	return "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=203.0.113.5\n" +
		"sasl_method=plain\nsasl_username=" + customer + "\nsender=news@" + customer + ".example\nrecipient=someone@yahoo.com\n\n"
}

// waitAnswer asks about customer until done accepts the answer, and
// returns when the accepted answer arrived.
func (e *enforcementRun) waitAnswer(ctx context.Context, customer string, done func(string) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ttl+30*time.Second)
	defer cancel()
	p, err := e.dialPolicy()
	if err != nil {
		return time.Time{}, err
	}
	defer p.c.Close()
	for {
		a, _, err := p.ask(enforcementRequest(customer))
		if err != nil {
			return time.Time{}, err
		}
		if done(a) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("last answer %q: %w", a, ctx.Err())
		case <-time.After(probeEvery):
		}
	}
}

// watchGood asks about the good customers of its share, round and round.
func (e *enforcementRun) watchGood(ctx context.Context, w, of int) {
	p, err := e.dialPolicy()
	if err != nil {
		progress(e.log, "watcher %d: %v", w, err)
		return
	}
	defer p.c.Close()
	for ctx.Err() == nil {
		for i := e.opts.bad + w; i < e.opts.customers && ctx.Err() == nil; i += of {
			a, _, err := p.ask(enforcementRequest(customerName(i)))
			if err != nil {
				return
			}
			e.wrongMu.Lock()
			e.res.WrongAsked++
			if a != "DUNNO" {
				e.wrong[customerName(i)] = a
			}
			e.wrongMu.Unlock()
		}
	}
}

type decisionSeen struct {
	ID    string
	Until time.Time
}

// decisions reads the DECISION stream: the cut-offs by customer.
func (e *enforcementRun) decisions(ctx context.Context) (map[string]decisionSeen, error) {
	out := map[string]decisionSeen{}
	err := e.readDecisions(ctx, func(ev schemas.Event) {
		if c, ok := ev.(*schemas.DecisionCutoff); ok {
			out[c.Customer] = decisionSeen{ID: c.ID, Until: c.Until}
		}
	})
	return out, err
}

func (e *enforcementRun) checkReleaseEvents(ctx context.Context, decisions map[string]decisionSeen) error {
	want := map[string]time.Time{}
	for _, d := range decisions {
		want[d.ID] = d.Until
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]time.Time{}
		if err := e.readDecisions(ctx, func(ev schemas.Event) {
			if r, ok := ev.(*schemas.DecisionRelease); ok {
				got[r.DecisionID] = r.Time
			}
		}); err != nil {
			return err
		}
		var missing []string
		for id, until := range want {
			t, ok := got[id]
			if !ok {
				missing = append(missing, id)
			} else if !t.Equal(until.Truncate(time.Millisecond)) {
				return fmt.Errorf("release of %s at %s, until was %s", id, t, until)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d decisions without a release event", len(missing))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *enforcementRun) readDecisions(ctx context.Context, f func(schemas.Event)) error {
	top, err := pipelines.Default()
	if err != nil {
		return err
	}
	st, ok := top.StreamFor(schemas.SubjectDecisionCutoff)
	if !ok {
		return errors.New("no stream for decisions")
	}
	cons, err := e.js.OrderedConsumer(ctx, st.Name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if ev, err := schemas.Decode(m.Data()); err == nil {
				f(ev)
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return batch.Error()
		}
		if n == 0 {
			return nil
		}
	}
}
