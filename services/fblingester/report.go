package fblingester

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/dmarc"
	"github.com/mailmon/mailmon/services/internal/provider"
	"github.com/mailmon/mailmon/services/internal/reportfile"
	"github.com/mailmon/mailmon/services/internal/tlsrpt"
)

// Outcomes of a DMARC aggregate report and of an SMTP TLS report.
const (
	outcomeDMARC  = "dmarc_report"
	outcomeTLSRPT = "tls_report"
)

// Why a report was dead-lettered, as counted in metrics.
const (
	reportRefusedLimit      = "limit"      // over the unpacking limits: a compression bomb
	reportRefusedUnreadable = "unreadable" // no parser could read it
	reportRefusedTooMany    = "too_many"   // more rows than maxReportEvents
)

// maxReportEvents bounds the events one message may become. Google's daily
// report for a busy domain has a few thousand records; a message far past
// this is refused rather than held in memory.
const maxReportEvents = 200_000

// reportPublishPending bounds the events of one report awaiting their
// PubAck at once.
const reportPublishPending = 512

// bareReport says whether raw is a report file rather than a mail: a gzip
// or zip archive, or an XML or JSON document (a file in a directory or
// given to `mailmon fbl import`). Such input is never ARF nor a bounce.
func bareReport(raw []byte) bool {
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) || bytes.HasPrefix(raw, []byte("PK\x03\x04")) {
		return true
	}
	s := bytes.TrimLeft(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")), " \t\r\n")
	return len(s) > 0 && (s[0] == '<' || s[0] == '{')
}

// analyseReport reads raw as DMARC aggregate or SMTP TLS reports: every
// report document found in it (attachments, gzip, zip, bare documents)
// becomes its events. ok is false when raw holds no report at all, so the
// caller goes on with other formats. A compression bomb or a document no
// parser reads is dead-lettered with the reason.
func (in *Ingester) analyseReport(raw []byte, id identity, via string, now time.Time) (res result, ok bool) {
	docs, err := reportfile.Extract(raw, reportfile.DefaultLimits())
	switch {
	case errors.Is(err, reportfile.ErrNoReport):
		return result{}, false
	case errors.Is(err, reportfile.ErrLimit):
		return result{outcome: outcomeDeadLetter, refused: reportRefusedLimit,
			reason: "report not unpacked, over the size limits (a compression bomb?): " + err.Error()}, true
	case err != nil:
		return result{outcome: outcomeDeadLetter, refused: reportRefusedUnreadable, reason: "report not unpacked: " + err.Error()}, true
	case len(docs) == 0:
		return result{}, false
	}
	var events []schemas.Event
	var formats []string
	for _, d := range docs {
		var evs []schemas.Event
		switch d.Format {
		case reportfile.FormatDMARC:
			rep, err := dmarc.Parse(d.Data)
			if err != nil {
				return result{outcome: outcomeDeadLetter, refused: reportRefusedUnreadable,
					reason: fmt.Sprintf("DMARC aggregate report %s not read: %v", d.Name, err)}, true
			}
			evs = in.dmarcEvents(rep, id, via, now)
		case reportfile.FormatTLSRPT:
			rep, err := tlsrpt.Parse(d.Data)
			if err != nil {
				return result{outcome: outcomeDeadLetter, refused: reportRefusedUnreadable,
					reason: fmt.Sprintf("SMTP TLS report %s not read: %v", d.Name, err)}, true
			}
			evs = in.tlsrptEvents(rep, id, via, now)
		default:
			continue
		}
		formats = append(formats, string(d.Format))
		events = append(events, evs...)
		if len(events) > maxReportEvents {
			return result{outcome: outcomeDeadLetter, refused: reportRefusedTooMany,
				reason: fmt.Sprintf("report of more than %d records", maxReportEvents)}, true
		}
	}
	if len(formats) == 0 {
		return result{}, false
	}
	for _, f := range formats {
		in.m.reports.WithLabelValues(f).Inc()
	}
	outcome := outcomeDMARC
	if formats[0] == string(reportfile.FormatTLSRPT) {
		outcome = outcomeTLSRPT
	}
	return result{outcome: outcome, events: events}, true
}

