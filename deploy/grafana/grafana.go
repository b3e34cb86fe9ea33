// Package grafana holds mailmon's Grafana dashboards for the
// grafana-clickhouse-datasource plugin and reads them back: every panel's
// SQL (Panels), every template variable's query (Variables), and the
// expansion Grafana and the plugin apply before a query reaches ClickHouse
// (Expand), so tests and load tests can run exactly what a dashboard runs.
//
// The dashboards are the JSON files in dashboards/, embedded here and
// provisioned from disk by Grafana (see provisioning/ and README.md). Every
// panel reads the rollups (schemas/clickhouse, the *_5m, *_1h and *_1d
// tables), never the raw event tables, and stays within what ClickHouse
// 18.16 understands.
//
// # Expansion
//
// A query goes through three steps between the dashboard and ClickHouse,
// and Expand reproduces them in the same order:
//
//  1. The plugin's frontend replaces $__conditionalAll(condition, $var)
//     with 1=1 when $var is set to All, and with condition otherwise.
//  2. Grafana replaces template variables ($var, ${var}, ${var:format}).
//     With the plugin's own formatter a multi-value variable becomes
//     'a','b' as is; ${var:singlequote} also escapes ' as \'.
//  3. The plugin's backend expands its macros, with the panel's time range
//     and interval:
//     $__timeFilter(col) → col >= toDateTime(from) AND col <= toDateTime(to)
//     $__fromTime, $__toTime → toDateTime(unix seconds)
//     $__timeInterval(col) → toStartOfInterval(toDateTime(col), INTERVAL s second)
//     $__interval_s → s
//
// The interval s is Grafana's: the time range divided by the panel's
// maximum data points, rounded to a "nice" step, but never below the
// panel's minimum interval. Every panel here sets MaxDataPoints and
// MinInterval, so the interval depends on the time range alone (Interval).
//
// ClickHouse 18.16 has no toStartOfInterval, so the panels group time with
// $__interval_s instead of $__timeInterval; Expand supports both.
package grafana

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// DatasourceType is the plugin every dashboard queries through.
const DatasourceType = "grafana-clickhouse-datasource"

// DatasourceUID is the uid of the provisioned ClickHouse datasource every
// panel and variable names (provisioning/datasources/mailmon.yaml).
const DatasourceUID = "mailmon-clickhouse"

// MaxDataPoints and MinInterval are set on every panel; with them the
// query interval depends only on the time range (see Interval).
const (
	MaxDataPoints = 300
	MinInterval   = 5 * time.Minute
)

//go:embed dashboards/*.json
var dashboardFiles embed.FS

// Panel is one query of one dashboard panel.
type Panel struct {
	// Dashboard is the dashboard's title, DashboardUID its uid.
	Dashboard    string
	DashboardUID string
	// Title is the panel's title; Type its visualisation ("table",
	// "timeseries").
	Title string
	Type  string
	// RefID names the query within the panel.
	RefID string
	// Format is the plugin's result format: "table" or "timeseries".
	Format string
	// SQL is the query as stored in the dashboard, before expansion.
	SQL string
}

// Variable is one template variable of one dashboard.
type Variable struct {
	Dashboard string
	// Name is how queries refer to it ($name).
	Name string
	// SQL lists the variable's values; it is expanded like a panel's.
	SQL string
}

