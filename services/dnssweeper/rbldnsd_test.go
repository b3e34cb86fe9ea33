package dnssweeper

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/peers"
)

// rbldnsd is Debian's rbldnsd serving zone files on a loopback UDP port
// (see shared/peers.md section 4).
type rbldnsd struct{ *peers.Rbldnsd }

// startRbldnsd writes the zone files and starts rbldnsd with one zone per
// "name:type:file" spec; the first zone's test entry must answer.
func startRbldnsd(t *testing.T, files map[string]string, zones ...string) *rbldnsd {
	t.Helper()
	dir := t.TempDir()
	// rbldnsd drops root for the rbldns user, which must reach the files.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	rbl, err := peers.StartRbldnsd(t.Context(), peers.RbldnsdConfig{Dir: dir, Files: files, Zones: zones,
		Ready: "2.0.0.127." + strings.Split(zones[0], ":")[0]})
	if err != nil {
		peertest.Unavailable(t, "rbldnsd: %v", err)
	}
	// Cleanups run last-registered first: the output is read after
	// rbldnsd has exited.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rbldnsd output:\n%s", rbl.Log())
		}
	})
	t.Cleanup(func() { rbl.Stop() })
	return &rbldnsd{rbl}
}

// update rewrites a zone file, makes rbldnsd reload it, and waits until
// name answers as wantListed says.
func (r *rbldnsd) update(t *testing.T, file, content, name string, wantListed bool) {
	t.Helper()
	if err := r.Rewrite(file, content); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 15*time.Second, "rbldnsd to reload "+file, func() bool { return r.Answers(name) == wantListed })
}

const (
	blZone = `:127.0.0.2:Listed in test blocklist: $ see http://bl.test/lookup?ip=$
127.0.0.2
192.0.2.99 :127.0.0.4:Spam source (TEST-NET-1) $
198.51.100.0/30 :127.0.0.3:Snowshoe range $
192.0.2.77 :127.255.255.254:query via public resolver
192.0.2.78 :127.0.0.1:broken entry
`
	dblZone = `:127.0.1.2:Domain listed in test DBL: $
test
spammy.example
.badhost.example :127.0.1.3:Bad host family $
192.0.2.99 :127.0.1.255:IP queries prohibited
`
)

// rbldnsdZones are the catalogue entries of the two rbldnsd zones.
func rbldnsdZones() []dnsbl.Zone {
	return []dnsbl.Zone{
		{Name: "bl.test", List: "rbldnsd BL", Kind: dnsbl.KindIP, Weight: 2, DelistURL: "https://bl.test/remove?ip={target}",
			Codes: map[string]dnsbl.Code{
				"127.0.0.2":        {Class: dnsbl.ClassListed, Meaning: "listed"},
				"127.0.0.3":        {Class: dnsbl.ClassListed, Meaning: "snowshoe range"},
				"127.0.0.4":        {Class: dnsbl.ClassListed, Meaning: "spam source"},
				"127.255.255.0/24": {Class: dnsbl.ClassError, Meaning: "error code"},
				"127.255.255.254":  {Class: dnsbl.ClassError, Meaning: "query via public/open resolver"},
			}},
		{Name: "dbl.test", List: "rbldnsd DBL", Kind: dnsbl.KindDomain, Weight: 1,
			Codes: map[string]dnsbl.Code{
				"127.0.1.2":   {Class: dnsbl.ClassListed, Meaning: "spam domain"},
				"127.0.1.3":   {Class: dnsbl.ClassListed, Meaning: "bad host family"},
				"127.0.1.255": {Class: dnsbl.ClassError, Meaning: "IP queries prohibited"},
			}},
	}
}

