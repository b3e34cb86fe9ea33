package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/internal/chstore"
	"github.com/mailmon/mailmon/services/peers"
)

// statusWindow is how far back the summary looks.
const statusWindow = time.Hour

// Summary is what the lab shows a newcomer: each signal of the loop, read
// back from ClickHouse (what the workers stored), and the abuse team's
// mailbox.
type Summary struct {
	At time.Time
	// Probes counts received probes by provider, placement and source IP.
	Probes []Count
	// Missing counts probes reported missing by provider and source IP.
	Missing []Count
	// Listings are the listed targets with their zones.
	Listings []Count
	// Refusals counts refused and deferred deliveries by provider, source
	// IP and reply category.
	Refusals []Count
	// Rates are complaints over sent deliveries per customer.
	Rates []Rate
	// Decisions are the latest cut-off and reroute decisions.
	Decisions []Decision
	// Rerouted counts deliveries that left through the ndr pool
	// (127.0.0.4), by customer and status.
	Rerouted []Count
	// Suppressed counts the recipients put on a suppression list, by
	// customer and reason.
	Suppressed []Count
	// DMARC counts the messages receivers' aggregate reports describe, by
	// header From domain and whether the source is one of ours: total and
	// passing DMARC.
	DMARC []DMARCCount
	// Alerts counts alert events by status (firing, resolved).
	Alerts []Count
	// AbuseMailbox is how many alert e-mails the abuse team's mailbox
	// holds.
	AbuseMailbox int
	// Console is the ops console's address, when the lab serves it.
	Console string
}

// DMARCCount is what DMARC aggregate reports say of one domain's mail from
// our sources, or from sources not ours.
type DMARCCount struct {
	Domain    string
	OurSource bool
	Messages  uint64
	Pass      uint64
}

// Count is a number of events with the values of the columns grouped by.
type Count struct {
	Keys []string
	N    uint64
}

// Rate is one customer's complaint rate.
type Rate struct {
	Customer         string
	Complaints, Sent uint64
	// Untrusted complaints are stored but never counted.
	Untrusted uint64
	// ActReached: the rate is at or above the act threshold.
	ActReached bool
}

// Decision is one enforcement decision.
type Decision struct {
	Kind, Subject, Transport string
	Rate, Threshold          float64
	Until                    time.Time
}

// OpenClickHouse connects to the lab's ClickHouse as the status command
// sees it: the local server of the lab config, by its port.
func OpenClickHouse(ctx context.Context, cfg app.Config) (driver.Conn, error) {
	return chstore.Open(ctx, app.ClickHouseClient(cfg))
}

// ReadSummary queries ClickHouse (database cfg.ClickHouse.Database) and
// the abuse mailbox under dir, the lab's state directory.
func ReadSummary(ctx context.Context, conn driver.Conn, cfg app.Config, dir string) (Summary, error) {
	db := cfg.ClickHouse.Database
	since := fmt.Sprintf("time > now() - %d", int(statusWindow.Seconds()))
	s := Summary{At: time.Now().UTC()}
	var err error
	counts := func(dst *[]Count, keys int, q string) {
		if err != nil {
			return
		}
		*dst, err = queryCounts(ctx, conn, keys, q)
	}
	counts(&s.Probes, 3, "SELECT provider, placement, source_ip, uniqExact(id) FROM "+db+".probe_received WHERE "+since+" GROUP BY provider, placement, source_ip ORDER BY provider, placement, source_ip")
	counts(&s.Missing, 2, "SELECT provider, source_ip, uniqExact(id) FROM "+db+".probe_missing WHERE "+since+" GROUP BY provider, source_ip ORDER BY provider, source_ip")
	counts(&s.Listings, 2, "SELECT target, zone, uniqExact(id) FROM "+db+".dnsbl_listed GROUP BY target, zone ORDER BY target, zone")
	counts(&s.Refusals, 4, "SELECT provider, source_ip, status, category, uniqExact(id) FROM "+db+".delivery_attempted WHERE "+since+" AND status IN ('bounced', 'deferred', 'rejected') AND customer != '' GROUP BY provider, source_ip, status, category ORDER BY provider, source_ip, status, category")
	counts(&s.Rerouted, 2, "SELECT customer, status, uniqExact(id) FROM "+db+".delivery_attempted WHERE "+since+" AND source_ip = '"+ipNDR+"' GROUP BY customer, status ORDER BY customer, status")
	counts(&s.Suppressed, 2, "SELECT customer, reason, uniqExact(id) FROM "+db+".suppression_added WHERE "+since+" GROUP BY customer, reason ORDER BY customer, reason")
	counts(&s.Alerts, 1, "SELECT status, uniqExact(id) FROM "+db+".alert_raised WHERE "+since+" GROUP BY status ORDER BY status")
	if err != nil {
		return s, err
	}
	if s.Rates, err = queryRates(ctx, conn, db, since, cfg.ComplaintEvaluator.Customer.ActRate); err != nil {
		return s, err
	}
	if s.Decisions, err = queryDecisions(ctx, conn, db); err != nil {
		return s, err
	}
	if s.DMARC, err = queryDMARC(ctx, conn, db, since); err != nil {
		return s, err
	}
	local, domain, _ := strings.Cut(AbuseAddress, "@")
	s.AbuseMailbox = peers.CountMaildir(peers.MaildirOf(filepath.Join(dir, "dovecot"), domain, local), "")
	if cfg.Console.Enabled && cfg.HTTP.Addr != "" {
		s.Console = "http://" + cfg.HTTP.Addr + "/"
	}
	return s, nil
}

