package worker_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Imports run one way: cmd → workers → internal → schemas/pipelines. A
// package that imports against that direction fails here with the import
// named.
func TestImportsRunOneWay(t *testing.T) {
	const module = "github.com/mailmon/mailmon/"
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// layer says how high a package stands; it may import only packages
	// below it, or its own subpackages.
	layer := func(pkg string) int {
		p := strings.TrimPrefix(pkg, module)
		switch {
		case p == pkg: // outside the module
			return -1
		case strings.HasPrefix(p, "schemas"), strings.HasPrefix(p, "pipelines"):
			return 0
		case strings.HasPrefix(p, "services/internal/"):
			return 1
		case strings.HasPrefix(p, "services/cmd/"):
			return 3
		case strings.HasPrefix(p, "services/"):
			return 2 // a worker (or services/peers, which tests and loadtest use)
		}
		return 4 // loadtest: black-box, uses only the public contract
	}
	worker := func(pkg string) string { // services/<worker>, or ""
		p := strings.TrimPrefix(pkg, module+"services/")
		if p == pkg || strings.HasPrefix(p, "internal/") || strings.HasPrefix(p, "cmd/") {
			return ""
		}
		name, _, _ := strings.Cut(p, "/")
		return name
	}
	checked := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		checked++
		for _, imp := range imports {
			if layer(imp) < 0 || strings.HasPrefix(imp, pkg+"/") {
				continue
			}
			below := layer(imp) < layer(pkg)
			// Within a layer: internal packages build on each other, the
			// command's packages too; a worker stands alone.
			beside := layer(imp) == layer(pkg) && (layer(pkg) != 2 || worker(imp) == worker(pkg))
			if !below && !beside {
				t.Errorf("%s imports %s: imports run cmd → workers → internal → schemas/pipelines", pkg, imp)
			}
		}
	}
	if checked < 20 || !slices.ContainsFunc(strings.Fields(string(out)), func(s string) bool { return s == module+"services/cmd/mailmon/app" }) {
		t.Fatalf("go list saw %d packages; the layering check ran on too few", checked)
	}
}
