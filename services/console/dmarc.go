package console

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// DMARC is the /dmarc page: what the receivers' DMARC aggregate reports
// (RFC 7489 appendix C, RFC 9990) and SMTP TLS reports (RFC 8460) say about
// the mail carrying our domains, read from their daily rollups.
//
// A report covers a period (a UTC day, as the large receivers send them)
// and its rows are dated by the period's start, so the rollups are by day
// and the page reads every UTC day its range touches: FirstDay to LastDay.
// A report arrives after its period ends, so today's figures fill in
// tomorrow.
type DMARC struct {
	Meta
	// FirstDay and LastDay are the first and last UTC day read.
	FirstDay time.Time `json:"first_day"`
	LastDay  time.Time `json:"last_day"`
	// Rows are the DMARC verdicts per domain × source IP × reporter: our
	// sources first, then the worst pass rate first (then most messages).
	Rows []DMARCRow `json:"rows"`
	// Unknown are the sources outside our sending networks that
	// receivers saw sending as our domains, most messages first: the
	// spoofing view (and forwarders, mailing lists, services a customer
	// forgot to tell us about).
	Unknown []DMARCSource `json:"unknown"`
	// TLS are the SMTP TLS report figures per receiving domain ×
	// reporting organisation, the highest failure share first.
	TLS []TLSRow `json:"tls"`
}

// DMARCRow is one domain × source IP × reporter over the days read.
type DMARCRow struct {
	Domain   string `json:"domain"`
	SourceIP string `json:"source_ip"`
	// Reporter is the receiver that sent the reports (org_name).
	Reporter string `json:"reporter"`
	// OurSource: SourceIP is one of our sending networks.
	OurSource bool `json:"our_source"`
	// Messages is the messages the reports counted; Pass those that
	// passed DMARC, DKIMPass and SPFPass those whose policy-evaluated
	// (aligned) DKIM or SPF passed; Quarantined and Rejected those the
	// receiver quarantined or rejected.
	Messages    uint64 `json:"messages"`
	Pass        uint64 `json:"pass"`
	DKIMPass    uint64 `json:"dkim_pass"`
	SPFPass     uint64 `json:"spf_pass"`
	Quarantined uint64 `json:"quarantined"`
	Rejected    uint64 `json:"rejected"`
	// The same as percentages of Messages.
	PassPct     float64 `json:"pass_pct"`
	DKIMPassPct float64 `json:"dkim_pass_pct"`
	SPFPassPct  float64 `json:"spf_pass_pct"`
}

// DMARCSource is one unknown source × one of our domains.
type DMARCSource struct {
	SourceIP string `json:"source_ip"`
	Domain   string `json:"domain"`
	// Reporters are the receivers that saw it, in order.
	Reporters []string `json:"reporters"`
	Messages  uint64   `json:"messages"`
	Pass      uint64   `json:"pass"`
	PassPct   float64  `json:"pass_pct"`
}

// TLSRow is one receiving domain × reporting organisation.
type TLSRow struct {
	// PolicyDomain is the receiving domain of the TLS policy.
	PolicyDomain string `json:"policy_domain"`
	// Organization is the organisation that sent the report.
	Organization string `json:"organization"`
	// Sessions is successful plus failed sessions; Failures those that
	// failed to negotiate TLS; FailurePct their share.
	Sessions   uint64  `json:"sessions"`
	Failures   uint64  `json:"failures"`
	FailurePct float64 `json:"failure_pct"`
}

// The rollups the page reads (schemas/clickhouse): one row group per UTC
// day and dimensions, sums of the records' message counts and of the
// policies' session counts.
const (
	dmarcRollup  = "dmarc_record_1d"
	tlsrptRollup = "tlsrpt_result_1d"
)

// dmarcDays is the filter on a daily rollup for the UTC days p's range
// touches, and those days.
func dmarcDays(p Params) (*filter, time.Time, time.Time) {
	first, last := p.From.UTC().Truncate(24*time.Hour), p.To.UTC().Truncate(24*time.Hour)
	f := &filter{}
	f.add("bucket >= ? AND bucket <= ?", first, last)
	return f, first, last
}