// queryCounts runs a query whose columns are keys strings and a count.
func queryCounts(ctx context.Context, conn driver.Conn, keys int, q string) ([]Count, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		c := Count{Keys: make([]string, keys)}
		dst := make([]any, 0, keys+1)
		for i := range c.Keys {
			dst = append(dst, &c.Keys[i])
		}
		dst = append(dst, &c.N)
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func queryRates(ctx context.Context, conn driver.Conn, db, since string, act float64) ([]Rate, error) {
	sent, err := queryCounts(ctx, conn, 1, "SELECT customer, uniqExact(id) FROM "+db+".delivery_attempted WHERE "+since+" AND status = 'sent' AND customer != '' AND customer != 'mailmon-probe' GROUP BY customer ORDER BY customer")
	if err != nil {
		return nil, err
	}
	complaints, err := queryCounts(ctx, conn, 2, "SELECT customer, toString(counted * trusted), uniqExact(id) FROM "+db+".complaint_received WHERE "+since+" AND customer != '' GROUP BY customer, counted * trusted")
	if err != nil {
		return nil, err
	}
	var out []Rate
	for _, s := range sent {
		r := Rate{Customer: s.Keys[0], Sent: s.N}
		for _, c := range complaints {
			if c.Keys[0] != r.Customer {
				continue
			}
			if c.Keys[1] == "1" {
				r.Complaints += c.N
			} else {
				r.Untrusted += c.N
			}
		}
		r.ActReached = act > 0 && r.Sent > 0 && float64(r.Complaints)/float64(r.Sent) >= act
		out = append(out, r)
	}
	return out, nil
}

func queryDecisions(ctx context.Context, conn driver.Conn, db string) ([]Decision, error) {
	var out []Decision
	for _, kind := range []string{"reroute", "cutoff"} {
		transport := "transport"
		if kind == "cutoff" {
			transport = "''"
		}
		rows, err := conn.Query(ctx, "SELECT subject, "+transport+", rate, threshold, until FROM "+db+".decision_"+kind+" ORDER BY time DESC LIMIT 5")
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			d := Decision{Kind: kind}
			if err := rows.Scan(&d.Subject, &d.Transport, &d.Rate, &d.Threshold, &d.Until); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Print writes the summary for a person.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "mailmon lab status at %s (events of the last %s, from ClickHouse)\n", s.At.Format("2006-01-02 15:04:05 MST"), statusWindow)
	line := func(title string, cs []Count, format func(Count) string) { writeLine(w, title, cs, format) }
	line("probes received", s.Probes, func(c Count) string { return fmt.Sprintf("%s %s from %s: %d", c.Keys[0], c.Keys[1], c.Keys[2], c.N) })
	line("probes missing", s.Missing, func(c Count) string { return fmt.Sprintf("%s from %s: %d", c.Keys[0], c.Keys[1], c.N) })
	line("listed", s.Listings, func(c Count) string { return fmt.Sprintf("%s on %s", c.Keys[0], c.Keys[1]) })
	line("refused", s.Refusals, func(c Count) string {
		return fmt.Sprintf("%s %s %s (%s): %d", c.Keys[0], c.Keys[2], c.Keys[1], orNone(c.Keys[3]), c.N)
	})
	if len(s.Rates) == 0 {
		fmt.Fprintf(w, "  %-16s (none yet)\n", "complaint rate")
	}
	for i, r := range s.Rates {
		title := ""
		if i == 0 {
			title = "complaint rate"
		}
		mark := ""
		if r.ActReached {
			mark = "  <- above the act threshold"
		}
		rate := 0.0
		if r.Sent > 0 {
			rate = 100 * float64(r.Complaints) / float64(r.Sent)
		}
		fmt.Fprintf(w, "  %-16s %-10s %d complaints / %d sent = %.1f%% (%d untrusted)%s\n", title, r.Customer, r.Complaints, r.Sent, rate, r.Untrusted, mark)
	}
	if len(s.Decisions) == 0 {
		fmt.Fprintf(w, "  %-16s (none yet)\n", "decisions")
	}
	for i, d := range s.Decisions {
		title := ""
		if i == 0 {
			title = "decisions"
		}
		via := ""
		if d.Transport != "" {
			via = " via " + d.Transport
		}
		fmt.Fprintf(w, "  %-16s %s %s%s until %s (rate %.1f%% >= %.1f%%)\n", title, d.Kind, d.Subject, via, d.Until.UTC().Format("15:04:05"), 100*d.Rate, 100*d.Threshold)
	}
	line("rerouted (ndr)", s.Rerouted, func(c Count) string { return fmt.Sprintf("%s %s: %d", c.Keys[0], c.Keys[1], c.N) })
	line("suppressed", s.Suppressed, func(c Count) string {
		customer := c.Keys[0]
		if customer == "" {
			customer = "global"
		}
		return fmt.Sprintf("%s %s: %d", customer, strings.ReplaceAll(c.Keys[1], "_", " "), c.N)
	})
	writeLine(w, "dmarc reports", s.DMARC, func(c DMARCCount) string {
		from := "ours"
		if !c.OurSource {
			from = "not ours"
		}
		return fmt.Sprintf("%s from %s: %d/%d pass", c.Domain, from, c.Pass, c.Messages)
	})
	line("alerts", s.Alerts, func(c Count) string { return fmt.Sprintf("%s: %d", c.Keys[0], c.N) })
	fmt.Fprintf(w, "  %-16s %d alert e-mails in %s\n", "abuse mailbox", s.AbuseMailbox, AbuseAddress)
	if s.Console != "" {
		fmt.Fprintf(w, "  %-16s %s (every figure above, by IP, provider and customer)\n", "ops console", s.Console)
	}
}

func orNone(s string) string {
	if s == "" {
		return "unclassified"
	}
	return s
}

// statusLoop prints the summary every interval until ctx ends. A failed
// read is logged and tried again at the next tick.
func statusLoop(ctx context.Context, cfg app.Config, dir string, w io.Writer, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var conn driver.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			c, err := OpenClickHouse(ctx, cfg)
			if err != nil {
				log.Warn("lab status: clickhouse unreachable", "error", err)
				continue
			}
			conn = c
		}
		s, err := ReadSummary(ctx, conn, cfg, dir)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("lab status: reading the summary failed", "error", err)
			}
			continue
		}
		s.Print(w)
	}
}

