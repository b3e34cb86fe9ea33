package dnssweeper

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// A listing appears, stays, changes nothing while it stays, and goes; an
// error is reported once per cause; a zone that fails its self-test is
// unknown and its listings stand.
func TestSweepTransitions(t *testing.T) {
	f := startDNS(t)
	f.healthy("bl.test")
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	b := startBus(t)
	cfg := testConfig(f.addr)
	cfg.IPs = []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}
	cfg.CIDRs = []string{"198.51.100.0/30"}
	cfg.Domains = []string{"example.com", "spammy.example"}
	s := newSweeper(t, cfg, b)
	ctx := testCtx(t)

	// Sweep 1: nothing listed. Clean pairs have no record; sweep/last
	// says they were covered.
	sum := mustSweep(t, s)
	if sum.Targets != 9 || sum.Listed != 0 || sum.NewlyListed != 0 || sum.Errors != 0 {
		t.Errorf("sweep 1: %+v", sum)
	}
	if !slices.Equal(sum.ZoneNames, []string{"bl.test", "dbl.test"}) || !slices.Equal(sum.ZoneStates, []string{"ok", "ok"}) {
		t.Errorf("zones %v %v", sum.ZoneNames, sum.ZoneStates)
	}
	// 2 self-test queries per zone; bl.test: 6 IPv4 targets (IPv6 skipped,
	// the zone does not list IPv6); dbl.test: 2 domains.
	if !slices.Equal(sum.ZoneQueries, []uint32{8, 4}) || sum.Queries != 12 {
		t.Errorf("queries %v (%d)", sum.ZoneQueries, sum.Queries)
	}
	evs := byType(b.events(t))
	if len(evs) != 1 || len(evs[schemas.TypeDNSBLChecked]) != 1 {
		t.Fatalf("sweep 1 events: %v", evs)
	}
	if r := stateOf(t, b, "192.0.2.1", "bl.test"); r != nil {
		t.Errorf("a record for a clean pair: %+v", r)
	}
	if e, err := s.kv.Get(ctx, lastSweepKey); err != nil || !strings.Contains(string(e.Value()), sum.SweepID) {
		t.Errorf("sweep/last: %v", err)
	}

	// Sweep 2: 192.0.2.1 and spammy.example are listed.
	f.list("192.0.2.1", "bl.test", "127.0.0.4")
	f.list("spammy.example", "dbl.test", "127.0.1.2")
	sum = mustSweep(t, s)
	if sum.Listed != 2 || sum.NewlyListed != 2 || !slices.Equal(sum.ZoneListed, []uint32{1, 1}) {
		t.Errorf("sweep 2: %+v", sum)
	}
	evs = byType(b.events(t))
	listed := evs[schemas.TypeDNSBLListed]
	if len(listed) != 2 {
		t.Fatalf("sweep 2 listed events: %v", evs)
	}
	ip := listed[0].(*schemas.DNSBLListed)
	if ip.Target != "192.0.2.1" {
		ip = listed[1].(*schemas.DNSBLListed)
	}
	want := schemas.DNSBLListed{
		DNSBLLookup: schemas.DNSBLLookup{Target: "192.0.2.1", TargetKind: "ip", SourceIP: "192.0.2.1", Zone: "bl.test",
			List: "Test BL", Weight: 2, QueryName: "1.2.0.192.bl.test"},
		AnswerCodes: []string{"127.0.0.4"}, AnswerMeanings: []string{"listed: spam source"},
		TXT: "listed 192.0.2.1 in bl.test", DelistURL: "https://bl.test/remove?ip=192.0.2.1",
		PreviousState: "clean", SweepID: sum.SweepID, Resolver: f.addr,
	}
	got := *ip
	got.Header = schemas.Header{}
	if !equalListed(got, want) {
		t.Errorf("listed event\n got %+v\nwant %+v", got, want)
	}
	if r := stateOf(t, b, "192.0.2.1", "bl.test"); r == nil || r.State != stateListed || r.ListedSince.IsZero() || r.TXT == "" {
		t.Errorf("state after listing: %+v", r)
	}

	// Sweep 3: unchanged; no transition events.
	sum = mustSweep(t, s)
	if sum.Listed != 2 || sum.NewlyListed != 0 {
		t.Errorf("sweep 3: %+v", sum)
	}
	if evs := byType(b.events(t)); len(evs) != 1 {
		t.Errorf("sweep 3 events: %v", evs)
	}

	// Sweep 4: the zone fails its self-test (public resolver refusal):
	// one zone-level error, the listing stands, nothing is delisted even
	// though the target is no longer asked.
	f.set("2.0.0.127.bl.test", dns.TypeA, behaviour{a: []string{"127.255.255.254"}})
	f.unlist("192.0.2.1", "bl.test")
	sum = mustSweep(t, s)
	if !slices.Equal(sum.ZoneStates, []string{"unknown", "ok"}) || sum.ZoneErrors[0] != 6 || sum.ZoneListed[0] != 1 || sum.ZoneQueries[0] != 2 {
		t.Errorf("sweep 4: %+v", sum)
	}
	evs = byType(b.events(t))
	errs := evs[schemas.TypeDNSBLError]
	if len(errs) != 1 || len(evs[schemas.TypeDNSBLDelisted]) != 0 {
		t.Fatalf("sweep 4 events: %v", evs)
	}
	if e := errs[0].(*schemas.DNSBLError); e.Target != "" || e.Cause != "selftest_failed" || e.Zone != "bl.test" || e.AnswerCode != "127.255.255.254" || !strings.Contains(e.Error, "public/open resolver") {
		t.Errorf("zone error event %+v", e)
	}
	// Still failing: no second zone-level event.
	mustSweep(t, s)
	if evs := byType(b.events(t)); len(evs[schemas.TypeDNSBLError]) != 0 {
		t.Errorf("repeated zone error events: %v", evs)
	}

	// Sweep 6: the zone recovers; 192.0.2.1 is gone: delisted.
	f.healthy("bl.test")
	sum = mustSweep(t, s)
	evs = byType(b.events(t))
	del := evs[schemas.TypeDNSBLDelisted]
	if len(del) != 1 || sum.Delisted != 1 || sum.Listed != 1 {
		t.Fatalf("sweep 6: %+v events %v", sum, evs)
	}
	d := del[0].(*schemas.DNSBLDelisted)
	if d.Target != "192.0.2.1" || !slices.Equal(d.PreviousAnswerCodes, []string{"127.0.0.4"}) || d.ListedSince.IsZero() || d.ListedMs <= 0 {
		t.Errorf("delisted event %+v", d)
	}
	if r := stateOf(t, b, "192.0.2.1", "bl.test"); r != nil {
		t.Errorf("record kept after delisting: %+v", r)
	}

	// Sweep 7: a per-target error (a rewriting resolver) is reported once,
	// and a later listing of that target has previous state unknown.
	f.set("2.2.0.192.bl.test", dns.TypeA, behaviour{a: []string{"198.51.100.80"}})
	sum = mustSweep(t, s)
	evs = byType(b.events(t))
	if errs := evs[schemas.TypeDNSBLError]; len(errs) != 1 || errs[0].(*schemas.DNSBLError).Cause != "nxdomain_rewrite" || errs[0].(*schemas.DNSBLError).Target != "192.0.2.2" || sum.Errors != 1 {
		t.Errorf("sweep 7: %+v events %v", sum, evs)
	}
	if r := stateOf(t, b, "192.0.2.2", "bl.test"); r == nil || r.State != stateClean || r.ErrorCause != "nxdomain_rewrite" {
		t.Errorf("record of a failing pair: %+v", r)
	}
	mustSweep(t, s)
	if evs := byType(b.events(t)); len(evs[schemas.TypeDNSBLError]) != 0 {
		t.Errorf("repeated per-target error events: %v", evs)
	}
	f.list("192.0.2.2", "bl.test", "127.0.0.2")
	mustSweep(t, s)
	evs = byType(b.events(t))
	if l := evs[schemas.TypeDNSBLListed]; len(l) != 1 || l[0].(*schemas.DNSBLListed).PreviousState != "unknown" {
		t.Errorf("listing after an error: %v", evs)
	}

	// A new sweeper on the same bucket (a restart) knows the state: no
	// repeated listed events.
	s2 := newSweeper(t, cfg, b)
	sum = mustSweep(t, s2)
	if evs := byType(b.events(t)); len(evs) != 1 || sum.Listed != 2 {
		t.Errorf("after restart: %+v events %v", sum, evs)
	}
	_ = ctx
}

