package dnssweeper

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// Checker asks blocklists about targets through one Client: it builds the
// query names, applies each zone's rate limit, reads the answers with
// package dnsbl, and fetches the TXT reason of listings. The dns-sweeper
// and `mailmon dnsbl check` share it.
type Checker struct {
	client   *Client
	zones    []*dnsbl.Blocklist
	limiters []*rate.Limiter // nil: unlimited
	fetchTXT bool
}

// Check is the outcome of one (target, zone) lookup.
type Check struct {
	Target dnsbl.Target
	// Zone is the index of the zone in Checker.Zones.
	Zone int
	// QueryName is the name asked, with any DQS key redacted.
	QueryName string
	Result    dnsbl.Result
	// TXT is the zone's reason for a listing, when it gives one.
	TXT string
	// Queries is the number of packets this check sent, retries included.
	Queries int
}

// NewChecker compiles zones (with the DQS key where a zone has a DQS zone)
// and returns a checker that sends through client, at most rate queries
// per second per zone (0: unlimited).
func NewChecker(client *Client, zones []dnsbl.Zone, dqsKey string, perZoneRate float64, fetchTXT bool) (*Checker, error) {
	c := &Checker{client: client, fetchTXT: fetchTXT}
	for _, z := range zones {
		b, err := z.Compile(dqsKey)
		if err != nil {
			return nil, err
		}
		c.zones = append(c.zones, b)
		var lim *rate.Limiter
		if perZoneRate > 0 {
			lim = rate.NewLimiter(rate.Limit(perZoneRate), max(1, int(perZoneRate)))
		}
		c.limiters = append(c.limiters, lim)
	}
	return c, nil
}

// Zones are the compiled zones, in configuration order.
func (c *Checker) Zones() []*dnsbl.Blocklist { return c.zones }

// Client is the client the checker sends through.
func (c *Checker) Client() *Client { return c.client }

// pacer is the wait for zone's rate limit, or nil when it has none.
func (c *Checker) pacer(zone int) func(context.Context) error {
	lim := c.limiters[zone]
	if lim == nil {
		return nil
	}
	return lim.Wait
}

func (c *Checker) wait(ctx context.Context, zone int) error {
	if lim := c.limiters[zone]; lim != nil {
		return lim.Wait(ctx)
	}
	return nil
}

// CheckTarget asks zone about t, waiting for the zone's rate limit. A
// target the zone does not list (another kind, or IPv6 on an IPv4-only
// zone) is an error result; callers filter with Blocklist.Applies first.
func (c *Checker) CheckTarget(ctx context.Context, zone int, t dnsbl.Target) Check {
	return c.check(ctx, zone, t, true)
}

// check is CheckTarget; limited says whether the A query waits for the
// rate limit (Sweep's feeders already did).
func (c *Checker) check(ctx context.Context, zone int, t dnsbl.Target, limited bool) Check {
	b := c.zones[zone]
	ch := Check{Target: t, Zone: zone}
	q, err := b.QueryName(t)
	if err != nil {
		ch.Result = dnsbl.Failure(dnsbl.CauseBadAnswer, err.Error())
		return ch
	}
	ch.QueryName = q.Display
	var n int
	ch.Result, n = c.lookupA(ctx, zone, q, limited)
	ch.Queries += n
	if ch.Result.Status == dnsbl.Listed && c.fetchTXT {
		// Always paced: a zone listing a whole range would otherwise get
		// a TXT query per address at full speed.
		ch.TXT, n = c.lookupTXT(ctx, zone, q)
		ch.Queries += n
	}
	return ch
}

func (c *Checker) lookupA(ctx context.Context, zone int, q dnsbl.Query, limited bool) (dnsbl.Result, int) {
	b := c.zones[zone]
	if limited {
		if err := c.wait(ctx, zone); err != nil {
			return dnsbl.Failure(dnsbl.CauseTimeout, "rate limit wait: "+err.Error()), 0
		}
	}
	r, n, err := c.client.ExchangePaced(ctx, q.Name, dns.TypeA, false, c.pacer(zone))
	if err != nil {
		return failureOf(err, b.Name(), q.Display), n
	}
	var answers []netip.Addr
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			if addr, ok := netip.AddrFromSlice(a.A); ok {
				answers = append(answers, addr.Unmap())
			}
		}
	}
	return b.Interpret(r.Rcode, answers), n
}

