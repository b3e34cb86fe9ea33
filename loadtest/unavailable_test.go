package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// unavailable ends a test whose real peer or corpus is missing: a failure
// under CI, where `go tool task deps` installs every peer and ../shared is
// laid beside the repository, and a skip saying why elsewhere. It is the
// rule of services/internal/peertest and corpustest, which loadtest (a
// black-box client outside services/) cannot import.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("unavailable under CI: %s", msg)
	}
	t.Skipf("unavailable (CI would fail): %s", msg)
}

// needCorpora returns the corpora directory, or ends the test by
// unavailable's rule when it is missing.
func needCorpora(t *testing.T, elem ...string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(append([]string{corporaDir(root)}, elem...)...)
	if _, err := os.Stat(dir); err != nil {
		unavailable(t, "corpora: %v (set MAILMON_CORPORA)", err)
	}
	return dir
}
