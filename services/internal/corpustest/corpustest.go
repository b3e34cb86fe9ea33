// Package corpustest finds the shared real-world corpora the parser tests
// score against. They live beside the repository (../shared/corpora from
// its root) and are never copied into it; MAILMON_CORPORA overrides the
// place.
package corpustest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the corpora directory. When it is missing the test fails
// under CI (the corpora are part of the CI machine) and is skipped
// elsewhere, saying why.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MAILMON_CORPORA")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("corpustest: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "corpora")
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("corpustest: corpora not found at %s under CI: %v", dir, err)
		}
		t.Skipf("corpustest: corpora not found at %s (set MAILMON_CORPORA)", dir)
	}
	return dir
}

// Path joins elem to the corpora directory and checks the file exists,
// with Dir's rules when it does not.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("corpustest: %v", err)
	}
	return p
}

// moduleRoot walks up from the working directory (the package under test)
// to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