// lookupTXT returns the TXT reason at q, or "" (a missing or failed TXT
// never changes the result).
func (c *Checker) lookupTXT(ctx context.Context, zone int, q dnsbl.Query) (string, int) {
	if err := c.wait(ctx, zone); err != nil {
		return "", 0
	}
	r, n, err := c.client.ExchangePaced(ctx, q.Name, dns.TypeTXT, true, c.pacer(zone))
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return "", n
	}
	var parts []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			parts = append(parts, strings.Join(t.Txt, ""))
		}
	}
	txt := c.zones[zone].Redact(strings.Join(parts, " | "))
	if len(txt) > maxTXT {
		txt = txt[:maxTXT]
	}
	return txt, n
}

// maxTXT caps the TXT reason kept in state and events.
const maxTXT = 1024

// failureOf turns a client error into an error result.
func failureOf(err error, zone, name string) dnsbl.Result {
	var qe *QueryError
	if errors.As(err, &qe) {
		return dnsbl.Failure(qe.Cause, fmt.Sprintf("%s: %s: %v", zone, name, qe.Err))
	}
	return dnsbl.Failure(dnsbl.CauseNetwork, fmt.Sprintf("%s: %s: %v", zone, name, err))
}

// SelfTest runs zone's test queries (127.0.0.2 must be listed, 127.0.0.1
// must not; domain zones likewise with their test names) and returns nil
// when the zone can be trusted, else the selftest_failed result, with the
// number of packets sent.
func (c *Checker) SelfTest(ctx context.Context, zone int) (*dnsbl.Result, int) {
	b := c.zones[zone]
	listed, notListed := b.TestTargets()
	var outcomes []dnsbl.TestOutcome
	sent := 0
	for i, t := range append(listed, notListed...) {
		q, err := b.QueryName(t)
		if err != nil {
			r := dnsbl.Failure(dnsbl.CauseSelfTest, fmt.Sprintf("%s: test entry %s: %v", b.Name(), t, err))
			return &r, sent
		}
		r, n := c.lookupA(ctx, zone, q, true)
		sent += n
		outcomes = append(outcomes, dnsbl.TestOutcome{Target: t, WantListed: i < len(listed), Result: r})
	}
	return dnsbl.SelfTest(b.Name(), outcomes), sent
}

// SweepResult summarises one Sweep.
type SweepResult struct {
	// ZoneFailure is the self-test failure per zone, nil for a zone that
	// passed and was swept.
	ZoneFailure []*dnsbl.Result
	// ZoneQueries counts packets per zone, self-test and TXT included.
	ZoneQueries []int
}

// Sweep self-tests every zone, then checks every target against every zone
// that passed and lists it, with at most concurrency queries in flight.
// emit receives each Check, from one goroutine at a time, as soon as it is
// done. Zones that failed their self-test are not queried further. Sweep
// returns early with ctx's error when ctx ends.
func (c *Checker) Sweep(ctx context.Context, targets []dnsbl.Target, concurrency int, emit func(Check)) (SweepResult, error) {
	res := SweepResult{ZoneFailure: make([]*dnsbl.Result, len(c.zones)), ZoneQueries: make([]int, len(c.zones))}
	var wg sync.WaitGroup
	for i := range c.zones {
		wg.Go(func() { res.ZoneFailure[i], res.ZoneQueries[i] = c.SelfTest(ctx, i) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}

	type job struct{ zone, target int }
	concurrency = max(concurrency, 1)
	jobs := make(chan job, 4*concurrency)
	results := make(chan Check, 4*concurrency)
	var feeders sync.WaitGroup
	for z, b := range c.zones {
		if res.ZoneFailure[z] != nil {
			continue
		}
		// One feeder per zone, so a rate-limited zone never holds the
		// workers that another zone could use.
		feeders.Go(func() {
			for i, t := range targets {
				if !b.Applies(t) {
					continue
				}
				if c.wait(ctx, z) != nil {
					return
				}
				select {
				case jobs <- job{zone: z, target: i}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { feeders.Wait(); close(jobs) }()
	var workers sync.WaitGroup
	for range concurrency {
		workers.Go(func() {
			for j := range jobs {
				results <- c.check(ctx, j.zone, targets[j.target], false)
			}
		})
	}
	go func() { workers.Wait(); close(results) }()
	for ch := range results {
		res.ZoneQueries[ch.Zone] += ch.Queries
		emit(ch)
	}
	return res, ctx.Err()
}