func equalListed(a, b schemas.DNSBLListed) bool {
	return a.DNSBLLookup == b.DNSBLLookup && slices.Equal(a.AnswerCodes, b.AnswerCodes) && slices.Equal(a.AnswerMeanings, b.AnswerMeanings) &&
		a.TXT == b.TXT && a.DelistURL == b.DelistURL && a.PreviousState == b.PreviousState && a.SweepID == b.SweepID && a.Resolver == b.Resolver
}

func mustSweep(t *testing.T, s *Sweeper) *schemas.DNSBLChecked {
	t.Helper()
	sum, err := s.Sweep(testCtx(t))
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return sum
}

// A target dropped from the configuration loses its state records.
func TestPrune(t *testing.T) {
	f := startDNS(t)
	f.healthy("bl.test")
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	b := startBus(t)
	cfg := testConfig(f.addr)
	cfg.IPs = []string{"192.0.2.1", "192.0.2.2"}
	f.list("192.0.2.1", "bl.test", "127.0.0.2")
	f.list("192.0.2.2", "bl.test", "127.0.0.2")
	mustSweep(t, newSweeper(t, cfg, b))
	if stateOf(t, b, "192.0.2.2", "bl.test") == nil {
		t.Fatal("no state for 192.0.2.2")
	}
	cfg.IPs = []string{"192.0.2.1"}
	mustSweep(t, newSweeper(t, cfg, b))
	if r := stateOf(t, b, "192.0.2.2", "bl.test"); r != nil {
		t.Errorf("state of a removed target kept: %+v", r)
	}
	if stateOf(t, b, "192.0.2.1", "bl.test") == nil {
		t.Error("state of a current target pruned")
	}
	// A listing seen again after being pruned is new.
	cfg.IPs = []string{"192.0.2.1", "192.0.2.2"}
	b.events(t)
	mustSweep(t, newSweeper(t, cfg, b))
	if l := byType(b.events(t))[schemas.TypeDNSBLListed]; len(l) != 1 || l[0].(*schemas.DNSBLListed).PreviousState != "unknown" {
		t.Errorf("re-added target: %v", l)
	}
}

