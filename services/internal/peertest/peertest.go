// Package peertest decides what a test does when a real peer (Postfix,
// Dovecot, rbldnsd, ClickHouse) cannot run on this machine: under CI,
// where `go tool task deps` installs every peer, that is a failure; on a
// developer's machine the test is skipped with the reason, never counted
// as passing silently.
package peertest

import (
	"fmt"
	"os"
	"testing"
)

// Unavailable ends the test because a real peer cannot run: Fatal when the
// CI environment variable is set, Skip otherwise.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("real peer unavailable under CI: %s", msg)
	}
	t.Skipf("real peer unavailable (CI would fail): %s", msg)
}
