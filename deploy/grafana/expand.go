package grafana

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// variableNames are the template variables the dashboards define; each
// lists its values from the rollups and defaults to All.
var variableNames = []string{"provider", "source_ip", "customer"}

// Options is what a dashboard passes along with a query.
type Options struct {
	// From and To are the dashboard's time range.
	From, To time.Time
	// Vars holds the values selected for each template variable; a
	// variable that is missing is set to All.
	Vars map[string][]string
}

// Expand expands sql for the time range from–to with every template
// variable set to All, as Grafana and the plugin would before sending it to
// ClickHouse.
func Expand(sql string, from, to time.Time) (string, error) {
	return ExpandWith(sql, Options{From: from, To: to})
}

// ExpandWith expands sql for the time range and variable values of o (see
// the package documentation for the steps).
func ExpandWith(sql string, o Options) (string, error) {
	if !o.From.Before(o.To) {
		return "", fmt.Errorf("time range %s to %s is empty", o.From, o.To)
	}
	for name, values := range o.Vars {
		if !slices.Contains(variableNames, name) {
			return "", fmt.Errorf("unknown variable %q (known: %v)", name, variableNames)
		}
		if len(values) == 0 {
			return "", fmt.Errorf("variable %q: no values selected (leave it out for All)", name)
		}
	}
	out, err := conditionalAll(sql, o.Vars)
	if err != nil {
		return "", err
	}
	if out, err = replaceVariables(out, o.Vars); err != nil {
		return "", err
	}
	return expandMacros(out, o.From, o.To, Interval(o.From, o.To))
}

// Interval is the query interval Grafana computes for the dashboards'
// panels over from–to: the range over MaxDataPoints, rounded to a nice
// step, but at least MinInterval.
func Interval(from, to time.Time) time.Duration {
	ms := roundInterval(float64(to.Sub(from).Milliseconds()) / MaxDataPoints)
	if d := time.Duration(ms) * time.Millisecond; d > MinInterval {
		return d
	}
	return MinInterval
}

// roundInterval is Grafana's rangeutil.roundInterval: a raw interval in
// milliseconds to the step below the midpoint it falls under.
func roundInterval(ms float64) int64 {
	steps := []struct{ below, step float64 }{
		{10, 1}, {15, 10}, {35, 20}, {75, 50}, {150, 100}, {350, 200}, {750, 500},
		{1500, 1000}, {3500, 2000}, {7500, 5000}, {12500, 10000}, {17500, 15000},
		{25000, 20000}, {45000, 30000}, {90000, 60000}, {210000, 120000},
		{450000, 300000}, {750000, 600000}, {1050000, 900000}, {1500000, 1200000},
		{2700000, 1800000}, {5400000, 3600000}, {9000000, 7200000},
		{16200000, 10800000}, {32400000, 21600000}, {86400000, 43200000},
		{604800000, 86400000}, {1814400000, 604800000}, {3628800000, 2592000000},
	}
	for _, s := range steps {
		if ms < s.below {
			return int64(s.step)
		}
	}
	return 31536000000 // 1y
}

const conditionalAllMacro = "$__conditionalAll("

// conditionalAll replaces each $__conditionalAll(condition, $var), last
// first, as the plugin's frontend does: with 1=1 when var is All, with
// condition otherwise.
func conditionalAll(sql string, vars map[string][]string) (string, error) {
	for {
		i := strings.LastIndex(sql, conditionalAllMacro)
		if i < 0 {
			return sql, nil
		}
		open := i + len(conditionalAllMacro) - 1
		args, end, err := macroArgs(sql, open)
		if err != nil {
			return "", fmt.Errorf("$__conditionalAll at offset %d: %w", i, err)
		}
		if len(args) != 2 {
			return "", fmt.Errorf("$__conditionalAll at offset %d: %d arguments, want 2", i, len(args))
		}
		ref := strings.TrimSpace(args[1])
		name, ok := strings.CutPrefix(ref, "$")
		if !ok || !slices.Contains(variableNames, name) {
			return "", fmt.Errorf("$__conditionalAll at offset %d: second argument %q is not one of the variables %v", i, ref, variableNames)
		}
		phrase := args[0]
		if _, selected := vars[name]; !selected {
			phrase = "1=1"
		}
		sql = sql[:i] + phrase + sql[end:]
	}
}

