package dnssweeper

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

func TestCoverage(t *testing.T) {
	started := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	last := &lastSweep{Started: started, IPs: []string{"192.0.2.1"}, CIDRs: []string{"198.51.100.0/30"}, Domains: []string{"example.com"}, ZonesOK: []string{"bl.test", "dbl.test"}}
	seen := func(a netip.Addr) (time.Time, bool) {
		switch a.String() {
		case "203.0.113.1":
			return started.Add(-time.Hour), true
		case "203.0.113.2":
			return started.Add(time.Hour), true
		}
		return time.Time{}, false
	}
	c := newCoverage(last, seen)
	tests := []struct {
		target, zone string
		want         bool
	}{
		{"192.0.2.1", "bl.test", true},
		{"192.0.2.1", "zen.test", false}, // zone failed or was not swept
		{"192.0.2.2", "bl.test", false},
		{"198.51.100.3", "bl.test", true},
		{"198.51.100.4", "bl.test", false},
		{"example.com", "dbl.test", true},
		{"example.net", "dbl.test", false},
		{"203.0.113.1", "bl.test", true},  // seen before the last sweep
		{"203.0.113.2", "bl.test", false}, // seen after it started
	}
	for _, tt := range tests {
		if got := c.clean(target(t, tt.target), tt.zone); got != tt.want {
			t.Errorf("clean(%s, %s) = %v", tt.target, tt.zone, got)
		}
	}
	if newCoverage(nil, seen).clean(target(t, "192.0.2.1"), "bl.test") {
		t.Error("no last sweep: nothing is known clean")
	}
	last.SeenCapped = true
	if newCoverage(last, seen).clean(target(t, "203.0.113.1"), "bl.test") {
		t.Error("seen IPs were capped out of the last sweep, yet counted clean")
	}
}

func TestTransition(t *testing.T) {
	b, err := testZones()[0].Compile("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tg := target(t, "192.0.2.1")
	check := func(r dnsbl.Result) Check {
		return Check{Target: tg, QueryName: "1.2.0.192.bl.test", Result: r, TXT: "why"}
	}
	listed := check(b.Interpret(dnsbl.RcodeSuccess, []netip.Addr{netip.MustParseAddr("127.0.0.4")}))
	clean := check(dnsbl.Result{Status: dnsbl.NotListed})
	timeout := check(dnsbl.Failure(dnsbl.CauseTimeout, "no reply"))
	refused := check(b.Interpret(dnsbl.RcodeSuccess, []netip.Addr{netip.MustParseAddr("127.255.255.254")}))
	listedRec := &record{Target: "192.0.2.1", Kind: "ip", Zone: "bl.test", State: stateListed, Codes: []string{"127.0.0.4"},
		Meanings: []string{"listed: spam source"}, TXT: "why", ListedSince: now.Add(-time.Hour)}
	failingListed := *listedRec
	failingListed.ErrorCause = "timeout"
	failingClean := &record{Target: "192.0.2.1", Kind: "ip", Zone: "bl.test", State: stateClean, ErrorCause: "timeout"}

	tests := []struct {
		name      string
		prev      *record
		ch        Check
		wasClean  bool
		event     string // event type, "" for none
		previous  string // listed event's previous_state
		write     string // "", "put" or "delete"
		wantState string // the stored record's state
	}{
		{"clean stays clean", nil, clean, true, "", "", "", ""},
		{"first sweep listing", nil, listed, false, schemas.TypeDNSBLListed, "unknown", "put", stateListed},
		{"new listing of a clean pair", nil, listed, true, schemas.TypeDNSBLListed, "clean", "put", stateListed},
		{"listing stays", listedRec, listed, false, "", "", "", ""},
		{"delisting", listedRec, clean, false, schemas.TypeDNSBLDelisted, "", "delete", ""},
		{"error starts on a clean pair", nil, timeout, true, schemas.TypeDNSBLError, "", "put", stateClean},
		{"error starts, state unknown", nil, refused, false, schemas.TypeDNSBLError, "", "put", ""},
		{"error goes on", failingClean, timeout, false, "", "", "", ""},
		{"error changes cause", failingClean, refused, false, schemas.TypeDNSBLError, "", "put", stateClean},
		{"error ends clean", failingClean, clean, false, "", "", "delete", ""},
		{"error on a listing keeps it", listedRec, timeout, false, schemas.TypeDNSBLError, "", "put", stateListed},
		{"listing back after an error: no new event", &failingListed, listed, false, "", "", "put", stateListed},
		{"listing after an error on a clean pair", failingClean, listed, false, schemas.TypeDNSBLListed, "unknown", "put", stateListed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := transition(tt.prev, tt.ch, b, tt.wasClean, now, "sweep-1", "127.0.0.1:53")
			gotEvent := ""
			if c.event != nil {
				k, _ := schemas.KindOf(c.event)
				gotEvent = k.Type
			}
			write := ""
			switch {
			case c.delete:
				write = "delete"
			case c.rec != nil:
				write = "put"
			}
			if gotEvent != tt.event || write != tt.write {
				t.Fatalf("event %q write %q, want %q %q", gotEvent, write, tt.event, tt.write)
			}
			if l, ok := c.event.(*schemas.DNSBLListed); ok && l.PreviousState != tt.previous {
				t.Errorf("previous state %q, want %q", l.PreviousState, tt.previous)
			}
			if c.rec != nil && c.rec.State != tt.wantState {
				t.Errorf("stored state %q, want %q", c.rec.State, tt.wantState)
			}
			if d, ok := c.event.(*schemas.DNSBLDelisted); ok && (d.ListedMs != time.Hour.Milliseconds() || d.PreviousAnswerCodes[0] != "127.0.0.4") {
				t.Errorf("delisted %+v", d)
			}
			if c.rec != nil && c.rec.State == stateListed && tt.prev != nil && tt.prev.State == stateListed && !c.rec.ListedSince.Equal(tt.prev.ListedSince) {
				t.Error("listed_since moved while the listing lasted")
			}
		})
	}
}