// reportTime is the time of a report's events: the start of its period,
// else its end, else the mail's Date, else now. The same report received
// again has the same time (and so the same ClickHouse row), whenever and
// however it comes.
func reportTime(begin, end time.Time, id identity, now time.Time) time.Time {
	for _, t := range []time.Time{begin, end} {
		if st := storableTime(t); !st.IsZero() {
			return st
		}
	}
	if plausible(id.date, now) {
		return id.date
	}
	return now
}

// stampReport fills a report event's header: its time, and an id derived
// from the report (never from the mail that carried it) and the row's
// position in it, so the same report mailed twice, as gzip and as zip, or
// by SMTP and from a mailbox, makes the same ids.
func (in *Ingester) stampReport(ev schemas.Event, key string, at time.Time, part int) {
	_ = schemas.Stamp(ev, in.source, at) // the types are registered
	h := ev.EventHeader()
	h.ID = eventID(identity{key: key, date: at}, h.Type, strconv.Itoa(part))
}

// dmarcEvents makes one event per <record>.
func (in *Ingester) dmarcEvents(rep *dmarc.Report, id identity, via string, now time.Time) []schemas.Event {
	org := lower(firstNonEmpty(rep.OrgName, domainOf(rep.Email), "unknown"))
	domain := lower(firstNonEmpty(rep.Domain, "unknown"))
	reportID := firstNonEmpty(rep.ReportID, "unknown")
	at := reportTime(rep.Begin, rep.End, id, now)
	key := "dmarc:" + org + "\x00" + reportID + "\x00" + domain
	pct := min(max(rep.Percent, 0), 100)
	out := make([]schemas.Event, 0, len(rep.Records))
	for i, r := range rep.Records {
		headerFrom := lower(firstNonEmpty(r.HeaderFrom, domain))
		ev := &schemas.DMARCRecord{
			ReportID:        reportID,
			OrgName:         org,
			ReporterEmail:   lower(rep.Email),
			Begin:           storableTime(rep.Begin),
			End:             storableTime(rep.End),
			Domain:          domain,
			Policy:          lower(firstNonEmpty(rep.Policy, "unknown")),
			SubdomainPolicy: lower(rep.SubdomainPolicy),
			Percent:         uint8(pct),
			SourceIP:        addrString(r.SourceIP),
			Count:           r.Count,
			Disposition:     lower(firstNonEmpty(r.Disposition, "unknown")),
			DKIM:            lower(firstNonEmpty(r.DKIM, "unknown")),
			SPF:             lower(firstNonEmpty(r.SPF, "unknown")),
			OverrideReasons: r.OverrideReasons,
			HeaderFrom:      headerFrom,
			EnvelopeFrom:    lower(r.EnvelopeFrom),
			EnvelopeTo:      lower(r.EnvelopeTo),
			OurSource:       in.tracer.ourNetwork(r.SourceIP),
			Customer:        in.tracer.customerOfDomain(headerFrom),
			ReceivedVia:     via,
		}
		if ev.Begin.IsZero() {
			ev.Begin = at
		}
		if ev.End.IsZero() {
			ev.End = ev.Begin
		}
		ev.DMARC = schemas.DMARCFail
		if ev.DKIM == "pass" || ev.SPF == "pass" {
			ev.DMARC = schemas.DMARCPass
		}
		for _, a := range r.DKIMAuth {
			ev.DKIMDomains = append(ev.DKIMDomains, lower(a.Domain))
			ev.DKIMSelectors = append(ev.DKIMSelectors, a.Selector)
			ev.DKIMResults = append(ev.DKIMResults, lower(a.Result))
		}
		for _, a := range r.SPFAuth {
			ev.SPFDomains = append(ev.SPFDomains, lower(a.Domain))
			ev.SPFScopes = append(ev.SPFScopes, lower(a.Scope))
			ev.SPFResults = append(ev.SPFResults, lower(a.Result))
		}
		in.stampReport(ev, key, at, i)
		out = append(out, ev)
	}
	return out
}

