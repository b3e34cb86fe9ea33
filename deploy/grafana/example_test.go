package grafana_test

import (
	"fmt"
	"time"

	"github.com/mailmon/mailmon/deploy/grafana"
)

// A panel's query as ClickHouse receives it for one day, with every
// variable at All, then with one provider selected.
func ExampleExpandWith() {
	const sql = `SELECT toDateTime(intDiv(toUInt32(bucket), $__interval_s) * $__interval_s, 'UTC') AS time, countMerge(attempts) AS n
FROM delivery_status_5m
WHERE $__timeFilter(bucket) AND $__conditionalAll(provider IN (${provider:singlequote}), $provider)
GROUP BY time`
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	to := from.Add(7 * 24 * time.Hour)

	all, err := grafana.Expand(sql, from, to)
	if err != nil {
		panic(err)
	}
	fmt.Println(all)
	gmail, err := grafana.ExpandWith(sql, grafana.Options{From: from, To: to, Vars: map[string][]string{"provider": {"gmail"}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(gmail)
	// Output:
	// SELECT toDateTime(intDiv(toUInt32(bucket), 1800) * 1800, 'UTC') AS time, countMerge(attempts) AS n
	// FROM delivery_status_5m
	// WHERE bucket >= toDateTime(1772409600) AND bucket <= toDateTime(1773014400) AND 1=1
	// GROUP BY time
	// SELECT toDateTime(intDiv(toUInt32(bucket), 1800) * 1800, 'UTC') AS time, countMerge(attempts) AS n
	// FROM delivery_status_5m
	// WHERE bucket >= toDateTime(1772409600) AND bucket <= toDateTime(1773014400) AND provider IN ('gmail')
	// GROUP BY time
}
