package report

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"formatCount":       formatCount,
	"formatPercent":     formatPercent,
	"formatRate":        formatRate,
	"formatThreshold":   formatThreshold,
	"formatRatePercent": formatRatePercent,
	"formatTime":        formatTime,
	"formatLatency":     formatLatency,
	"orDash":            orDash,
	"customerName":      customerName,
	"replyText":         Reply.text,
	"join":              func(s []string) string { return orDash(strings.Join(s, ", ")) },
}).Parse(htmlSource))

// htmlView is what the template reads: the report and what the text
// renderer works out for it too.
type htmlView struct {
	Report
	CustomerLabel string
	FailureGroups []failureGroup
}

// WriteHTML writes the report as an HTML fragment (a <section>, no
// <html> or <head>), for a page that places it inside its own layout.
// Every value is escaped by html/template.
func (r Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, htmlView{Report: r, CustomerLabel: r.customerLabel(), FailureGroups: r.failureGroups()})
}