// dashboard is the part of a dashboard's JSON model this package reads.
type dashboard struct {
	UID           string       `json:"uid"`
	Title         string       `json:"title"`
	SchemaVersion int          `json:"schemaVersion"`
	Panels        []panelModel `json:"panels"`
	Templating    struct {
		List []variableModel `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelModel struct {
	ID            int            `json:"id"`
	Title         string         `json:"title"`
	Type          string         `json:"type"`
	Datasource    *datasourceRef `json:"datasource"`
	Interval      string         `json:"interval"`
	MaxDataPoints int            `json:"maxDataPoints"`
	Panels        []panelModel   `json:"panels"` // a collapsed row's panels
	Targets       []struct {
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
		EditorType string         `json:"editorType"`
		QueryType  string         `json:"queryType"`
		Format     int            `json:"format"`
		RawSQL     string         `json:"rawSql"`
	} `json:"targets"`
}

type variableModel struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   *string        `json:"allValue"`
	Query      struct {
		RawSQL string `json:"rawSql"`
	} `json:"query"`
}

// The plugin's result formats (sqlutil.FormatQueryOption).
const (
	formatTimeSeries = 0
	formatTable      = 1
)

// Panels returns every panel query of every dashboard, in file and panel
// order. It fails if a dashboard breaks a rule the expansion relies on: a
// panel not on the provisioned datasource, without the fixed interval
// settings, or with a query that is not raw SQL.
func Panels() ([]Panel, error) {
	boards, err := dashboards()
	if err != nil {
		return nil, err
	}
	var out []Panel
	for _, b := range boards {
		for _, p := range flatten(b.Panels) {
			if p.Type == "row" {
				continue
			}
			where := fmt.Sprintf("dashboard %s, panel %q", b.UID, p.Title)
			if err := checkDatasource(p.Datasource); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if p.MaxDataPoints != MaxDataPoints || p.Interval != minIntervalText {
				return nil, fmt.Errorf("%s: maxDataPoints %d and interval %q, want %d and %q",
					where, p.MaxDataPoints, p.Interval, MaxDataPoints, minIntervalText)
			}
			if len(p.Targets) == 0 {
				return nil, fmt.Errorf("%s: no query", where)
			}
			for _, t := range p.Targets {
				if err := checkDatasource(t.Datasource); err != nil {
					return nil, fmt.Errorf("%s, query %s: %w", where, t.RefID, err)
				}
				if t.EditorType != "sql" || t.RawSQL == "" {
					return nil, fmt.Errorf("%s, query %s: editorType %q, want raw SQL", where, t.RefID, t.EditorType)
				}
				var format string
				switch t.Format {
				case formatTable:
					format = "table"
				case formatTimeSeries:
					format = "timeseries"
				default:
					return nil, fmt.Errorf("%s, query %s: format %d, want table (1) or time series (0)", where, t.RefID, t.Format)
				}
				out = append(out, Panel{
					Dashboard: b.Title, DashboardUID: b.UID,
					Title: p.Title, Type: p.Type, RefID: t.RefID, Format: format, SQL: t.RawSQL,
				})
			}
		}
	}
	return out, nil
}

// Variables returns every template variable of every dashboard.
func Variables() ([]Variable, error) {
	boards, err := dashboards()
	if err != nil {
		return nil, err
	}
	var out []Variable
	for _, b := range boards {
		for _, v := range b.Templating.List {
			where := fmt.Sprintf("dashboard %s, variable %s", b.UID, v.Name)
			if !slices.Contains(variableNames, v.Name) {
				return nil, fmt.Errorf("%s: unknown to Expand (known: %v)", where, variableNames)
			}
			if v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != nil {
				return nil, fmt.Errorf("%s: want a multi-value query variable with All and no custom all value", where)
			}
			if err := checkDatasource(v.Datasource); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			out = append(out, Variable{Dashboard: b.Title, Name: v.Name, SQL: v.Query.RawSQL})
		}
	}
	return out, nil
}

// DashboardFiles returns the embedded dashboards' JSON by file name.
func DashboardFiles() (map[string][]byte, error) {
	names, err := fs.Glob(dashboardFiles, "dashboards/*.json")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		data, err := dashboardFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out[path.Base(name)] = data
	}
	return out, nil
}

var minIntervalText = fmt.Sprintf("%dm", int(MinInterval/time.Minute))

func dashboards() ([]dashboard, error) {
	files, err := DashboardFiles()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []dashboard
	for _, name := range names {
		var d dashboard
		if err := json.Unmarshal(files[name], &d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", name, err)
		}
		if d.UID == "" || d.Title == "" {
			return nil, fmt.Errorf("dashboard %s: no uid or title", name)
		}
		out = append(out, d)
	}
	return out, nil
}

func flatten(panels []panelModel) []panelModel {
	var out []panelModel
	for _, p := range panels {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func checkDatasource(ds *datasourceRef) error {
	if ds == nil || ds.Type != DatasourceType || ds.UID != DatasourceUID {
		return fmt.Errorf("datasource %v, want type %s uid %s", ds, DatasourceType, DatasourceUID)
	}
	return nil
}
