package complaintevaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// The checkpoint mirrors these fields one by one (checkpoint.go). A field
// added to the engine's state and not to the checkpoint would be lost at
// every restart from a checkpoint: this test names them all, so adding one
// fails here until the checkpoint carries it (and checkpointVersion is
// bumped).
func TestCheckpointCoversEveryField(t *testing.T) {
	want := map[reflect.Type][]string{
		reflect.TypeFor[Engine]():       {"cfg", "src", "subjects", "complaint", "delivery", "decisions", "ended", "Replaying", "Hold", "lastGC", "stats", "alerts"},
		reflect.TypeFor[subjectState](): {"s", "windows", "hits", "samples", "since", "active", "offences", "alerted"},
		reflect.TypeFor[Window]():       {"Length", "step", "n", "buckets", "total"},
		reflect.TypeFor[idSet]():        {"ttl", "cur", "prev", "rotated"},
		reflect.TypeFor[alertState](): {"conds", "published", "streaks", "listings", "spam", "latency", "delisted", "stillRejected", "signals",
			"reports", "reportsJudged"},
		reflect.TypeFor[condition]():      {"rule", "subject", "dedupeKey", "firing", "severity", "members", "summary", "evidence", "eventIDs", "sourceIP", "provider", "probeID"},
		reflect.TypeFor[publishedAlert](): {"status", "severity", "members"},
		reflect.TypeFor[streak]():         {"count", "lastGood", "failedSent", "ids", "last", "sourceIP", "provider", "probeID"},
		reflect.TypeFor[zoneListing]():    {"list", "delistURL", "txt", "weight", "answerCodes", "eventID"},
		reflect.TypeFor[placements]():     {"spam", "ids", "sourceIP", "provider"},
		reflect.TypeFor[latencySample]():  {"at", "ms", "id"},
		reflect.TypeFor[delisting]():      {"at", "zone", "list"},
		reflect.TypeFor[reportAgg]():      {"rule", "subject", "key", "sourceIP", "reporter", "domain", "entries", "bad", "all", "perDay", "minEnd"},
		reflect.TypeFor[reportEntry](): {"end", "day", "bad", "all", "rejected", "quarantined", "reportID", "reporter", "domain", "headerFrom",
			"kinds"},
		reflect.TypeFor[sample](): {"id", "t"},
		reflect.TypeFor[Stats]():  {"Complaints", "Deliveries", "Listings", "Missing", "Rejections", "Duplicates", "Ignored", "Stale"},
	}
	for typ, fields := range want {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s has fields %v; the checkpoint carries %v: update checkpoint.go (snapshot, restoreEngine), bump checkpointVersion, then this list", typ.Name(), got, fields)
		}
	}
}

// An engine fed a bit of everything, snapshotted, encoded, decoded and
// restored, snapshots the same again; the configuration hash tells
// configurations apart.
func TestCheckpointRoundTrip(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := testConfig()
	e := NewEngine(cfg, src)
	var evs []schemas.Event
	evs = append(evs, deliveries(300, "acme", "192.0.2.10", "gmail", c.at(-2*time.Hour))...)
	evs = append(evs, complaints(2, "acme", "192.0.2.10", "gmail", c.at(-time.Hour))...)
	evs = append(evs, complaints(4, "bad", "192.0.2.11", "yahoo", c.at(-time.Minute))...)
	evs = append(evs, deliveries(150, "bad", "192.0.2.11", "yahoo", c.at(-time.Hour))...)
	rej := delivery("acme", "192.0.2.10", "gmail", schemas.StatusBounced, c.at(-time.Minute))
	rej.Category = "blocked_ip_or_blocklist"
	evs = append(evs, rej)
	end := c.at(-time.Hour)
	evs = append(evs, &schemas.DMARCRecord{Header: schemas.Header{ID: nextID(), Type: schemas.TypeDMARCRecord, Time: end},
		ReportID: "g-1", OrgName: "google.com", Begin: end.Add(-24 * time.Hour), End: end, Domain: "acme.example", SourceIP: "192.0.2.10",
		Count: 500, DMARC: schemas.DMARCFail, OurSource: true, HeaderFrom: "acme.example"})
	out := feed(e, c.now(), evs...)
	out = append(out, e.EvaluateAll(c.now())...)
	if kinds(out)[OutDecide] == 0 {
		t.Fatalf("no decision in %v: the state lacks one to carry", kinds(out))
	}
	before := e.snapshot()
	data, err := encodeCheckpoint(&checkpoint{Version: checkpointVersion, ConfigHash: configHash(cfg), Engine: before})
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	r := NewEngine(cfg, src)
	if err := restoreEngine(cfg, r, back.Engine); err != nil {
		t.Fatal(err)
	}
	if after := r.snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("restored state differs:\n%s", snapDiff(before, after))
	}
	// The restored engine judges as the original: the same subjects are cut
	// off, and the same sums are in the windows.
	for _, s := range e.ActiveRecords() {
		if got, ok := r.Active(s.SubjectOf(), c.now()); !ok || got.DecisionID != s.DecisionID {
			t.Errorf("decision %s on %s not in force after restore", s.DecisionID, s.Subject)
		}
	}

	other := cfg
	other.Resolution++
	if configHash(other) == configHash(cfg) {
		t.Error("a different resolution hashes the same")
	}
	paced := cfg
	paced.Tick, paced.Checkpoint.Interval = paced.Tick*2, paced.Checkpoint.Interval*2
	if configHash(paced) != configHash(cfg) {
		t.Error("tick and checkpoint interval change the hash; they do not change the state")
	}
	if err := restoreEngine(other, NewEngine(other, src), back.Engine); err == nil {
		t.Error("a state of windows counted at another resolution was restored")
	}
	if _, err := decodeCheckpoint(data[:len(data)/2]); err == nil {
		t.Error("half a checkpoint decoded")
	}
}