// Against real rbldnsd: listings, error-code entries and test entries are
// read right, and a target added to the zone file is listed on the next
// sweep and delisted once removed.
func TestRbldnsd(t *testing.T) {
	r := startRbldnsd(t, map[string]string{"bl.zone": blZone, "dbl.zone": dblZone}, "bl.test:ip4set:bl.zone", "dbl.test:dnset:dbl.zone")
	b := startBus(t)
	cfg := DefaultConfig()
	cfg.Resolver = r.Addr
	cfg.CustomZones = rbldnsdZones()
	cfg.Zones = []string{"bl.test", "dbl.test"}
	cfg.ZoneRate = 0
	cfg.TCPFallback = false // rbldnsd serves UDP only
	cfg.SeenIPs.Enabled = false
	cfg.Audit.Enabled = false
	cfg.IPs = []string{"192.0.2.99", "192.0.2.77", "192.0.2.78", "192.0.2.50", "192.0.2.1"}
	cfg.CIDRs = []string{"198.51.100.0/29"}
	cfg.Domains = []string{"spammy.example", "mail.badhost.example", "clean.example"}
	s := newSweeper(t, cfg, b)

	sum := mustSweep(t, s)
	evs := byType(b.events(t))
	if !slices.Equal(sum.ZoneStates, []string{"ok", "ok"}) || sum.Targets != 16 {
		t.Fatalf("sweep 1: %+v", sum)
	}
	listed := map[string]*schemas.DNSBLListed{}
	for _, ev := range evs[schemas.TypeDNSBLListed] {
		l := ev.(*schemas.DNSBLListed)
		listed[l.Target+"@"+l.Zone] = l
	}
	var keys []string
	for k := range listed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantListed := []string{"192.0.2.99@bl.test", "198.51.100.0@bl.test", "198.51.100.1@bl.test", "198.51.100.2@bl.test",
		"198.51.100.3@bl.test", "mail.badhost.example@dbl.test", "spammy.example@dbl.test"}
	if !slices.Equal(keys, wantListed) {
		t.Errorf("listed %v\nwant   %v", keys, wantListed)
	}
	if l := listed["192.0.2.99@bl.test"]; l == nil || !slices.Equal(l.AnswerCodes, []string{"127.0.0.4"}) ||
		l.TXT != "Spam source (TEST-NET-1) 192.0.2.99" || l.PreviousState != "unknown" || l.QueryName != "99.2.0.192.bl.test" {
		t.Errorf("192.0.2.99: %+v", l)
	}
	if l := listed["mail.badhost.example@dbl.test"]; l == nil || l.TXT != "Bad host family badhost.example" {
		t.Errorf("mail.badhost.example: %+v", l)
	}
	causes := map[string]string{}
	for _, ev := range evs[schemas.TypeDNSBLError] {
		e := ev.(*schemas.DNSBLError)
		causes[e.Target] = e.Cause + " " + e.AnswerCode
	}
	wantCauses := map[string]string{"192.0.2.77": "error_code 127.255.255.254", "192.0.2.78": "bad_answer 127.0.0.1"}
	if fmt.Sprint(causes) != fmt.Sprint(wantCauses) {
		t.Errorf("errors %v, want %v", causes, wantCauses)
	}
	if sum.Listed != 7 || sum.Errors != 2 || sum.NewlyListed != 7 {
		t.Errorf("summary %+v", sum)
	}

	// Add 192.0.2.50 to the zone: listed on the next sweep.
	r.update(t, "bl.zone", blZone+"192.0.2.50 :127.0.0.4:Added $\n", "50.2.0.192.bl.test", true)
	sum = mustSweep(t, s)
	evs = byType(b.events(t))
	if l := evs[schemas.TypeDNSBLListed]; len(l) != 1 || l[0].(*schemas.DNSBLListed).Target != "192.0.2.50" ||
		l[0].(*schemas.DNSBLListed).PreviousState != "clean" || l[0].(*schemas.DNSBLListed).TXT != "Added 192.0.2.50" {
		t.Fatalf("after adding 192.0.2.50: %+v events %v", sum, evs)
	}
	if len(evs[schemas.TypeDNSBLDelisted]) != 0 || len(evs[schemas.TypeDNSBLError]) != 0 {
		t.Errorf("unexpected events %v", evs)
	}

	// Remove it again: delisted on the next sweep.
	r.update(t, "bl.zone", blZone, "50.2.0.192.bl.test", false)
	sum = mustSweep(t, s)
	evs = byType(b.events(t))
	d := evs[schemas.TypeDNSBLDelisted]
	if len(d) != 1 || d[0].(*schemas.DNSBLDelisted).Target != "192.0.2.50" || len(evs[schemas.TypeDNSBLListed]) != 0 || sum.Listed != 7 {
		t.Fatalf("after removing 192.0.2.50: %+v events %v", sum, evs)
	}
	if rec := stateOf(t, b, "192.0.2.50", "bl.test"); rec != nil {
		t.Errorf("record kept after delisting: %+v", rec)
	}
	if rec := stateOf(t, b, "192.0.2.99", "bl.test"); rec == nil || rec.State != stateListed || rec.TXT == "" {
		t.Errorf("listed record %+v", rec)
	}

	// The zone's test entry removed: the zone is unknown, never "clean".
	r.update(t, "bl.zone", strings.Replace(blZone, "127.0.0.2\n", "", 1), "2.0.0.127.bl.test", false)
	sum = mustSweep(t, s)
	evs = byType(b.events(t))
	if sum.ZoneStates[0] != "unknown" || len(evs[schemas.TypeDNSBLDelisted]) != 0 || sum.ZoneListed[0] != 5 {
		t.Errorf("zone without its test entry: %+v events %v", sum, evs)
	}
	if e := evs[schemas.TypeDNSBLError]; len(e) != 1 || e[0].(*schemas.DNSBLError).Cause != "selftest_failed" {
		t.Errorf("self-test failure events %v", evs)
	}
}
