package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

// The console scenario's synthetic deployment: sending IPs, providers and
// customers, and the events they produce over N days, generated five
// minutes at a time. Everything but the event ids derives from the seed,
// the bucket and the world's shape, so two runs load the same traffic.

// bucketLen is the generator's step and the rollups' finest bucket.
const bucketLen = 5 * time.Minute

// bucketsPerDay is the number of 5-minute buckets in a day.
const bucketsPerDay = int(24 * time.Hour / bucketLen)

// worldProvider is a mailbox provider the world sends to.
type worldProvider struct {
	name, domain string
	weight       float64 // share of deliveries
	spam         float64 // probes filed as spam
}

// worldCustomer is a sender whose mail leaves from a few of the IPs.
type worldCustomer struct {
	name, domain string
	ips          []int
	weight       float64 // share of deliveries
	complaints   float64 // complaints per delivered message
	subject      string
}

// knownProviders are the first providers a world uses, with a realistic
// share of a consumer list's mail each; more are made up beyond them.
var knownProviders = []worldProvider{
	{name: "gmail", domain: "gmail.com", weight: 35, spam: 0.05},
	{name: "outlook", domain: "outlook.com", weight: 20, spam: 0.12},
	{name: "yahoo", domain: "yahoo.com", weight: 12, spam: 0.08},
	{name: "icloud", domain: "icloud.com", weight: 10, spam: 0.03},
	{name: "aol", domain: "aol.com", weight: 6, spam: 0.08},
	{name: "comcast", domain: "comcast.net", weight: 6, spam: 0.02},
	{name: "gmx", domain: "gmx.de", weight: 6, spam: 0.10},
	{name: "orange", domain: "orange.fr", weight: 5, spam: 0.06},
}

// zones are the blocklists the world's IPs get listed on.
var worldZones = []struct{ zone, list, delist string }{
	{"b.barracudacentral.org", "Barracuda Reputation", "https://www.barracudacentral.org/rbl/removal-request/"},
	{"bl.spamcop.net", "SpamCop", "https://www.spamcop.net/bl.shtml?"},
	{"psbl.surriel.com", "PSBL", "https://psbl.org/listing?ip="},
}

// deferral and bounce reasons: category, signature, DSN, reply code and
// the remote reply's text.
type worldReply struct {
	category, signature, dsn string
	code                     uint16
	text                     string
}

var (
	deferReplies = []worldReply{
		{"rate_limited", "rate_limit", "4.7.28", 421, "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."},
		{"remote_system", "try_again_later", "4.3.0", 451, "451 4.3.0 Temporary server error. Please try again later"},
		{"network", "connection_timed_out", "4.4.1", 0, "connect to mx.%s[203.0.113.7]:25: Connection timed out"},
	}
	blockedReply  = worldReply{"blocked_ip_or_blocklist", "spamhaus", "4.7.1", 554, "554 5.7.1 Service unavailable; Client host [%s] blocked using zen.spamhaus.org"}
	bounceReplies = []worldReply{
		{"user_unknown", "no_such_user", "5.1.1", 550, "550 5.1.1 The email account that you tried to reach does not exist."},
		{"user_unknown", "no_such_user", "5.1.1", 550, "550 5.1.1 The email account that you tried to reach does not exist."},
		{"user_unknown", "no_such_user", "5.1.1", 550, "550 5.1.1 The email account that you tried to reach does not exist."},
		{"mailbox_full", "over_quota", "5.2.2", 552, "552 5.2.2 The recipient's mailbox is full and can't accept messages now."},
		{"spam_content", "content_rejected", "5.7.1", 550, "550 5.7.1 Our system has detected that this message is likely unsolicited mail."},
		{"policy", "dmarc_policy", "5.7.26", 550, "550 5.7.26 Unauthenticated email from this domain is not accepted due to domain's DMARC policy."},
	}
)

// world is the synthetic deployment and its generator.
type world struct {
	start, end   time.Time // [start, end), on 5-minute boundaries
	days         int
	perDay       int
	ips          []string
	providers    []worldProvider
	customers    []worldCustomer
	providerCum  []float64
	customerCum  []float64
	source       schemas.Source
	seed         uint64
	rare         map[int][]schemas.Event // low-volume events by bucket
	sampleBucket int                     // the bucket whose first delivery is the trace sample

	delivery  schemas.DeliveryAttempted
	probeSent schemas.ProbeSent
	probeRecv schemas.ProbeReceived
	probeMiss schemas.ProbeMissing
	complaint schemas.ComplaintReceived
}