// queryDMARC sums the reported messages per domain and source kind, each
// record once (FINAL: a report mailed twice is one).
func queryDMARC(ctx context.Context, conn driver.Conn, db, since string) ([]DMARCCount, error) {
	q := "SELECT domain, our_source, sum(count), sumIf(count, dmarc = 'pass') FROM " + db + ".dmarc_record FINAL WHERE " + since +
		" GROUP BY domain, our_source ORDER BY domain, our_source DESC"
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []DMARCCount
	for rows.Next() {
		var c DMARCCount
		var ours uint8
		if err := rows.Scan(&c.Domain, &ours, &c.Messages, &c.Pass); err != nil {
			return nil, err
		}
		c.OurSource = ours != 0
		out = append(out, c)
	}
	return out, rows.Err()
}

// writeLine prints one status line: three items to a line (short enough to
// read, few lines), or "(none yet)".
func writeLine[T any](w io.Writer, title string, items []T, format func(T) string) {
	if len(items) == 0 {
		fmt.Fprintf(w, "  %-16s (none yet)\n", title)
		return
	}
	for i := 0; i < len(items); i += 3 {
		parts := make([]string, 0, 3)
		for _, it := range items[i:min(i+3, len(items))] {
			parts = append(parts, format(it))
		}
		fmt.Fprintf(w, "  %-16s %s\n", title, strings.Join(parts, ", "))
		title = ""
	}
}
