package console

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// pageLink is one entry of the navigation.
type pageLink struct{ Name, Path, Title string }

var pageLinks = []pageLink{
	{"overview", "/", "Overview"},
	{"probes", "/probes", "Probes"},
	{"deliveries", "/deliveries", "Deliveries"},
	{"blocklists", "/blocklists", "Blocklists & DNS"},
	{"complaints", "/complaints", "Complaints & enforcement"},
	{"alerts", "/alerts", "Alerts"},
	{"suppression", "/suppression", "Suppression"},
	{"dmarc", "/dmarc", "DMARC & TLS"},
	{"trace", "/trace", "Trace"},
	{"report", "/report", "Report"},
}

// The template functions. Figures print the same way everywhere:
// percentages with one decimal ("97.0 %"), complaint rates with two
// ("0.41 %"), latencies in whole milliseconds ("1000 ms"), times in UTC to
// the minute... to the second where events are close together.
var funcs = template.FuncMap{
	"pages": func() []pageLink { return pageLinks },
	"ranges": func() []string {
		out := make([]string, len(Ranges))
		for i, r := range Ranges {
			out[i] = r.Name
		}
		return out
	},
	"title": func(page string) string {
		for _, l := range pageLinks {
			if l.Name == page {
				return l.Title
			}
		}
		return page
	},
	"pct":       formatPct,
	"rate2":     formatRate,
	"rate":      func(fraction float64) string { return formatRate(100 * fraction) },
	"ms":        formatMs,
	"ts":        formatTime,
	"day":       func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"threshold": formatThreshold,
	"cellOf": func(o Overview, row, provider string) *Cell {
		for i := range o.Cells {
			if o.Cells[i].Row == row && o.Cells[i].Provider == provider {
				return &o.Cells[i]
			}
		}
		return nil
	},
	"cellTitle": cellTitle,
	"alertGroup": func(title, class string, alerts []Alert) any {
		return struct {
			Title, Class string
			Alerts       []Alert
		}{title, class, alerts}
	},
	"probeChart":    probeChart,
	"chartedSeries": chartedSeries,
	"deliveryChart": deliveryChart,
}

func formatPct(v float64) string  { return fmt.Sprintf("%.1f %%", v) }
func formatRate(v float64) string { return fmt.Sprintf("%.2f %%", v) }
func formatMs(v float64) string   { return fmt.Sprintf("%.0f ms", v) }

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatThreshold prints a decision's threshold in its rule's unit: a
// rate for a rate rule (complaint_rate), a count otherwise
// (complaint_count, rejection_burst, probe_missing).
func formatThreshold(rule string, v float64) string {
	if !strings.HasSuffix(rule, "_rate") {
		return fmt.Sprintf("%.0f", v)
	}
	return formatRate(100 * v)
}

// cellTitle is the tooltip of an overview cell: every figure in one line.
func cellTitle(c *Cell) string {
	var b strings.Builder
	if c.BaselineDays > 0 {
		fmt.Fprintf(&b, "%s × %s: %s delivered (7-day median %s), %s deferred (7-day median %s) of %d attempts",
			c.Row, c.Provider, formatPct(c.DeliveredPct), formatPct(c.BaselineDeliveredPct), formatPct(c.DeferredPct), formatPct(c.BaselineDeferredPct), c.Attempts)
	} else {
		fmt.Fprintf(&b, "%s × %s: %s delivered, %s deferred of %d attempts (no attempts in the 7 days before)",
			c.Row, c.Provider, formatPct(c.DeliveredPct), formatPct(c.DeferredPct), c.Attempts)
	}
	if c.TopRejection != "" {
		fmt.Fprintf(&b, "; top rejection %s", c.TopRejection)
	}
	if c.LastPlacement != "" {
		fmt.Fprintf(&b, "; last probe %s", c.LastPlacement)
		if c.LastPlacement != "missing" {
			fmt.Fprintf(&b, " in %s", formatMs(c.LastLatencyMs))
		}
	}
	for _, z := range c.Listings {
		fmt.Fprintf(&b, "; listed on %s", z)
	}
	fmt.Fprintf(&b, "; complaints %s (%d), %s", formatRate(c.ComplaintRatePct), c.Complaints, c.ComplaintLevel)
	for _, s := range c.Enforcement {
		fmt.Fprintf(&b, "; in force: %s", s)
	}
	return b.String()
}

// chartLine is one line of a chart.
type chartLine struct {
	Name   string
	Class  string
	Points []chartPoint
}

type chartPoint struct {
	T time.Time
	V float64
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 640, 180
	padL, padR, padT, padB = 48, 12, 10, 34
)

var chartColours = []string{"#2a6fdb", "#d9822b", "#0f9960", "#db3737", "#8f398f", "#00998c", "#7a7a7a"}

