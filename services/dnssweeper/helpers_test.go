package dnssweeper

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// testCtx bounds every call a test makes.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// behaviour says how the fake server answers one (name, type).
type behaviour struct {
	rcode int
	a     []string
	txt   []string
	// rrs are extra answer records in zone-file syntax.
	rrs []string
	// drop sends no reply (the client times out).
	drop bool
	// truncate sets TC over UDP and sends no answers; TCP gets the full reply.
	truncate bool
	// servfailFirst answers SERVFAIL to the first n queries.
	servfailFirst int
	// spoofFirst sends a reply for another question (same id) before the
	// real one.
	spoofFirst bool
	// garbage sends bytes that do not unpack, with the query's id.
	garbage bool
}

// fakeDNS is a miekg/dns server on 127.0.0.1:0 (UDP, and TCP on the same
// port) answering from a table; unknown names are NXDOMAIN.
type fakeDNS struct {
	addr  string
	mu    sync.Mutex
	table map[string]*behaviour // "name./TYPE", lower case
	hits  map[string]int
	tcp   int
}

func startDNS(t testing.TB) *fakeDNS { return startDNSWith(t, true) }

// startDNSWith starts the server, over UDP only unless withTCP.
func startDNSWith(t testing.TB, withTCP bool) *fakeDNS {
	t.Helper()
	f := &fakeDNS{table: map[string]*behaviour{}, hits: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			if !withTCP {
				ln.Close() // the port stays free: TCP is refused
			}
			break
		}
		pc.Close()
		if i > 20 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	f.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { f.serve(w, r, false) })}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { f.serve(w, r, true) })}
	servers := []*dns.Server{udp}
	if withTCP {
		servers = append(servers, tcp)
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	return f
}

func key(name string, qtype uint16) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.TypeToString[qtype]
}

func (f *fakeDNS) set(name string, qtype uint16, b behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table[key(name, qtype)] = &b
}

func (f *fakeDNS) del(name string, qtype uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.table, key(name, qtype))
}

func (f *fakeDNS) hitsOf(name string, qtype uint16) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key(name, qtype)]
}

func (f *fakeDNS) serve(w dns.ResponseWriter, r *dns.Msg, overTCP bool) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	k := key(q.Name, q.Qtype)
	f.mu.Lock()
	f.hits[k]++
	n := f.hits[k]
	if overTCP {
		f.tcp++
	}
	var b behaviour
	if p := f.table[k]; p != nil {
		b = *p
	} else {
		b = behaviour{rcode: dns.RcodeNameError}
		// A name with records of another type is NODATA, not NXDOMAIN.
		for other := range f.table {
			if strings.HasPrefix(other, strings.ToLower(q.Name)+"/") {
				b.rcode = dns.RcodeSuccess
			}
		}
	}
	f.mu.Unlock()
	if b.drop {
		return
	}
	if b.garbage {
		w.Write([]byte{byte(r.Id >> 8), byte(r.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff})
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if n <= b.servfailFirst {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	m.Rcode = b.rcode
	if b.truncate && !overTCP {
		m.Truncated = true
		w.WriteMsg(m)
		return
	}
	for _, a := range b.a {
		rr, _ := dns.NewRR(q.Name + " 60 IN A " + a)
		m.Answer = append(m.Answer, rr)
	}
	for _, txt := range b.txt {
		var chunks []string // character strings hold at most 255 bytes
		for len(txt) > 255 {
			chunks, txt = append(chunks, txt[:255]), txt[255:]
		}
		chunks = append(chunks, txt)
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: chunks})
	}
	for _, s := range b.rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	if b.spoofFirst {
		spoof := m.Copy()
		spoof.Question[0].Name = "spoofed.example."
		spoof.Answer = nil
		spoof.Rcode = dns.RcodeSuccess
		rr, _ := dns.NewRR(q.Name + " 60 IN A 127.0.0.2")
		spoof.Answer = append(spoof.Answer, rr)
		w.WriteMsg(spoof)
	}
	w.WriteMsg(m)
}

// list makes the server list an IP on an ip zone (A and TXT).
func (f *fakeDNS) list(ip, zone string, codes ...string) {
	t, err := dnsbl.ParseTarget(ip)
	if err != nil {
		panic(err)
	}
	name := dnsbl.ReverseIP(t.IP) + "." + zone
	if t.Kind == dnsbl.KindDomain {
		name = t.Domain + "." + zone
	}
	f.set(name, dns.TypeA, behaviour{a: codes})
	f.set(name, dns.TypeTXT, behaviour{txt: []string{"listed " + ip + " in " + zone}})
}

