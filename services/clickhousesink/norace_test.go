//go:build !race

package clickhousesink_test

// integrationEvents is the 100,000 events.
const integrationEvents = 100_000
