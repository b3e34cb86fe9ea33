package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"

	"github.com/mailmon/mailmon/services/internal/report"
)

// ReportPage is the /report page: the report `mailmon report daily|weekly`
// prints, for the period ending at the last full hour.
type ReportPage struct {
	Meta
	Report report.Report `json:"report"`
	// HTML is the report's HTML fragment, for the page only.
	HTML template.HTML `json:"-"`
}

// report builds /report?period=daily|weekly&customer=C with the report
// package, the same code as the report command.
func (s source) report(ctx context.Context, p Params) (ReportPage, error) {
	out := ReportPage{Meta: Meta{Page: "report", Params: p, Now: s.now}}
	r, err := report.Build(ctx, s.conn, report.Options{Period: report.Period(p.Period), Customer: p.Customer, End: s.now})
	if err != nil {
		return out, err
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		return out, fmt.Errorf("report html: %w", err)
	}
	out.Report, out.HTML = r, template.HTML(b.String()) // html/template escaped every value
	return out, nil
}
