//go:build race

package clickhousesink_test

// integrationEvents is smaller under the race detector, which slows the
// test's own publishing about six times; the plain run covers 100,000.
const integrationEvents = 25_000