// dmarc builds /dmarc from dmarc_record_1d and tlsrpt_result_1d. Each
// section is one grouped, sorted and limited query over the days read.
func (s source) dmarc(ctx context.Context, p Params) (DMARC, error) {
	out := DMARC{Meta: Meta{Page: "dmarc", Params: p, Now: s.now}}
	f, first, last := dmarcDays(p)
	out.FirstDay, out.LastDay = first, last
	f.addIf("domain", p.Domain).addIf("source_ip", p.SourceIP).addIf("customer", p.Customer)
	if p.Provider != "" {
		out.Notes = append(out.Notes, "the reports are not kept per provider: the provider filter does not apply to this page")
	}

	// Per domain × source × reporter: our sources first, the worst pass
	// rate first; a group with no messages (a damaged report) last.
	q, err := s.conn.Query(ctx, `SELECT domain, source_ip, org_name, our_source,
			sumMerge(messages) AS m, sumMerge(messages_dmarc_pass) AS pass, sumMerge(messages_dkim_pass),
			sumMerge(messages_spf_pass), sumMerge(messages_quarantined), sumMerge(messages_rejected)
		FROM `+dmarcRollup+f.where()+`
		GROUP BY domain, source_ip, org_name, our_source
		ORDER BY our_source DESC, if(m = 0, 2, pass / m), m DESC, domain, source_ip, org_name
		LIMIT ?`, append(slices.Clone(f.args), s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("dmarc: %w", err)
	}
	for q.Next() {
		var r DMARCRow
		var ours uint8
		if err := q.Scan(&r.Domain, &r.SourceIP, &r.Reporter, &ours, &r.Messages, &r.Pass, &r.DKIMPass, &r.SPFPass, &r.Quarantined, &r.Rejected); err != nil {
			q.Close()
			return out, fmt.Errorf("dmarc: %w", err)
		}
		r.OurSource = ours == 1
		r.PassPct, r.DKIMPassPct, r.SPFPassPct = pct(r.Pass, r.Messages), pct(r.DKIMPass, r.Messages), pct(r.SPFPass, r.Messages)
		out.Rows = append(out.Rows, r)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return out, fmt.Errorf("dmarc: %w", err)
	}
	s.noteLimit(&out.Meta, "DMARC pass rates", len(out.Rows), "filter by domain or source IP for the others")

	// Unknown sources, most messages first.
	uf := &filter{conds: slices.Clone(f.conds), args: slices.Clone(f.args)}
	uf.add("our_source = 0")
	q, err = s.conn.Query(ctx, `SELECT source_ip, domain, arraySort(groupUniqArray(org_name)), sumMerge(messages) AS m, sumMerge(messages_dmarc_pass)
		FROM `+dmarcRollup+uf.where()+`
		GROUP BY source_ip, domain
		ORDER BY m DESC, source_ip, domain
		LIMIT ?`, append(uf.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("unknown sources: %w", err)
	}
	for q.Next() {
		var u DMARCSource
		if err := q.Scan(&u.SourceIP, &u.Domain, &u.Reporters, &u.Messages, &u.Pass); err != nil {
			q.Close()
			return out, fmt.Errorf("unknown sources: %w", err)
		}
		u.PassPct = pct(u.Pass, u.Messages)
		out.Unknown = append(out.Unknown, u)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return out, fmt.Errorf("unknown sources: %w", err)
	}
	s.noteLimit(&out.Meta, "unknown sources", len(out.Unknown), "filter by domain for the others")

	// TLS: per receiving domain × organisation, the highest failure share
	// first. The reports are about receiving domains, not our domains or
	// IPs: the filters do not apply.
	tf, _, _ := dmarcDays(p)
	if p.Domain != "" || p.SourceIP != "" || p.Customer != "" {
		out.Notes = append(out.Notes, "TLS reports are per receiving domain: the domain, source IP and customer filters do not apply to them")
	}
	q, err = s.conn.Query(ctx, `SELECT policy_domain, organization, sumMerge(successful_sessions) AS ok, sumMerge(failed_sessions) AS failed
		FROM `+tlsrptRollup+tf.where()+`
		GROUP BY policy_domain, organization
		ORDER BY if(ok + failed = 0, -1, failed / (ok + failed)) DESC, failed DESC, policy_domain, organization
		LIMIT ?`, append(tf.args, s.cfg.Rows)...)
	if err != nil {
		return out, fmt.Errorf("tls reports: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var r TLSRow
		var ok uint64
		if err := q.Scan(&r.PolicyDomain, &r.Organization, &ok, &r.Failures); err != nil {
			return out, fmt.Errorf("tls reports: %w", err)
		}
		r.Sessions = ok + r.Failures
		r.FailurePct = pct(r.Failures, r.Sessions)
		out.TLS = append(out.TLS, r)
	}
	if err := q.Err(); err != nil {
		return out, fmt.Errorf("tls reports: %w", err)
	}
	s.noteLimit(&out.Meta, "TLS failures", len(out.TLS), "the worst are first")
	return out, nil
}

// noteLimit notes on the page that a section shows only its first
// console.rows rows when it has that many.
func (s source) noteLimit(m *Meta, section string, n int, hint string) {
	if n >= s.cfg.Rows {
		m.Notes = append(m.Notes, fmt.Sprintf("%s: only the first %d rows are shown (console.rows); %s", section, s.cfg.Rows, hint))
	}
}