func (f *fakeDNS) unlist(ip, zone string) {
	t, _ := dnsbl.ParseTarget(ip)
	name := dnsbl.ReverseIP(t.IP) + "." + zone
	if t.Kind == dnsbl.KindDomain {
		name = t.Domain + "." + zone
	}
	f.del(name, dns.TypeA)
	f.del(name, dns.TypeTXT)
}

// healthy makes a zone pass its self-test: 127.0.0.2 listed, 127.0.0.1 not.
func (f *fakeDNS) healthy(zone string) {
	f.set("2.0.0.127."+zone, dns.TypeA, behaviour{a: []string{"127.0.0.2"}})
}

// testZones are an ip zone and a domain zone, like the rbldnsd ones.
func testZones() []dnsbl.Zone {
	return []dnsbl.Zone{
		{Name: "bl.test", List: "Test BL", Kind: dnsbl.KindIP, Weight: 2, DelistURL: "https://bl.test/remove?ip={target}",
			Codes: map[string]dnsbl.Code{
				"127.0.0.2":        {Class: dnsbl.ClassListed, Meaning: "listed: test"},
				"127.0.0.4":        {Class: dnsbl.ClassListed, Meaning: "listed: spam source"},
				"127.255.255.0/24": {Class: dnsbl.ClassError, Meaning: "refused"},
				"127.255.255.254":  {Class: dnsbl.ClassError, Meaning: "query via public/open resolver"},
			}},
		{Name: "dbl.test", List: "Test DBL", Kind: dnsbl.KindDomain, Weight: 1,
			Codes: map[string]dnsbl.Code{
				"127.0.1.2":   {Class: dnsbl.ClassListed, Meaning: "spam domain"},
				"127.0.1.255": {Class: dnsbl.ClassError, Meaning: "IP queries prohibited"},
			}},
	}
}

func testConfig(resolver string) Config {
	cfg := DefaultConfig()
	cfg.Resolver = resolver
	cfg.CustomZones = testZones()
	cfg.Zones = []string{"bl.test", "dbl.test"}
	cfg.ZoneRate = 0
	cfg.Timeout.UnmarshalText([]byte("300ms"))
	cfg.Retries = 1
	cfg.Concurrency = 4
	cfg.SeenIPs.Enabled = false
	cfg.Audit.Enabled = false
	return cfg
}

// bus is an embedded NATS with the topology applied and a subscription
// on every DNS event.
type testBus struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	sub *nats.Subscription
}

func startBus(t testing.TB) *testBus {
	t.Helper()
	_, nc, js := natstest.Start(t)
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(testCtx(t), js, pipelines.ApplyOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("mailmon.>")
	if err != nil {
		t.Fatal(err)
	}
	return &testBus{nc: nc, js: js, sub: sub}
}

func (b *testBus) settings() worker.Settings {
	return worker.Settings{JetStream: b.js, Source: schemas.Source{Worker: WorkerName, Host: "test"}}
}

// events returns the DNS events published so far (waiting briefly for
// stragglers).
func (b *testBus) events(t testing.TB) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for {
		m, err := b.sub.NextMsg(200 * time.Millisecond)
		if err != nil {
			return out
		}
		if !strings.HasPrefix(m.Subject, "mailmon.dnsbl.") && !strings.HasPrefix(m.Subject, "mailmon.dns.") {
			continue
		}
		ev, err := schemas.Decode(m.Data)
		if err != nil {
			t.Fatalf("published event does not decode: %v\n%s", err, m.Data)
		}
		if err := schemas.Validate(ev); err != nil {
			t.Fatalf("published event breaks the contract: %v\n%s", err, m.Data)
		}
		out = append(out, ev)
	}
}

func newSweeper(t testing.TB, cfg Config, b *testBus) *Sweeper {
	t.Helper()
	s, err := New(cfg, b.settings())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.checker.Client().Close(); s.auditCli.Close() })
	return s
}

// stateOf reads one state record from the bucket.
func stateOf(t testing.TB, b *testBus, target, zone string) *record {
	t.Helper()
	kv, err := b.js.KeyValue(testCtx(t), Bucket)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := dnsbl.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(testCtx(t), stateKey(tg, zone))
	if err != nil {
		return nil
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// byType splits events by type.
func byType(evs []schemas.Event) map[string][]schemas.Event {
	out := map[string][]schemas.Event{}
	for _, ev := range evs {
		out[ev.EventHeader().Type] = append(out[ev.EventHeader().Type], ev)
	}
	return out
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