// worldShape is what a world is made of; the scenario's flags.
type worldShape struct {
	days, perDay, ips, providers, customers int
	seed                                    uint64
}

func newWorld(examplesDir string, shape worldShape, now time.Time) (*world, error) {
	end := now.UTC().Truncate(bucketLen)
	w := &world{
		start:  end.Add(-time.Duration(shape.days) * 24 * time.Hour),
		end:    end,
		days:   shape.days,
		perDay: shape.perDay,
		seed:   shape.seed,
	}
	host, _ := os.Hostname()
	w.source = schemas.Source{Worker: "loadtest", Host: host}
	for i := range shape.ips {
		// TEST-NET-1, then TEST-NET-2 and -3: documentation addresses.
		nets := []string{"192.0.2.", "198.51.100.", "203.0.113."}
		w.ips = append(w.ips, nets[(i/200)%3]+strconv.Itoa(10+i%200))
	}
	for i := range shape.providers {
		if i < len(knownProviders) {
			w.providers = append(w.providers, knownProviders[i])
			continue
		}
		name := "provider" + strconv.Itoa(i+1)
		w.providers = append(w.providers, worldProvider{name: name, domain: name + ".example", weight: 3, spam: 0.05})
	}
	subjects := []string{"Spring sale: 40% off everything", "Your weekly digest", "Order confirmation", "New arrivals just for you", "Last chance: free shipping ends tonight"}
	for i := range shape.customers {
		name := fmt.Sprintf("cust-%02d", i)
		c := worldCustomer{
			name:       name,
			domain:     name + ".example.com",
			ips:        []int{i % shape.ips},
			weight:     1 / float64(i+2), // a few large senders, many small ones
			complaints: 0.001,
			subject:    subjects[i%len(subjects)],
		}
		if i%3 == 0 && shape.ips > 1 {
			c.ips = append(c.ips, (i+1)%shape.ips)
		}
		if i == 3 {
			c.complaints = 0.004 // the customer the evaluator keeps cutting off
		}
		w.customers = append(w.customers, c)
	}
	w.providerCum = cumulative(w.providers, func(p worldProvider) float64 { return p.weight })
	w.customerCum = cumulative(w.customers, func(c worldCustomer) float64 { return c.weight })

	templates := map[string]schemas.Event{}
	for _, typ := range []string{schemas.TypeDeliveryAttempted, schemas.TypeProbeSent, schemas.TypeProbeReceived, schemas.TypeProbeMissing, schemas.TypeComplaintReceived} {
		k, ok := schemas.KindByType(typ)
		if !ok {
			return nil, fmt.Errorf("no kind %s", typ)
		}
		ev, err := loadExample(examplesDir, k)
		if err != nil {
			return nil, err
		}
		templates[typ] = ev
	}
	w.delivery = *templates[schemas.TypeDeliveryAttempted].(*schemas.DeliveryAttempted)
	w.probeSent = *templates[schemas.TypeProbeSent].(*schemas.ProbeSent)
	w.probeRecv = *templates[schemas.TypeProbeReceived].(*schemas.ProbeReceived)
	w.probeMiss = *templates[schemas.TypeProbeMissing].(*schemas.ProbeMissing)
	w.complaint = *templates[schemas.TypeComplaintReceived].(*schemas.ComplaintReceived)
	if err := w.planRare(); err != nil {
		return nil, err
	}
	w.sampleBucket = w.buckets() - 2
	return w, nil
}