// macroArgs splits the parenthesised arguments that start at sql[open]
// on the commas outside nested parentheses. end is the offset just past
// the closing parenthesis.
func macroArgs(sql string, open int) (args []string, end int, err error) {
	depth, start := 0, open+1
	for i := open; i < len(sql); i++ {
		switch sql[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return append(args, sql[start:i]), i + 1, nil
			}
		case ',':
			if depth == 1 {
				args = append(args, sql[start:i])
				start = i + 1
			}
		}
	}
	return nil, 0, errors.New("no closing parenthesis")
}

// variableRef matches Grafana's template variable syntaxes: $name,
// [[name]] or [[name:format]], ${name} or ${name:format}.
var variableRef = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}`)

// replaceVariables replaces the dashboards' template variables as
// Grafana does. Names starting with __ are left for expandMacros.
func replaceVariables(sql string, vars map[string][]string) (string, error) {
	var firstErr error
	out := variableRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name, format := m[1]+m[2]+m[4], m[3]+m[5]
		if strings.HasPrefix(name, "__") {
			return ref
		}
		if !slices.Contains(variableNames, name) {
			firstErr = cmpErr(firstErr, fmt.Errorf("unknown variable %s", ref))
			return ref
		}
		values, selected := vars[name]
		if !selected {
			// Grafana would list every option the variable's query
			// returned; only $__conditionalAll keeps a query independent
			// of them.
			firstErr = cmpErr(firstErr, fmt.Errorf("%s is All and used outside $__conditionalAll", ref))
			return ref
		}
		text, err := formatValues(values, format)
		if err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("%s: %w", ref, err))
			return ref
		}
		return text
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// formatValues formats a multi-value variable's values: with no format by
// the plugin's formatter ('a','b', unescaped), otherwise by Grafana's
// format of that name.
func formatValues(values []string, format string) (string, error) {
	quoted := make([]string, len(values))
	switch format {
	case "":
		for i, v := range values {
			quoted[i] = "'" + v + "'"
		}
	case "singlequote":
		for i, v := range values {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
		}
	case "sqlstring":
		for i, v := range values {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
	case "csv", "raw":
		copy(quoted, values)
	default:
		return "", fmt.Errorf("format %q is not supported here", format)
	}
	return strings.Join(quoted, ","), nil
}

// macroRef matches a plugin macro name; its arguments, if any, follow in
// parentheses.
var macroRef = regexp.MustCompile(`\$__(\w+)`)

// expandMacros expands the plugin's backend macros.
func expandMacros(sql string, from, to time.Time, interval time.Duration) (string, error) {
	seconds := int(math.Max(interval.Seconds(), 1))
	var b strings.Builder
	rest := sql
	for {
		loc := macroRef.FindStringSubmatchIndex(rest)
		if loc == nil {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:loc[0]])
		name := rest[loc[2]:loc[3]]
		end := loc[1]
		var args []string
		if end < len(rest) && rest[end] == '(' {
			raw, after, err := macroArgs(rest, end)
			if err != nil {
				return "", fmt.Errorf("$__%s: %w", name, err)
			}
			for _, a := range raw {
				args = append(args, strings.TrimSpace(a))
			}
			end = after
		}
		text, err := macro(name, args, from, to, seconds)
		if err != nil {
			return "", err
		}
		b.WriteString(text)
		rest = rest[end:]
	}
}

func macro(name string, args []string, from, to time.Time, seconds int) (string, error) {
	want := 0
	switch name {
	case "timeFilter", "timeInterval":
		want = 1
	case "fromTime", "toTime", "interval_s":
	default:
		return "", fmt.Errorf("macro $__%s is not supported here", name)
	}
	if len(args) != want {
		return "", fmt.Errorf("macro $__%s: %d arguments, want %d", name, len(args), want)
	}
	dateTime := func(t time.Time) string { return "toDateTime(" + strconv.FormatInt(t.Unix(), 10) + ")" }
	switch name {
	case "timeFilter":
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dateTime(from), args[0], dateTime(to)), nil
	case "timeInterval":
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], seconds), nil
	case "fromTime":
		return dateTime(from), nil
	case "toTime":
		return dateTime(to), nil
	default: // interval_s
		return strconv.Itoa(seconds), nil
	}
}