// tlsrptEvents makes one event per policy.
func (in *Ingester) tlsrptEvents(rep *tlsrpt.Report, id identity, via string, now time.Time) []schemas.Event {
	org := lower(firstNonEmpty(rep.Organization, domainOf(strings.TrimPrefix(rep.ContactInfo, "mailto:")), "unknown"))
	reportID := firstNonEmpty(rep.ReportID, "unknown")
	at := reportTime(rep.Begin, rep.End, id, now)
	key := "tlsrpt:" + org + "\x00" + reportID
	out := make([]schemas.Event, 0, len(rep.Policies))
	for i, p := range rep.Policies {
		ev := &schemas.TLSRPTResult{
			ReportID:      reportID,
			Organization:  org,
			ContactInfo:   rep.ContactInfo,
			Begin:         storableTime(rep.Begin),
			End:           storableTime(rep.End),
			PolicyDomain:  lower(firstNonEmpty(p.Domain, "unknown")),
			PolicyType:    lower(firstNonEmpty(p.Type, "unknown")),
			PolicyStrings: p.Strings,
			MXHosts:       p.MXHosts,
			Success:       p.Success,
			Failure:       p.Failure,
			ReceivedVia:   via,
		}
		if ev.Begin.IsZero() {
			ev.Begin = at
		}
		if ev.End.IsZero() {
			ev.End = ev.Begin
		}
		for _, f := range p.Failures {
			ev.FailureResultTypes = append(ev.FailureResultTypes, lower(f.ResultType))
			ev.FailureSendingIPs = append(ev.FailureSendingIPs, f.SendingMTAIP)
			ev.FailureReceivingMXs = append(ev.FailureReceivingMXs, lower(f.ReceivingMXHostname))
			ev.FailureReceivingIPs = append(ev.FailureReceivingIPs, f.ReceivingIP)
			ev.FailureSessionCounts = append(ev.FailureSessionCounts, f.FailedSessions)
			ev.FailureReasonCodes = append(ev.FailureReasonCodes, f.FailureReasonCode)
			if a, err := netip.ParseAddr(strings.TrimSpace(f.SendingMTAIP)); err == nil && in.tracer.ourNetwork(a) {
				ev.OurSource = true
			}
		}
		in.stampReport(ev, key, at, i)
		out = append(out, ev)
	}
	return out
}

// publishReport publishes a report's events without waiting for each
// PubAck in turn (a large report has thousands), at most
// reportPublishPending unconfirmed at once, then waits for all of them:
// only then may the input acknowledge the message. A publisher of its own
// keeps the failures of this report apart from other messages'.
func (in *Ingester) publishReport(ctx context.Context, evs []schemas.Event) error {
	if len(evs) == 1 {
		return in.pub.Publish(ctx, evs[0])
	}
	pub := bus.NewPublisher(in.set.JetStream, bus.PublisherOptions{Worker: WorkerName, MaxPending: reportPublishPending,
		AckTimeout: in.cfg.PublishTimeout.Std(), Metrics: in.set.Metrics})
	for _, ev := range evs {
		if err := pub.PublishAsync(ctx, ev); err != nil {
			// Those sent may be stored or not; the retry publishes them
			// all again under the same ids.
			return err
		}
	}
	return pub.Flush(ctx)
}

// customerOfDomain is the customer whose domain a header From domain is:
// trace.from_domains, else trace.dkim_domains (a customer's aligned
// signing domain is its From domain), each matching the domain and its
// parent domains (a.b.example.com → b.example.com → example.com).
func (t *tracer) customerOfDomain(d string) string {
	if d == "" {
		return ""
	}
	if c := provider.Match(t.from, d); c != "" {
		return c
	}
	return provider.Match(t.dkim, d)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.Unmap().String()
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
