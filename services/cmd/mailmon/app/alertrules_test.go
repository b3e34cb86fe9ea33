package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// alertRulesPath is the Prometheus rule file shipped for mailmon's own
// metrics.
var alertRulesPath = filepath.Join("..", "..", "..", "..", "deploy", "prometheus", "alerts.yml")

// ruleFile is the part of Prometheus's rule file format the test reads.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// notFromMailmon are series that no scrape of mailmon holds: those
// Prometheus makes itself for every target, and probe_success, the
// blackbox exporter's result of probing /readyz (readiness has no metric;
// MailmonNotReady reads it).
var notFromMailmon = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "probe_success"}

// Every metric named in deploy/prometheus/alerts.yml exists in a running
// mailmon: the test runs every worker, scrapes /metrics over HTTP, and
// fails naming each metric a rule uses that the scrape lacks. A counter or
// gauge vector shows in a scrape only once a label set was used, so a name
// missing from the scrape passes only if the registry refuses a collector
// of that name with another help text, which client_golang documents it
// does for any registered name (metric.Desc: one help string and label set
// per name): registered, no sample yet. A rule on a name that nothing
// registers fails either way.
func TestAlertRulesNameOnlyMetricsMailmonExports(t *testing.T) {
	raw, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertRulesPath, err)
	}
	used := map[string][]string{} // metric → alerts using it
	rules := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("group %s: a rule without alert or expr: %+v", g.Name, r)
				continue
			}
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description annotation", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			names, err := promQLMetricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
			}
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", r.Alert, r.Expr)
			}
			for _, n := range names {
				used[n] = append(used[n], r.Alert)
			}
		}
	}
	if rules == 0 {
		t.Fatal("no rules")
	}

	cfg := testConfig(t, t.TempDir())
	port := freePort(t)
	cfg.HTTP.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	// Ports of their own: other tests on this machine may hold the defaults.
	cfg.PolicyService.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.FBLIngester.SMTP.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var scraped map[string]bool
	var reg *prometheus.Registry
	ready := false
	var log bytes.Buffer // slog's handler serialises the writes
	defer func() {
		if t.Failed() {
			t.Logf("warnings and errors logged:\n%s", log.String())
		}
	}()
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn})), RunOptions{Workers: Workers(), ClickHouse: true, Ready: func(rt *Runtime) {
		defer cancel()
		ready = true
		reg = rt.Metrics
		waitFor(t, ctx, "every worker ready", func() string {
			if failed := rt.Health.Ready(ctx); len(failed) > 0 {
				return fmt.Sprint(failed)
			}
			return ""
		})
		scraped = scrapeMetricNames(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	}})
	if !ready || scraped == nil {
		t.Fatalf("mailmon never became ready: %v", err)
	}
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(used)) {
		if slices.Contains(notFromMailmon, name) || scraped[name] {
			continue
		}
		if registered(reg, histogramBase(name)) {
			t.Logf("%s: registered, no sample before any traffic", name)
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (used by %s)", name, strings.Join(used[name], ", ")))
	}
	if len(missing) > 0 {
		var have []string
		for n := range scraped {
			if strings.HasPrefix(n, "mailmon_") {
				have = append(have, n)
			}
		}
		slices.Sort(have)
		t.Errorf("%s names metrics a running mailmon does not export:\n  %s\nthe scrape has:\n  %s", alertRulesPath,
			strings.Join(missing, "\n  "), strings.Join(have, "\n  "))
	}
}

// scrapeMetricNames fetches a Prometheus text exposition and returns every
// sample name in it (histograms as their _bucket, _sum and _count series).
func scrapeMetricNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		names[line[:end]] = true
	}
	return names
}

// histogramBase maps a histogram's series name to the name it was
// registered under.
func histogramBase(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

// registered reports whether a collector of metric name is registered: a
// registry refuses a second descriptor of a registered name whose help text
// differs (prometheus.Desc's consistency rule), and accepts it otherwise,
// in which case it is unregistered again.
func registered(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "alert rule test probe " + name})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

// promQLKeywords are the words of PromQL that are neither metrics nor
// followed by "(": binary and set operators, modifiers, aggregation
// operators (which may take "by (...)" before their parenthesis) and
// number words.
var promQLKeywords = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
	"bool", "offset", "atan2", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio", "inf", "nan", "start", "end"}

// promQLMetricNames returns the metric names an expression selects: every
// identifier outside strings, label matchers ({...}), ranges ([...]) and
// the label lists of by/without/on/ignoring/group_left/group_right, that
// is not a keyword and not a function (an identifier followed by "(").
// One pass over the expression.
func promQLMetricNames(expr string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	// skipTo returns the index after the closing byte, skipping quoted
	// strings inside.
	skipTo := func(i int, closing byte) (int, error) {
		for i < len(expr) {
			switch c := expr[i]; {
			case c == closing:
				return i + 1, nil
			case c == '"' || c == '\'' || c == '`':
				j := i + 1
				for j < len(expr) && expr[j] != c {
					if expr[j] == '\\' && c != '`' {
						j++
					}
					j++
				}
				if j >= len(expr) {
					return 0, fmt.Errorf("unterminated string in %q", expr)
				}
				i = j + 1
			default:
				i++
			}
		}
		return 0, fmt.Errorf("missing %q in %q", closing, expr)
	}
	labelLists := []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '{':
			j, err := skipTo(i+1, '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i+1, ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '"' || c == '\'' || c == '`':
			// Only label matchers hold strings in alerting rules.
			return nil, fmt.Errorf("a string outside a label matcher in %q", expr)
		case c >= '0' && c <= '9' || c == '.':
			// A number or a duration (5m, 1e3, 0.5): not a name.
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			i = j
			switch {
			case slices.Contains(labelLists, word):
				if next < len(expr) && expr[next] == '(' {
					k, err := skipTo(next+1, ')')
					if err != nil {
						return nil, err
					}
					i = k
				}
			case slices.Contains(promQLKeywords, word):
			case next < len(expr) && expr[next] == '(':
				// a function call
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
		default:
			i++
		}
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="mailmon"} == 0`, []string{"up"}},
		{`sum by (worker) (increase(mailmon_bus_messages_total{outcome="dead_lettered"}[15m])) > 0`, []string{"mailmon_bus_messages_total"}},
		{`histogram_quantile(0.95, sum by (le) (rate(mailmon_bus_handler_seconds_bucket[5m]))) > 2`, []string{"mailmon_bus_handler_seconds_bucket"}},
		{`a / on (route) group_left (x) b offset 1h > bool 0.5 and c unless d`, []string{"a", "b", "c", "d"}},
		{`max without (zone, cause) (x{a=~"b.*}[",c!="d"}) or vector(0)`, []string{"x"}},
		{`topk(3, m) > 1e3`, []string{"m"}},
	}
	for _, tt := range tests {
		got, err := promQLMetricNames(tt.expr)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{`x{a="b}`, `sum(x[5m)`, `"a string"`} {
		if _, err := promQLMetricNames(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// The rule file is valid for Prometheus and its alerts fire on the series
// deploy/prometheus/alerts_test.yml feeds them (and only then), checked by
// Prometheus's own promtool (Debian's prometheus package, installed by
// go tool task deps).
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		peertest.Unavailable(t, "promtool not installed (Debian package prometheus; go tool task deps installs it)")
	}
	dir := filepath.Dir(alertRulesPath)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
