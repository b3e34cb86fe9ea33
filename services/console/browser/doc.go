// Package browser holds the console's browser tests: Debian's chromium,
// driven headless through chromedp, opens every console page served from a
// real ClickHouse seeded with known events (consoletest.Seed, and
// consoletest.SeedDMARC for the DMARC & TLS page), and checks
// that the figures the page shows are the seeded truth, that the page wrote
// no console error, threw no exception and failed to load nothing, and that
// the JSON variant of the page carries the same figures. Links and the
// filter form are followed as an operator would, a fresh install behind
// basic auth is signed in to, and a screenshot of every page is saved.
//
// Chromium runs with a temporary profile that chromedp creates and removes,
// without a sandbox when the tests run as root, talking to the test over a
// pipe (no debugging port), and with every host name but loopback resolving
// to nothing, so a page that reached for the network would fail its test.
// When the test ends, chromium is closed, its processes are gone and its
// profile is removed; the harness checks that too.
//
// A machine without chromium skips these tests outside CI and fails them
// under CI (services/internal/peertest); `go tool task deps` installs it.
//
// Screenshots go to a temporary folder; set MAILMON_SCREENSHOTS=DIR to keep
// them, one PNG per page:
//
//	MAILMON_SCREENSHOTS=/tmp/shots go test ./services/console/browser
//
// The overview image in the README, testdata/overview.png, is that run's
// overview-matrix.png (three IPs × three providers).
package browser