// The store writes chunks, then the manifest, reads back what it wrote,
// and refuses a checkpoint whose chunks do not match the manifest.
func TestCheckpointStore(t *testing.T) {
	js := checkpointNATS(t)
	ctx := context.Background()
	s, err := openCheckpointStore(ctx, js, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := s.Load(ctx); data != nil || err != nil {
		t.Fatalf("empty store: %d bytes, %v", len(data), err)
	}
	big := make([]byte, 3*checkpointChunk+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, data := range [][]byte{big, []byte("small"), big[:checkpointChunk]} {
		if err := s.Save(ctx, data, time.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx)
		if err != nil || !slices.Equal(got, data) {
			t.Fatalf("read back %d bytes (%v), wrote %d", len(got), err, len(data))
		}
	}
	m, _, _ := s.current(ctx)
	if _, err := s.kv.Put(ctx, s.chunkKey(m.Slot, 0), []byte("tampered")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); err == nil {
		t.Error("a chunk that does not match the manifest was accepted")
	}
	// The leftovers of the larger checkpoint in slot a were removed.
	keys, _ := s.kv.Keys(ctx)
	if len(keys) > 1+4+1 {
		t.Errorf("keys left: %v", keys)
	}
}

func checkpointNATS(t *testing.T) jetstream.JetStream {
	_, _, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return js
}

// The state after a checkpoint and the replay of what came after it is
// the state a full rebuild from the same streams gives, with real NATS:
// windows, decisions, alert rules (a DMARC report rule included). The
// start from the checkpoint reads only the messages after it and
// publishes nothing again.
func TestCheckpointRestartMatchesRebuild(t *testing.T) {
	js := checkpointNATS(t)
	ctx := context.Background()
	pub := bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})
	publish := func(evs ...schemas.Event) {
		t.Helper()
		for _, ev := range evs {
			if err := pub.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := DefaultConfig()
	for _, th := range []*Thresholds{&cfg.Customer, &cfg.SourceIP, &cfg.CustomerProvider} {
		th.WarnRate, th.ActRate, th.MinDelivered = 0.05, 0.10, 100
	}
	cfg.Tick = config.Duration(50 * time.Millisecond)
	cfg.Checkpoint.Interval = config.Duration(time.Second)

	now := time.Now()
	ips := []string{"192.0.2.10", "192.0.2.11"}
	var phase1 []schemas.Event
	// Six days of mail from three good customers, a complaint a day.
	for day := range 6 {
		at := now.Add(-time.Duration(day)*24*time.Hour - time.Hour)
		for _, cust := range []string{"acme", "globex", "initech"} {
			for _, prov := range []string{"gmail", "yahoo"} {
				for i := range 30 {
					phase1 = append(phase1, sentAt(cust, ips[i%2], prov, at.Add(time.Duration(i)*time.Minute)))
				}
			}
			phase1 = append(phase1, complaintAt(cust, ips[day%2], "gmail", at.Add(30*time.Minute)))
		}
	}
	// One bad customer over the act rate: decisions.
	for i := range 120 {
		phase1 = append(phase1, sentAt("bad", ips[0], "gmail", now.Add(-50*time.Minute+time.Duration(i)*time.Second)))
	}
	for range 20 {
		phase1 = append(phase1, complaintAt("bad", ips[0], "gmail", now.Add(-10*time.Minute)))
	}
	// A DMARC report in which one of our IPs fails at google: firing.
	end := now.Add(-time.Hour)
	phase1 = append(phase1, dmarcAt("g-1", "google.com", ips[1], schemas.DMARCPass, 900, end), dmarcAt("g-1", "google.com", ips[1], schemas.DMARCFail, 100, end))
	publish(phase1...)

	a := startCheckpointed(t, js, cfg)
	testwait.Eventually(t, 30*time.Second, "decisions and the DMARC alert published", func() bool {
		return lastSeq(t, js, "DECISION") >= 2 && hasAlert(t, js, "dmarc_alignment/ip:"+ips[1]+"/reporter:google.com")
	})
	// No checkpoint while a judged output is not carried out: it could
	// hold a decision the bucket lacks.
	a.ev.mu.Lock()
	a.ev.inflight++
	a.ev.mu.Unlock()
	if err := a.ev.saveCheckpoint(ctx); !errors.Is(err, errCheckpointBusy) {
		t.Errorf("checkpoint with an output in flight: %v", err)
	}
	a.ev.done()
	testwait.Eventually(t, 30*time.Second, "a checkpoint", func() bool {
		data, err := a.ev.ckpt.Load(ctx)
		if err != nil || data == nil {
			return false
		}
		c, err := decodeCheckpoint(data)
		return err == nil && len(c.Engine.Published) > 0
	})
	a.stop()

	// Phase 2, while no evaluator runs: more mail, a complaint, a passing
	// report; nothing crosses a threshold.
	var phase2 []schemas.Event
	for i := range 40 {
		phase2 = append(phase2, sentAt("acme", ips[i%2], "gmail", now.Add(-5*time.Minute+time.Duration(i)*time.Second)))
	}
	phase2 = append(phase2, complaintAt("globex", ips[0], "yahoo", now.Add(-2*time.Minute)),
		dmarcAt("y-1", "yahoo.com", ips[0], schemas.DMARCPass, 5000, end))
	publish(phase2...)
	decisions, alerts := lastSeq(t, js, "DECISION"), lastSeq(t, js, "ALERT")

	b := startCheckpointed(t, js, cfg)
	if !b.ev.resumed {
		t.Fatal("the start did not use the checkpoint")
	}
	time.Sleep(300 * time.Millisecond) // anything published at start is out
	fromCheckpoint := b.snapshot()
	if got := b.delivered(t); got != 40 {
		t.Errorf("the start from the checkpoint read %v delivery events, want the 40 after it", got)
	}
	b.stop()
	if d, al := lastSeq(t, js, "DECISION"), lastSeq(t, js, "ALERT"); d != decisions || al != alerts {
		t.Errorf("the start from the checkpoint published again: DECISION %d→%d, ALERT %d→%d", decisions, d, alerts, al)
	}

	rebuildCfg := cfg
	rebuildCfg.Checkpoint.Enabled = false
	c := startCheckpointed(t, js, rebuildCfg)
	time.Sleep(300 * time.Millisecond)
	rebuilt := c.snapshot()
	if got := c.delivered(t); got < float64(len(phase1)) {
		t.Errorf("the rebuild read %v delivery events, want all of them", got)
	}
	c.stop()

	normalize(&fromCheckpoint)
	normalize(&rebuilt)
	if !reflect.DeepEqual(fromCheckpoint, rebuilt) {
		t.Errorf("checkpoint + replay differs from a full rebuild:\n%s", snapDiff(rebuilt, fromCheckpoint))
	}
	if len(rebuilt.Subjects) < 10 || len(rebuilt.Reports) == 0 || len(rebuilt.Published) == 0 {
		t.Errorf("the compared state is thin: %d subjects, %d report conditions, %d published", len(rebuilt.Subjects), len(rebuilt.Reports), len(rebuilt.Published))
	}

	// Another partition count (or configuration) finds no checkpoint of
	// its own and rebuilds.
	split := cfg
	split.Partitions = 2
	d := startCheckpointed(t, js, split)
	if d.ev.resumed {
		t.Error("a start with 2 partitions used the checkpoint of 1")
	}
	d.stop()
	changed := cfg
	changed.Resolution = 30
	e := startCheckpointed(t, js, changed)
	if e.ev.resumed {
		t.Error("a start with another resolution used the checkpoint")
	}
	e.stop() // its own checkpoint: the next start with changed uses it
	e2 := startCheckpointed(t, js, changed)
	if !e2.ev.resumed {
		t.Error("a start did not use the checkpoint of its own configuration")
	}
	e2.stop()
	// A stream created again numbers from 1: its sequences in the
	// checkpoint mean nothing there.
	if err := js.DeleteStream(ctx, "COMPLAINT"); err != nil {
		t.Fatal(err)
	}
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(ctx, js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f := startCheckpointed(t, js, changed)
	if f.ev.resumed {
		t.Error("a start used a checkpoint of a stream deleted since")
	}
	f.stop()
}

// normalize drops what differs between two equal states only by when
// they were built: when the id sets last rotated (their contents are
// compared as one set), when the engine last collected and the report
// rules were last judged, and the counters of what the engine saw (a
// rebuild that reads a decision before the complaints behind it counts
// them stale; the run that made the decision counted them first).
func normalize(s *engineSnap) {
	s.Stats = Stats{}
	for _, set := range []*idSetSnap{&s.Complaint, &s.Delivery, &s.AlertSignals} {
		all := slices.Concat(set.Cur, set.Prev)
		slices.Sort(all)
		*set = idSetSnap{Cur: all}
	}
	s.LastGC, s.ReportsJudged = 0, 0
}

func snapDiff(a, b engineSnap) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			ja, _ := json.Marshal(va.Field(i).Interface())
			jb, _ := json.Marshal(vb.Field(i).Interface())
			out += fmt.Sprintf("%s:\n  want %.3000s\n  got  %.3000s\n", va.Type().Field(i).Name, ja, jb)
		}
	}
	return out
}