func cumulative[T any](items []T, weight func(T) float64) []float64 {
	out := make([]float64, len(items))
	total := 0.0
	for i, it := range items {
		total += weight(it)
		out[i] = total
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

// pick returns the index whose cumulative share first exceeds u in [0, 1).
func pick(cum []float64, u float64) int {
	i := sort.SearchFloat64s(cum, u)
	if i >= len(cum) {
		return len(cum) - 1
	}
	if cum[i] == u {
		i++
	}
	return min(i, len(cum)-1)
}

// buckets is the number of 5-minute buckets the world spans.
func (w *world) buckets() int { return w.days * bucketsPerDay }

func (w *world) bucketStart(b int) time.Time { return w.start.Add(time.Duration(b) * bucketLen) }

// deliveriesIn is the number of deliveries in bucket b: perDay spread over
// the day's buckets, exactly perDay per day.
func (w *world) deliveriesIn(b int) int {
	i := b % bucketsPerDay
	return w.perDay*(i+1)/bucketsPerDay - w.perDay*i/bucketsPerDay
}

// deferRate and bounceRate per IP x provider: most pairs are healthy, one
// is blocked at its provider and one bounces a lot, so the overview has
// cells of every colour.
func (w *world) deferRate(ip, provider int) float64 {
	if ip == 1%len(w.ips) && provider == 0 {
		return 0.25
	}
	return 0.01 + 0.005*float64((ip+provider)%5)
}

func (w *world) bounceRate(ip, provider int) float64 {
	if ip == 2%len(w.ips) && provider == 1%len(w.providers) {
		return 0.08
	}
	return 0.005 + 0.002*float64((ip*3+provider)%4)
}

// generate emits every event of bucket b, in no particular order within
// the bucket; every event's time lies inside the bucket.
func (w *world) generate(b int, emit func(schemas.Event) error) error {
	rng := rand.New(rand.NewPCG(w.seed, uint64(b)))
	start := w.bucketStart(b)
	if err := w.probes(b, start, rng, emit); err != nil {
		return err
	}
	if err := w.deliveries(b, start, rng, emit); err != nil {
		return err
	}
	for _, ev := range w.rare[b] {
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) stamp(ev schemas.Event, at time.Time) error {
	return schemas.Stamp(ev, w.source, at)
}

func (w *world) deliveries(b int, start time.Time, rng *rand.Rand, emit func(schemas.Event) error) error {
	n := w.deliveriesIn(b)
	for i := range n {
		c := &w.customers[pick(w.customerCum, rng.Float64())]
		ip := c.ips[rng.IntN(len(c.ips))]
		p := pick(w.providerCum, rng.Float64())
		prov := &w.providers[p]
		offset := time.Duration(rng.Int64N(int64(bucketLen/time.Millisecond-1000))) * time.Millisecond
		at := start.Add(offset)
		d := w.delivery // a copy of the template
		seq := strconv.Itoa(b) + "x" + strconv.Itoa(i)
		d.TrackingID = "m-" + seq
		d.Customer = c.name
		d.SourceIP = w.ips[ip]
		d.Provider = prov.name
		d.RecipientDomain = prov.domain
		d.QueueID = "Q" + seq
		d.MessageID = seq + "@mail." + c.domain
		d.Sender = "news@" + c.domain
		d.Recipient = "u" + strconv.Itoa(rng.IntN(5_000_000)) + "@" + prov.domain
		d.SASLUsername = c.name
		d.ClientHost = "app." + c.domain
		d.RelayHost = "mx." + prov.domain
		d.MTAHost = "mx-out-" + strconv.Itoa(ip%4)
		d.MTAInstance = "postfix-out" + strconv.Itoa(ip%4) + "/smtp"
		d.SizeBytes = uint32(8000 + rng.IntN(60000))
		d.DelayMs = int64(200 + rng.IntN(3000))
		u := rng.Float64()
		switch {
		case u < w.deferRate(ip, p):
			r := deferReplies[rng.IntN(len(deferReplies))]
			if ip == 1%len(w.ips) && p == 0 {
				r = blockedReply
			}
			setReply(&d, schemas.StatusDeferred, r, w.ips[ip], prov.domain)
		case u < w.deferRate(ip, p)+w.bounceRate(ip, p):
			setReply(&d, schemas.StatusBounced, bounceReplies[rng.IntN(len(bounceReplies))], w.ips[ip], prov.domain)
		default:
			d.Status = schemas.StatusSent
			d.DSN = "2.0.0"
			d.ReplyCode = 250
			d.Reply = "250 2.0.0 OK " + seq
			d.Reason, d.Category, d.Signature = "delivered", "", ""
		}
		if b == w.sampleBucket && i == 0 {
			d.TrackingID = traceSample
		}
		if err := w.stamp(&d, at); err != nil {
			return err
		}
		if err := emit(&d); err != nil {
			return err
		}
		if d.Status == schemas.StatusSent && rng.Float64() < c.complaints {
			left := start.Add(bucketLen - time.Millisecond).Sub(at)
			if err := w.complain(&d, at.Add(time.Duration(rng.Int64N(int64(left)+1))), rng, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// traceSample is the tracking id of one delivery near the end of the
// world, the message the trace page looks up.
const traceSample = "m-trace-sample"

func setReply(d *schemas.DeliveryAttempted, status string, r worldReply, ip, domain string) {
	d.Status = status
	d.DSN = r.dsn
	d.ReplyCode = r.code
	d.Category = r.category
	d.Signature = r.signature
	d.Reason = r.signature
	d.Reply = r.text
	switch {
	case r.category == "network":
		d.Reply = fmt.Sprintf(r.text, domain)
	case r.category == "blocked_ip_or_blocklist":
		d.Reply = fmt.Sprintf(r.text, ip)
	}
}

func (w *world) complain(d *schemas.DeliveryAttempted, at time.Time, rng *rand.Rand, emit func(schemas.Event) error) error {
	c := w.complaint
	c.TrackingID = d.TrackingID
	c.Customer = d.Customer
	c.SourceIP = d.SourceIP
	c.Provider = d.Provider
	c.RecipientDomain = d.RecipientDomain
	c.ReportedSourceIP = d.SourceIP
	c.OriginalMessageID = d.MessageID
	c.OriginalRcptTo = []string{"redacted@" + d.RecipientDomain}
	c.ArrivalDate = d.Time.Truncate(time.Second)
	c.ReportedDomains = []string{d.Customer + ".example.com"}
	c.OriginalSubject = w.customers[customerIndex(d.Customer)].subject
	c.OriginalFrom = d.Customer + " <news@" + d.Customer + ".example.com>"
	c.HeadersExcerpt = "From: " + c.OriginalFrom + "\r\nSubject: " + c.OriginalSubject
	c.ReportMessageID = "fbl-" + d.TrackingID + "@feedback." + d.RecipientDomain
	c.Counted, c.Trusted, c.Trust = true, true, schemas.TrustOperatorDKIM
	switch u := rng.Float64(); {
	case u < 0.02:
		c.Counted = false
	case u < 0.05:
		c.Trusted, c.Trust = false, schemas.TrustUnverified
	}
	if err := w.stamp(&c, at); err != nil {
		return err
	}
	return emit(&c)
}

// customerIndex parses the index out of a customer's name, cust-NN.
func customerIndex(name string) int {
	i, _ := strconv.Atoi(name[len("cust-"):])
	return i
}

// probes: one probe per IP x provider per bucket, received (inbox or spam)
// or missing, sent in the bucket's first minute and found in time to land
// in the same bucket.
func (w *world) probes(b int, start time.Time, rng *rand.Rand, emit func(schemas.Event) error) error {
	for ip := range w.ips {
		for p := range w.providers {
			prov := &w.providers[p]
			seq := strconv.Itoa(b) + "p" + strconv.Itoa(ip) + "x" + strconv.Itoa(p)
			sentAt := start.Add(time.Duration(rng.Int64N(int64(time.Minute/time.Millisecond))) * time.Millisecond)
			s := w.probeSent
			s.ProbeID = "probe-" + seq
			s.SourceIP = w.ips[ip]
			s.Provider = prov.name
			s.RecipientDomain = prov.domain
			s.Target = prov.name + "-seed-1"
			s.SeedAddress = "mailmon.seed1@" + prov.domain
			s.MessageID = s.ProbeID + "@probe.example.com"
			s.QueueID = "P" + seq
			s.TotalMs = int32(200 + rng.IntN(800))
			if err := w.stamp(&s, sentAt); err != nil {
				return err
			}
			if rng.Float64() < 0.005 {
				s.Outcome, s.FailedPhase, s.ReplyCode, s.EnhancedStatus = schemas.OutcomeTempfail, "rcpt", 451, "4.7.1"
				s.ReplyText, s.Reason, s.Category, s.QueueID = "451 4.7.1 Try again later", "greylisted", "rate_limited", ""
				if err := emit(&s); err != nil {
					return err
				}
				continue
			}
			if err := emit(&s); err != nil {
				return err
			}
			spam := prov.spam
			if ip == 1%len(w.ips) && p == 0 {
				spam = 0.4
			}
			u := rng.Float64()
			if u < 0.015 {
				m := w.probeMiss
				m.ProbeRoute, m.ProbeSeed = s.ProbeRoute, s.ProbeSeed
				m.Account, m.MessageID, m.SentAt = s.Target, s.MessageID, s.Time
				at := start.Add(bucketLen - time.Second)
				m.WaitedMs = at.Sub(s.Time).Milliseconds()
				m.DeadlineMs = m.WaitedMs - 1000
				if err := w.stamp(&m, at); err != nil {
					return err
				}
				if err := emit(&m); err != nil {
					return err
				}
				continue
			}
			r := w.probeRecv
			r.ProbeRoute, r.ProbeSeed = s.ProbeRoute, s.ProbeSeed
			r.Account, r.MessageID, r.SentAt = s.Target, s.MessageID, s.Time
			r.Placement, r.Folder = schemas.PlacementInbox, "INBOX"
			if u < 0.015+spam {
				r.Placement, r.Folder = schemas.PlacementSpam, "Junk"
			}
			latency := time.Duration(2000+min(rng.ExpFloat64()*12000, 200_000)) * time.Millisecond
			r.LatencyMs = latency.Milliseconds()
			r.ArrivedAt = s.Time.Add(latency).Truncate(time.Second)
			r.DetectionMs = int64(100 + rng.IntN(1500))
			at := s.Time.Add(latency + time.Duration(r.DetectionMs)*time.Millisecond)
			r.AuthServID = "mx." + prov.domain
			if err := w.stamp(&r, at); err != nil {
				return err
			}
			if err := emit(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// planRare builds the low-volume events (listings, audits, decisions,
// alerts) and files them under their buckets: each day some IPs are
// listed for eight hours; two listings are still in force at the end; a
// daily audit of every IP and customer domain; the complaining customer
// cut off for six hours a day and one customer rerouted every third day,
// each with its alert.
func (w *world) planRare() error {
	w.rare = map[int][]schemas.Event{}
	add := func(at time.Time, ev schemas.Event) error {
		if !at.Before(w.end) || at.Before(w.start) {
			return nil
		}
		if err := w.stamp(ev, at); err != nil {
			return err
		}
		if err := schemas.Validate(ev); err != nil {
			return fmt.Errorf("generated %T: %w", ev, err)
		}
		b := int(at.Sub(w.start) / bucketLen)
		w.rare[b] = append(w.rare[b], ev)
		return nil
	}
	listing := func(ip, zone int, at time.Time, hold time.Duration) error {
		z := worldZones[zone%len(worldZones)]
		target := w.ips[ip]
		lookup := schemas.DNSBLLookup{Target: target, TargetKind: "ip", SourceIP: target, Zone: z.zone, List: z.list, Weight: 1, QueryName: reverseIPv4(target) + "." + z.zone}
		sweep := "sweep-" + strconv.FormatInt(at.Unix(), 10)
		l := &schemas.DNSBLListed{DNSBLLookup: lookup, AnswerCodes: []string{"127.0.0.2"}, AnswerMeanings: []string{"listed"},
			TXT: "Listed: see " + z.delist + target, DelistURL: z.delist + target, PreviousState: "clean", SweepID: sweep, Resolver: "127.0.0.1:53"}
		if err := add(at, l); err != nil {
			return err
		}
		alert := &schemas.AlertRaised{Rule: "dnsbl_listed", Status: "firing", Severity: "critical", Subject: "ip:" + target,
			Summary: target + " listed on " + z.zone, DedupeKey: "dnsbl_listed/" + z.zone + "/" + target, SourceIP: target}
		if err := add(at.Add(time.Second), alert); err != nil {
			return err
		}
		if hold <= 0 {
			return nil
		}
		off := at.Add(hold)
		d := &schemas.DNSBLDelisted{DNSBLLookup: lookup, PreviousAnswerCodes: []string{"127.0.0.2"}, ListedSince: at.Truncate(time.Millisecond),
			ListedMs: hold.Milliseconds(), SweepID: "sweep-" + strconv.FormatInt(off.Unix(), 10), Resolver: "127.0.0.1:53"}
		if err := add(off, d); err != nil {
			return err
		}
		resolved := *alert
		resolved.Status, resolved.Summary = "resolved", target+" no longer listed on "+z.zone
		return add(off.Add(time.Second), &resolved)
	}
	for day := range w.days {
		dayStart := w.start.Add(time.Duration(day) * 24 * time.Hour)
		for ip := range w.ips {
			h := (day*7 + ip*13) % 17
			if h == 0 {
				if err := listing(ip, day+ip, dayStart.Add(time.Duration(6+ip%10)*time.Hour), 8*time.Hour); err != nil {
					return err
				}
			}
			audit := &schemas.DNSAudit{AuditID: "audit-" + strconv.Itoa(day), Target: w.ips[ip], TargetKind: "ip", SourceIP: w.ips[ip],
				PTRNames: []string{"mx-out-" + strconv.Itoa(ip) + ".example.com"}, WorstSeverity: "ok",
				FindingChecks: []string{"ptr", "fcrdns"}, FindingSeverities: []string{"ok", "ok"},
				FindingMessages: []string{"PTR mx-out-" + strconv.Itoa(ip) + ".example.com", "forward-confirmed"}}
			if ip == 4%len(w.ips) {
				audit.WorstSeverity, audit.FindingSeverities[1], audit.FindingMessages[1] = "warning", "warning", "PTR does not resolve back to the IP"
			}
			if err := add(dayStart.Add(4*time.Hour+30*time.Minute), audit); err != nil {
				return err
			}
		}
		for _, c := range w.customers {
			audit := &schemas.DNSAudit{AuditID: "audit-" + strconv.Itoa(day), Target: c.domain, TargetKind: "domain",
				SPFRecord: "v=spf1 ip4:192.0.2.0/24 -all", DMARCRecord: "v=DMARC1; p=quarantine", DMARCPolicy: "quarantine",
				DKIMSelectors: []string{"s1"}, WorstSeverity: "ok", FindingChecks: []string{"spf", "dkim", "dmarc"},
				FindingSeverities: []string{"ok", "ok", "ok"}, FindingMessages: []string{"SPF valid", "selector s1 publishes a 2048-bit RSA key", "DMARC quarantine"}}
			if err := add(dayStart.Add(4*time.Hour+31*time.Minute), audit); err != nil {
				return err
			}
		}
		bad := w.customers[3%len(w.customers)]
		at := dayStart.Add(11 * time.Hour)
		cut := &schemas.DecisionCutoff{
			DecisionTarget:   schemas.DecisionTarget{Scope: "customer", Subject: "customer:" + bad.name, Customer: bad.name},
			DecisionTerm:     schemas.DecisionTerm{Rule: "complaint_rate", Offence: uint16(day + 1), Until: at.Add(6 * time.Hour), DurationMs: (6 * time.Hour).Milliseconds()},
			PolicyAction:     "DEFER_IF_PERMIT",
			PolicyText:       "4.7.1 Sending suspended for " + bad.name + ": complaint rate above 0.3%",
			DecisionEvidence: schemas.DecisionEvidence{WindowMs: 86_400_000, Complaints: 14, Delivered: 3870, Rate: 0.0036, Threshold: 0.003},
		}
		if err := add(at, cut); err != nil {
			return err
		}
		alert := &schemas.AlertRaised{Rule: "complaint_rate", Status: "firing", Severity: "critical", Subject: cut.Subject,
			Summary: bad.name + " cut off for 6h: complaint rate 0.36%", DedupeKey: "complaint_rate/" + cut.Subject, Customer: bad.name, DecisionID: cut.ID}
		if err := add(at.Add(time.Second), alert); err != nil {
			return err
		}
		if day%3 == 0 {
			c := w.customers[7%len(w.customers)]
			prov := w.providers[2%len(w.providers)].name
			re := &schemas.DecisionReroute{
				DecisionTarget:   schemas.DecisionTarget{Scope: "customer_provider", Subject: "customer:" + c.name + "/provider:" + prov, Customer: c.name, Provider: prov},
				DecisionTerm:     schemas.DecisionTerm{Rule: "complaint_rate", Offence: 1, Until: at.Add(28 * time.Hour), DurationMs: (24 * time.Hour).Milliseconds()},
				Transport:        "ndr",
				DecisionEvidence: schemas.DecisionEvidence{WindowMs: 3_600_000, Complaints: 9, Delivered: 2210, Rate: 0.0041, Threshold: 0.003},
			}
			if err := add(at.Add(4*time.Hour), re); err != nil {
				return err
			}
		}
	}
	// Two listings still in force at the end of the world.
	if err := listing(1%len(w.ips), 0, w.end.Add(-26*time.Hour-7*time.Minute), 0); err != nil {
		return err
	}
	if err := listing(5%len(w.ips), 1, w.end.Add(-3*time.Hour-2*time.Minute), 0); err != nil {
		return err
	}
	for b := range w.rare {
		slices.SortFunc(w.rare[b], func(x, y schemas.Event) int { return x.EventHeader().Time.Compare(y.EventHeader().Time) })
	}
	return nil
}

func reverseIPv4(ip string) string {
	var parts []string
	start := 0
	for i := 0; i <= len(ip); i++ {
		if i == len(ip) || ip[i] == '.' {
			parts = append(parts, ip[start:i])
			start = i + 1
		}
	}
	slices.Reverse(parts)
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "."
		}
		out += p
	}
	return out
}