// lineChart draws lines over [from, to] as inline SVG: no script, no
// request. Values go from 0 to yMax; yUnit labels the axis.
func lineChart(from, to time.Time, lines []chartLine, yMax float64, yUnit string) template.HTML {
	if yMax <= 0 {
		yMax = 1
	}
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return padL + (chartW-padL-padR)*t.Sub(from).Seconds()/span }
	y := func(v float64) float64 { return padT + (chartH-padT-padB)*(1-v/yMax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	// Axes and grid: 0, half and max.
	for _, f := range []float64{0, 0.5, 1} {
		v := yMax * f
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e1e4ea"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+3, template.HTMLEscapeString(axisLabel(v, yUnit)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, padL, chartH-padB+12, template.HTMLEscapeString(from.UTC().Format("01-02 15:04")))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, chartW-padR, chartH-padB+12, template.HTMLEscapeString(to.UTC().Format("01-02 15:04")))
	legendX := padL
	for i, l := range lines {
		colour := chartColours[i%len(chartColours)]
		var pts []string
		for _, p := range l.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(math.Min(p.V, yMax))))
		}
		if len(pts) == 1 { // a single point still shows
			fmt.Fprintf(&b, `<circle cx="%s" r="2.5" fill="%s"/>`, strings.Replace(pts[0], ",", `" cy="`, 1), colour)
		} else if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, colour, strings.Join(pts, " "))
		}
		for _, p := range l.Points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.5" fill="%s"><title>%s %s: %s</title></circle>`,
				x(p.T), y(math.Min(p.V, yMax)), colour, template.HTMLEscapeString(l.Name), p.T.UTC().Format("2006-01-02 15:04"), template.HTMLEscapeString(axisLabel(p.V, yUnit)))
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`,
			legendX, chartH-10, colour, legendX+14, chartH-6, template.HTMLEscapeString(l.Name))
		legendX += 24 + 7*len(l.Name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axisLabel(v float64, unit string) string {
	switch unit {
	case "%":
		return formatPct(v)
	case "ms":
		return formatMs(v)
	}
	return fmt.Sprintf("%.0f", v)
}

// maxProbeCharts is how many provider × source charts the probes page
// draws; past that, the worst (lowest inbox share) are drawn, and a filter
// shows the others. The JSON has every series.
const maxProbeCharts = 24

// chartedSeries are the series the probes page draws: all of them up to
// maxProbeCharts, else the maxProbeCharts of lowest inbox share.
func chartedSeries(pg Probes) []ProbeSeries {
	if len(pg.Series) <= maxProbeCharts {
		return pg.Series
	}
	inbox := map[cellKey]float64{}
	for _, r := range pg.Rows {
		inbox[cellKey{r.Provider, r.SourceIP}] = r.InboxPct
	}
	s := slices.Clone(pg.Series)
	sort.SliceStable(s, func(i, j int) bool {
		return inbox[cellKey{s[i].Provider, s[i].SourceIP}] < inbox[cellKey{s[j].Provider, s[j].SourceIP}]
	})
	return s[:maxProbeCharts]
}

// probeChart draws one provider × source: inbox % on a 0–100 scale, and
// the latency p50 and p95 scaled to the largest (each point's figure is in
// its tooltip).
func probeChart(pg Probes, s ProbeSeries) template.HTML {
	inbox := chartLine{Name: "inbox %"}
	p50, p95 := chartLine{Name: "latency p50"}, chartLine{Name: "latency p95"}
	maxLat := 0.0
	for _, p := range s.Points {
		inbox.Points = append(inbox.Points, chartPoint{p.Time, p.InboxPct})
		if p.LatencyP95Ms > 0 || p.LatencyP50Ms > 0 { // steps with only missing probes have no latency
			p50.Points = append(p50.Points, chartPoint{p.Time, p.LatencyP50Ms})
			p95.Points = append(p95.Points, chartPoint{p.Time, p.LatencyP95Ms})
		}
		maxLat = math.Max(maxLat, p.LatencyP95Ms)
	}
	out := lineChart(pg.Params.From, pg.Params.To, []chartLine{inbox}, 100, "%")
	if maxLat > 0 {
		out += lineChart(pg.Params.From, pg.Params.To, []chartLine{p50, p95}, maxLat, "ms")
	}
	return out
}

// deliveryChart draws attempts per step by status.
func deliveryChart(d Deliveries) template.HTML {
	var lines []chartLine
	maxN := 0.0
	for _, s := range d.Series {
		l := chartLine{Name: s.Status}
		for _, p := range s.Points {
			l.Points = append(l.Points, chartPoint{p.Time, float64(p.Count)})
			maxN = math.Max(maxN, float64(p.Count))
		}
		lines = append(lines, l)
	}
	return lineChart(d.Params.From, d.Params.To, lines, maxN, "")
}