type runningEvaluator struct {
	ev   *Evaluator
	reg  *prometheus.Registry
	stop func()
}

func startCheckpointed(t *testing.T, js jetstream.JetStream, cfg Config) *runningEvaluator {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("MAILMON_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", WorkerName)
	}
	reg := prometheus.NewRegistry()
	ev, err := New(cfg, worker.Settings{Logger: log, Metrics: reg, JetStream: js,
		Publisher: bus.NewPublisher(js, bus.PublisherOptions{Worker: WorkerName}), Source: schemas.Source{Worker: WorkerName, Host: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("evaluator: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case <-ev.Ready():
	case err := <-done:
		t.Fatalf("evaluator stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("evaluator not ready")
	}
	return &runningEvaluator{ev: ev, reg: reg, stop: stop}
}

func (r *runningEvaluator) snapshot() engineSnap {
	r.ev.mu.Lock()
	defer r.ev.mu.Unlock()
	return r.ev.engine.snapshot()
}

// delivered is the number of delivery events the worker read.
func (r *runningEvaluator) delivered(t *testing.T) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "mailmon_complaint_evaluator_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == schemas.TypeDeliveryAttempted {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func lastSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

func hasAlert(t *testing.T, js jetstream.JetStream, dedupe string) bool {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, "ALERT", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		if err != nil {
			return false
		}
		ev, err := schemas.Decode(msg.Data())
		if a, ok := ev.(*schemas.AlertRaised); err == nil && ok && a.DedupeKey == dedupe {
			return true
		}
	}
}

func sentAt(customer, ip, provider string, at time.Time) *schemas.DeliveryAttempted {
	ev := &schemas.DeliveryAttempted{
		OutgoingMessage: schemas.OutgoingMessage{Customer: customer, SourceIP: ip, Provider: provider, RecipientDomain: provider + ".test"},
		TrackingStatus:  schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mx", Recipient: "r@" + provider + ".test",
		Status: schemas.StatusSent, DelayMs: -1, DelayBeforeQmgrMs: -1, DelayInQmgrMs: -1, DelayConnSetupMs: -1, DelayTransmissionMs: -1,
	}
	schemas.Stamp(ev, schemas.Source{Worker: "test", Host: "test"}, at)
	return ev
}

func complaintAt(customer, ip, provider string, at time.Time) *schemas.ComplaintReceived {
	ev := &schemas.ComplaintReceived{Customer: customer, SourceIP: ip, Provider: provider, Counted: true, Trusted: true, Trust: schemas.TrustOperatorDKIM,
		TraceMethod: schemas.TraceTrackingHeader, Format: "arf", ReceivedVia: schemas.ReceivedViaFile, FeedbackType: "abuse"}
	schemas.Stamp(ev, schemas.Source{Worker: "test", Host: "test"}, at)
	return ev
}

func dmarcAt(reportID, org, ip, verdict string, count uint64, end time.Time) *schemas.DMARCRecord {
	begin := end.Add(-24 * time.Hour)
	ev := &schemas.DMARCRecord{ReportID: reportID, OrgName: org, Begin: begin, End: end, Domain: "acme.example", Policy: "reject",
		Percent: 100, SourceIP: ip, Count: count, Disposition: "none", DKIM: verdict, SPF: verdict, DMARC: verdict,
		HeaderFrom: "acme.example", OurSource: true, ReceivedVia: schemas.ReceivedViaSMTP}
	schemas.Stamp(ev, schemas.Source{Worker: "test", Host: "test"}, begin)
	return ev
}