// Sending IPs seen in delivery events are swept from the next sweep on.
func TestSeenIPs(t *testing.T) {
	f := startDNS(t)
	f.healthy("bl.test")
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	f.list("203.0.113.9", "bl.test", "127.0.0.2")
	b := startBus(t)
	cfg := testConfig(f.addr)
	cfg.IPs = []string{"192.0.2.1"}
	cfg.SeenIPs.Enabled = true
	cfg.Interval.UnmarshalText([]byte("1h"))
	s := newSweeper(t, cfg, b)

	for i, ip := range []string{"203.0.113.9", "203.0.113.9", "10.0.0.1", ""} {
		ev := &schemas.DeliveryAttempted{
			OutgoingMessage: schemas.OutgoingMessage{SourceIP: ip, RecipientDomain: "gmail.com"},
			TrackingStatus:  "missing", MTA: "postfix", MTAHost: "mx1", Recipient: "a@gmail.com", Status: "sent",
			DelayMs: -1, DelayBeforeQmgrMs: -1, DelayInQmgrMs: -1, DelayConnSetupMs: -1, DelayTransmissionMs: -1,
		}
		if err := schemas.Stamp(ev, schemas.Source{Worker: "mta-log-tailer", Host: "mx1"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.pub.Publish(testCtx(t), ev); err != nil {
			t.Fatalf("publish delivery %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !s.isSeen(mustAddr(t, "203.0.113.9")) {
		if time.Now().After(deadline) {
			t.Fatal("203.0.113.9 never seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.isSeen(mustAddr(t, "10.0.0.1")) {
		t.Error("a private address was taken for a sending IP")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	b.events(t) // the first sweep of Run
	sum := mustSweep(t, s)
	if sum.Targets != 2 || sum.Listed != 1 {
		t.Errorf("sweep with the seen IP: %+v", sum)
	}
}

// Run sweeps at once and then every interval, and stops cleanly.
func TestRun(t *testing.T) {
	f := startDNS(t)
	f.healthy("bl.test")
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	b := startBus(t)
	cfg := testConfig(f.addr)
	cfg.IPs = []string{"192.0.2.1"}
	cfg.Interval.UnmarshalText([]byte("1s"))
	s := newSweeper(t, cfg, b)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var starts []time.Time
	deadline := time.Now().Add(20 * time.Second)
	for len(starts) < 2 && time.Now().Before(deadline) {
		for _, ev := range b.events(t) {
			if c, ok := ev.(*schemas.DNSBLChecked); ok {
				starts = append(starts, c.StartedAt)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(starts) < 2 {
		t.Fatalf("%d sweeps within 20 s with a 1 s interval", len(starts))
	}
	if gap := starts[1].Sub(starts[0]); gap < 990*time.Millisecond {
		t.Errorf("sweeps %s apart with a 1 s interval", gap)
	}
}

// With a DQS key, queries go to <key>.<dqs_zone>, and the key appears in no
// event, state record or error.
func TestDQSKeyStaysSecret(t *testing.T) {
	const key = "k3yabcdefghij0123456789xyz"
	f := startDNS(t)
	base := strings.ToLower(key) + ".zen.dq.test"
	f.healthy(base)
	f.list("192.0.2.1", base, "127.0.0.2")
	f.set("2.2.0.192."+base, dns.TypeA, behaviour{drop: true})
	b := startBus(t)
	cfg := testConfig(f.addr)
	zone := testZones()[0]
	zone.Name, zone.DQSZone, zone.RegisteredResolver = "zen.test", "zen.dq.test", true
	cfg.CustomZones = []dnsbl.Zone{zone}
	cfg.Zones = []string{"zen.test"}
	cfg.DQSKey = key
	cfg.IPs = []string{"192.0.2.1", "192.0.2.2"}
	s := newSweeper(t, cfg, b)
	sum := mustSweep(t, s)
	if sum.Listed != 1 || sum.Errors != 1 || sum.ZoneNames[0] != "zen.test" {
		t.Fatalf("summary %+v", sum)
	}
	var all strings.Builder
	for _, ev := range b.events(t) {
		data, _ := json.Marshal(ev)
		all.Write(data)
		if l, ok := ev.(*schemas.DNSBLListed); ok && l.QueryName != "1.2.0.192.[REDACTED].zen.dq.test" {
			t.Errorf("query name %q", l.QueryName)
		}
	}
	kv, _ := b.js.KeyValue(testCtx(t), Bucket)
	keys, _ := kv.ListKeys(testCtx(t))
	for k := range keys.Keys() {
		e, err := kv.Get(testCtx(t), k)
		if err == nil {
			all.WriteString(k + string(e.Value()))
		}
	}
	if strings.Contains(strings.ToLower(all.String()), strings.ToLower(key)) {
		t.Errorf("the DQS key leaked:\n%s", all.String())
	}
	if !strings.Contains(all.String(), "timeout") {
		t.Errorf("no timeout error reported:\n%s", all.String())
	}
}

func TestBadDeliveryEventIsDeadLettered(t *testing.T) {
	b := startBus(t)
	cfg := testConfig("127.0.0.1:53")
	cfg.SeenIPs.Enabled = true
	s := newSweeper(t, cfg, b)
	if err := s.load(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.handleDelivery(testCtx(t), &bus.Msg{Data: []byte("not json")}); !bus.IsPermanent(err) {
		t.Errorf("bad JSON: %v, want a permanent error", err)
	}
	for _, data := range []string{`{"type":"mailmon.delivery.v1.attempted"}`, `{"source_ip":"::1"}`, `{"source_ip":"not an ip"}`} {
		if err := s.handleDelivery(testCtx(t), &bus.Msg{Data: []byte(data)}); err != nil {
			t.Errorf("%s: %v", data, err)
		}
	}
	if err := s.handleDelivery(testCtx(t), &bus.Msg{Data: []byte(`{"source_ip":"2001:db8::25"}`)}); err != nil || !s.isSeen(mustAddr(t, "2001:db8::25")) {
		t.Errorf("ipv6 source: %v", err)
	}
	// The IPv6 key is a valid KV key.
	kv, _ := b.js.KeyValue(testCtx(t), Bucket)
	if _, err := kv.Get(testCtx(t), "seen/2001-db8--25"); err != nil {
		t.Errorf("seen record: %v", err)
	}
}
