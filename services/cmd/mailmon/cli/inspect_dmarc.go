package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mailmon/mailmon/services/internal/dmarc"
	"github.com/mailmon/mailmon/services/internal/reportfile"
)

// dmarcLine is what `mailmon inspect dmarc` prints per <record>: the
// report's metadata and published policy, the record's policy-evaluated
// results and identifiers, and its raw auth results.
type dmarcLine struct {
	// File is the name of the attachment or zip entry the report came in.
	File     string    `json:"file,omitempty"`
	ReportID string    `json:"report_id"`
	OrgName  string    `json:"org_name"`
	Begin    time.Time `json:"begin"`
	End      time.Time `json:"end"`
	Domain   string    `json:"domain"`
	Policy   string    `json:"policy"`
	// SourceIP is "" when the record has none.
	SourceIP        string          `json:"source_ip"`
	Count           uint64          `json:"count"`
	Disposition     string          `json:"disposition"`
	DKIM            string          `json:"dkim"`
	SPF             string          `json:"spf"`
	HeaderFrom      string          `json:"header_from"`
	EnvelopeFrom    string          `json:"envelope_from,omitempty"`
	EnvelopeTo      string          `json:"envelope_to,omitempty"`
	OverrideReasons []string        `json:"override_reasons,omitempty"`
	AuthResults     dmarcAuthResult `json:"auth_results"`
}

type dmarcAuthResult struct {
	DKIM []dmarcDKIMAuth `json:"dkim"`
	SPF  []dmarcSPFAuth  `json:"spf"`
}

type dmarcDKIMAuth struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector,omitempty"`
	Result   string `json:"result"`
}

type dmarcSPFAuth struct {
	Domain string `json:"domain"`
	Scope  string `json:"scope,omitempty"`
	Result string `json:"result"`
}

// inspectDMARC prints one JSON line per <record> of the DMARC aggregate
// reports in its input: a report mail, a gzip or zip file or a bare XML
// document (see reportfile.Extract), or an mbox of report mails (from
// standard input or a file named *mbox, as for inspect arf). An input
// that holds no readable DMARC report is an error, with the reason; so is
// a report that cannot be parsed (the other reports are still printed).
func inspectDMARC(ctx context.Context, in io.Reader, out io.Writer) error {
	return printReports(ctx, in, out, reportfile.FormatDMARC, func(doc reportfile.Document, emit func(any) error) error {
		rep, err := dmarc.Parse(doc.Data)
		if err != nil {
			return err
		}
		for _, rec := range rep.Records {
			if err := emit(dmarcLineOf(doc.Name, rep, rec)); err != nil {
				return err
			}
		}
		return nil
	})
}

// printReports runs lines over every document of format f in the input
// (see eachReport); emit writes one JSON line to out, buffered.
func printReports(ctx context.Context, in io.Reader, out io.Writer, f reportfile.Format, lines func(doc reportfile.Document, emit func(any) error) error) (err error) {
	w := bufio.NewWriterSize(out, 64<<10)
	defer func() {
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = ferr
		}
	}()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	emit := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("%w: %v", errWrite, err)
		}
		return nil
	}
	return eachReport(ctx, in, f, func(doc reportfile.Document) error { return lines(doc, emit) })
}

func dmarcLineOf(file string, rep *dmarc.Report, rec dmarc.Record) dmarcLine {
	l := dmarcLine{
		File: file, ReportID: rep.ReportID, OrgName: rep.OrgName, Begin: rep.Begin, End: rep.End,
		Domain: rep.Domain, Policy: rep.Policy,
		Count: rec.Count, Disposition: rec.Disposition, DKIM: rec.DKIM, SPF: rec.SPF,
		HeaderFrom: rec.HeaderFrom, EnvelopeFrom: rec.EnvelopeFrom, EnvelopeTo: rec.EnvelopeTo,
		OverrideReasons: rec.OverrideReasons,
		AuthResults:     dmarcAuthResult{DKIM: []dmarcDKIMAuth{}, SPF: []dmarcSPFAuth{}},
	}
	if rec.SourceIP.IsValid() {
		l.SourceIP = rec.SourceIP.String()
	}
	for _, a := range rec.DKIMAuth {
		l.AuthResults.DKIM = append(l.AuthResults.DKIM, dmarcDKIMAuth(a))
	}
	for _, a := range rec.SPFAuth {
		l.AuthResults.SPF = append(l.AuthResults.SPF, dmarcSPFAuth(a))
	}
	return l
}

// eachReport calls fn for every document of format f in the input's
// messages (see messagesOf). A message that holds none, or whose report fn
// cannot read, is counted and the next one read; the first such error is
// returned at the end, with how many there were.
func eachReport(ctx context.Context, in io.Reader, f reportfile.Format, fn func(reportfile.Document) error) error {
	raw, err := readMessage(in)
	if err != nil {
		return err
	}
	msgs := messagesOf(in, raw)
	var first error
	failed := 0
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := reportsOf(m, f, fn); err != nil {
			if errors.Is(err, errWrite) {
				return err
			}
			failed++
			if first == nil {
				first = err
				if len(msgs) > 1 {
					first = fmt.Errorf("message %d of %d: %w", i+1, len(msgs), err)
				}
			}
		}
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d messages not read; the first: %w", failed, len(msgs), first)
	}
	return first
}

// errWrite marks an error writing the output, which ends the command.
var errWrite = errors.New("writing the output")

// reportsOf extracts the documents of one message and calls fn for those
// of format f.
func reportsOf(m []byte, f reportfile.Format, fn func(reportfile.Document) error) error {
	docs, err := reportfile.Extract(m, reportfile.DefaultLimits())
	if err != nil {
		return err
	}
	n := 0
	var first error
	other := map[reportfile.Format]int{}
	for _, d := range docs {
		if d.Format != f {
			other[d.Format]++
			continue
		}
		n++
		if err := fn(d); err != nil {
			if errors.Is(err, errWrite) {
				return err
			}
			if first == nil {
				first = fmt.Errorf("%s: %w", docName(d), err)
			}
		}
	}
	if n == 0 {
		for of, k := range other {
			return fmt.Errorf("%w: no %s report, but %d %s report(s): see mailmon inspect %s", reportfile.ErrNoReport, f, k, of, of)
		}
	}
	return first
}

func docName(d reportfile.Document) string {
	if d.Name == "" {
		return fmt.Sprintf("the %s report", d.Format)
	}
	return fmt.Sprintf("%s report %q", d.Format, d.Name)
}
