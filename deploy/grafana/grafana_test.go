package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailmon/mailmon/schemas"
)

// The plugin documents its macros with this range (README, "Macros").
var (
	docFrom = time.Unix(1415792726, 371e6).UTC()
	docTo   = time.Unix(1447328726, 456e6).UTC()
)

func TestExpandMacrosAsThePluginDocumentsThem(t *testing.T) {
	tests := []struct{ in, want string }{
		{"WHERE $__timeFilter(time)", "WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"},
		{"WHERE $__timeFilter( time )", "WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"},
		{"$__fromTime", "toDateTime(1415792726)"},
		{"x <= $__toTime,", "x <= toDateTime(1447328726),"},
		{"$__timeInterval(columnName)", "toStartOfInterval(toDateTime(columnName), INTERVAL 20 second)"},
		{"INTERVAL $__interval_s second", "INTERVAL 20 second"},
		{"no macros", "no macros"},
	}
	for _, tt := range tests {
		got, err := expandMacros(tt.in, docFrom, docTo, 20*time.Second)
		if err != nil || got != tt.want {
			t.Errorf("expandMacros(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// The plugin never goes below one second.
	if got, _ := expandMacros("$__interval_s", docFrom, docTo, 200*time.Millisecond); got != "1" {
		t.Errorf("$__interval_s for 200ms = %q, want 1", got)
	}
}

func TestExpandMacroErrors(t *testing.T) {
	for _, in := range []string{
		"$__timeFilter",           // no column
		"$__timeFilter(a, b)",     // two
		"$__timeFilter(a",         // unclosed
		"$__timeFilter_ms(a)",     // not supported here
		"$__interval",             // a Grafana variable the panels do not use
		"$__conditionalAll(x, y)", // left over: step 1 handles it
	} {
		if got, err := expandMacros(in, docFrom, docTo, time.Minute); err == nil {
			t.Errorf("expandMacros(%q) = %q, want an error", in, got)
		}
	}
}

func TestInterval(t *testing.T) {
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		span time.Duration
		want time.Duration
	}{
		{time.Hour, MinInterval},           // 12 s rounds to 10 s, below the minimum
		{24 * time.Hour, MinInterval},      // 288 s rounds to 5 m
		{48 * time.Hour, 10 * time.Minute}, // 576 s rounds to 10 m
		{7 * 24 * time.Hour, 30 * time.Minute},
		{30 * 24 * time.Hour, 2 * time.Hour},
	}
	for _, tt := range tests {
		if got := Interval(day, day.Add(tt.span)); got != tt.want {
			t.Errorf("Interval over %v = %v, want %v", tt.span, got, tt.want)
		}
	}
}

func TestExpandVariables(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	const sql = "WHERE $__conditionalAll(provider IN (${provider:singlequote}), $provider)" +
		" AND $__conditionalAll(customer IN ('', ${customer:singlequote}), $customer)" +
		" AND $__conditionalAll(source_ip IN ($source_ip), $source_ip)"
	tests := []struct {
		vars map[string][]string
		want string
	}{
		{nil, "WHERE 1=1 AND 1=1 AND 1=1"},
		{
			map[string][]string{"provider": {"gmail", "o'brien"}},
			`WHERE provider IN ('gmail','o\'brien') AND 1=1 AND 1=1`,
		},
		{
			map[string][]string{"customer": {"acme"}, "source_ip": {"192.0.2.1", "192.0.2.2"}},
			"WHERE 1=1 AND customer IN ('', 'acme') AND source_ip IN ('192.0.2.1','192.0.2.2')",
		},
	}
	for _, tt := range tests {
		got, err := ExpandWith(sql, Options{From: from, To: to, Vars: tt.vars})
		if err != nil || got != tt.want {
			t.Errorf("ExpandWith(%v) = %q, %v; want %q", tt.vars, got, err, tt.want)
		}
	}

	for _, bad := range []struct {
		sql  string
		vars map[string][]string
	}{
		{"provider IN (${provider:singlequote})", nil},        // All outside $__conditionalAll
		{"$__conditionalAll(x, $nope)", nil},                  // unknown variable
		{"$__conditionalAll(x)", nil},                         // one argument
		{"x = $nope", map[string][]string{"provider": {"a"}}}, // unknown variable
		{"$__conditionalAll(provider IN (${provider:json}), $provider)", map[string][]string{"provider": {"a"}}}, // format
		{"x", map[string][]string{"provider": {}}},                                                               // nothing selected
		{"x", map[string][]string{"zone": {"a"}}},                                                                // not a dashboard variable
	} {
		if got, err := ExpandWith(bad.sql, Options{From: from, To: to, Vars: bad.vars}); err == nil {
			t.Errorf("ExpandWith(%q, %v) = %q, want an error", bad.sql, bad.vars, got)
		}
	}
	if _, err := Expand("x", to, from); err == nil {
		t.Error("Expand with from after to: no error")
	}
}

// fromTable finds the tables a query reads.
var fromTable = regexp.MustCompile(`(?i)\bFROM\s+([A-Za-z_][A-Za-z0-9_.]*)`)

func TestDashboards(t *testing.T) {
	panels, err := Panels()
	if err != nil {
		t.Fatal(err)
	}
	variables, err := Variables()
	if err != nil {
		t.Fatal(err)
	}
	var rollups []string
	for _, r := range schemas.Rollups() {
		rollups = append(rollups, r.Table)
	}

	perDashboard := map[string]int{}
	seen := map[string]bool{}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	check := func(what, dashboard, sql string) {
		for _, m := range fromTable.FindAllStringSubmatch(sql, -1) {
			if !slices.Contains(rollups, m[1]) {
				t.Errorf("%s reads %s, which is not a rollup", what, m[1])
			}
		}
		if _, err := Expand(sql, from, from.Add(24*time.Hour)); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		// Every variable a query uses is defined on its dashboard.
		for _, name := range variableNames {
			if strings.Contains(sql, "$"+name) && !slices.ContainsFunc(variables, func(v Variable) bool {
				return v.Dashboard == dashboard && v.Name == name
			}) {
				t.Errorf("%s uses $%s, which %s does not define", what, name, dashboard)
			}
		}
	}
	for _, p := range panels {
		what := p.Dashboard + " / " + p.Title
		if seen[what] {
			t.Errorf("two panels titled %s", what)
		}
		seen[what] = true
		perDashboard[p.Dashboard]++
		check(what, p.Dashboard, p.SQL)
		if !strings.Contains(p.SQL, "bucket") {
			t.Errorf("%s has no time bound on bucket", what)
		}
		if (p.Type == "timeseries") != (p.Format == "timeseries") {
			t.Errorf("%s: a %s panel with %s results", what, p.Type, p.Format)
		}
	}
	for _, v := range variables {
		check(v.Dashboard+" / $"+v.Name, v.Dashboard, v.SQL)
	}
	want := []string{"mailmon / Complaints", "mailmon / Deliveries", "mailmon / Overview", "mailmon / Probes"}
	var got []string
	for d := range perDashboard {
		got = append(got, d)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("dashboards %v, want %v", got, want)
	}
}

func TestDashboardModel(t *testing.T) {
	files, err := DashboardFiles()
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for name, data := range files {
		var d struct {
			UID           string `json:"uid"`
			SchemaVersion int    `json:"schemaVersion"`
			Timezone      string `json:"timezone"`
			Panels        []struct {
				ID      int `json:"id"`
				GridPos struct {
					H, W, X, Y int
				} `json:"gridPos"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if uids[d.UID] {
			t.Errorf("%s: uid %s used twice", name, d.UID)
		}
		uids[d.UID] = true
		// Grafana 10.4 writes 39; 11 migrates it on load.
		if d.SchemaVersion < 36 {
			t.Errorf("%s: schemaVersion %d, want at least 36 (datasource references by uid)", name, d.SchemaVersion)
		}
		if d.Timezone != "utc" {
			t.Errorf("%s: timezone %q, want utc (the rollups' buckets are UTC)", name, d.Timezone)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel id %d missing or used twice", name, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %d grid %+v", name, p.ID, p.GridPos)
			}
		}
	}
}

// TestProvisioning checks the provisioning files name the datasource the
// dashboards use.
func TestProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type string
			JSONData        map[string]any `yaml:"jsonData"`
			SecureJSONData  map[string]any `yaml:"secureJsonData"`
		}
	}
	readYAML(t, "provisioning/datasources/mailmon.yaml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources file: %+v", ds)
	}
	d := ds.Datasources[0]
	if d.UID != DatasourceUID || d.Type != DatasourceType {
		t.Errorf("datasource uid %q type %q, want %q %q", d.UID, d.Type, DatasourceUID, DatasourceType)
	}
	if d.JSONData["protocol"] != "native" {
		t.Errorf("protocol %v, want native (18.16 refuses the HTTP handshake)", d.JSONData["protocol"])
	}
	if pw, _ := d.SecureJSONData["password"].(string); len(pw) < 2 || pw[0] != '$' {
		t.Errorf("password %q, want it from an environment variable", pw)
	}

	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type, Folder string
			Options            map[string]any
		}
	}
	readYAML(t, "provisioning/dashboards/mailmon.yaml", &dash)
	if dash.APIVersion != 1 || len(dash.Providers) != 1 || dash.Providers[0].Type != "file" || dash.Providers[0].Options["path"] == nil {
		t.Errorf("dashboards file: %+v", dash)
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// FuzzExpandWith feeds Expand what a dashboard edit could hold: it must
// not panic, and what it expands holds no $__conditionalAll any more.
func FuzzExpandWith(f *testing.F) {
	panels, err := Panels()
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range panels {
		f.Add(p.SQL, "gmail")
	}
	f.Add("$__conditionalAll(a IN (${provider}), $provider) $__timeFilter(b) [[customer:csv]]", "x'y")
	f.Fuzz(func(t *testing.T, sql, value string) {
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, vars := range []map[string][]string{nil, {"provider": {value}, "customer": {value, value}}} {
			out, err := ExpandWith(sql, Options{From: from, To: from.Add(time.Hour), Vars: vars})
			if err == nil && strings.Contains(out, conditionalAllMacro) && !strings.Contains(value, conditionalAllMacro) {
				t.Errorf("ExpandWith(%q) = %q: a $__conditionalAll is left", sql, out)
			}
		}
	})
}
