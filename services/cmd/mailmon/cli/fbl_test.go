package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

// copyFile copies a parser test message into the import directory.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

func decodeLines(t *testing.T, out string) []importLine {
	t.Helper()
	var lines []importLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var line importLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, line)
	}
	return lines
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	// Stream looks the stream's info up: its cached copy is current.
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// A maildir of a complaint, a bounce, an auto-reply and a message no
// parser understands: one line each, events stored, files left in place;
// importing again stores nothing new.
func TestFBLImportMaildir(t *testing.T) {
	ns, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyFile(t, "../../../internal/arf/testdata/abuse-tracked.eml", filepath.Join(dir, "new", "1.eml"))
	copyFile(t, "../../../internal/dsn/testdata/postfix-dsn.eml", filepath.Join(dir, "new", "2.eml"))
	copyFile(t, "../../../internal/dsn/testdata/vacation.eml", filepath.Join(dir, "cur", "3.eml"))
	copyFile(t, "../../../internal/arf/testdata/plain-message.eml", filepath.Join(dir, "cur", "4.eml"))
	copyFile(t, "../../../internal/dsn/testdata/vacation.eml", filepath.Join(dir, "tmp", "5.eml")) // still being written: skipped
	cfg := writeConfig(t, "nats:\n  url: "+ns.ClientURL()+"\n")

	code, out, errOut := runMain(t, "fbl", "import", dir, "-config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := decodeLines(t, out)
	want := map[string]string{"new/1.eml": "complaint", "new/2.eml": "bounce", "cur/3.eml": "auto_reply", "cur/4.eml": "dead_letter"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for _, l := range lines {
		rel, _ := filepath.Rel(dir, l.File)
		if want[filepath.ToSlash(rel)] != l.Outcome {
			t.Errorf("%s: outcome %q, want %q (%+v)", rel, l.Outcome, want[rel], l)
		}
		if (l.Outcome == "complaint" || l.Outcome == "bounce") && len(l.Events) == 0 {
			t.Errorf("%s: no event ids", rel)
		}
		if l.Outcome == "dead_letter" && l.Reason == "" {
			t.Errorf("%s: dead letter without a reason", rel)
		}
		if _, err := os.Stat(l.File); err != nil {
			t.Errorf("%s moved or removed: %v", rel, err)
		}
	}
	complaints, bounces := streamMsgs(t, js, "COMPLAINT"), streamMsgs(t, js, "BOUNCE")
	if complaints != 1 || bounces == 0 {
		t.Fatalf("stored %d complaints, %d bounces", complaints, bounces)
	}

	// One file, imported again: the same ids, dropped as duplicates.
	code, out, errOut = runMain(t, "fbl", "import", filepath.Join(dir, "new", "1.eml"), "-config", cfg)
	if code != exitOK || len(decodeLines(t, out)) != 1 {
		t.Fatalf("file import: exit %d\n%s%s", code, out, errOut)
	}
	var first []string
	for _, l := range lines {
		if l.Outcome == "complaint" {
			first = l.Events
		}
	}
	if again := decodeLines(t, out)[0].Events; strings.Join(again, ",") != strings.Join(first, ",") {
		t.Errorf("re-import gave events %v, first import %v", again, first)
	}
	if got := streamMsgs(t, js, "COMPLAINT"); got != complaints {
		t.Errorf("%d complaints after re-import, want %d", got, complaints)
	}
}

// -trusted vouches for the imported reports: the same report imported
// without it is stored untrusted, with it trusted (a separate event: the
// trusted bit is part of a complaint's id).
func TestFBLImportTrusted(t *testing.T) {
	ns, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "1.eml")
	copyFile(t, "../../../internal/arf/testdata/abuse-tracked.eml", file)
	cfg := writeConfig(t, "nats:\n  url: "+ns.ClientURL()+"\n")
	for _, args := range [][]string{{"-config", cfg}, {"-config", cfg, "-trusted"}} {
		if code, out, errOut := runMain(t, append([]string{"fbl", "import", file}, args...)...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	s, err := js.Stream(context.Background(), "COMPLAINT")
	if err != nil {
		t.Fatal(err)
	}
	var trusted []bool
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("complaint %d: %v", seq, err)
		}
		var ev schemas.ComplaintReceived
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, ev.Trusted)
		if ev.Trusted && ev.Trust != schemas.TrustTrustedInput {
			t.Errorf("trusted import: trust %q", ev.Trust)
		}
	}
	if trusted[0] || !trusted[1] {
		t.Errorf("trusted: without the flag %v, with it %v; want false, true", trusted[0], trusted[1])
	}
}

func TestFBLImportUsage(t *testing.T) {
	if code, _, _ := runMain(t, "fbl"); code != exitUsage {
		t.Errorf("no subcommand: exit %d", code)
	}
	if code, _, errOut := runMain(t, "fbl", "import", "-config", "x.yaml"); code != exitUsage || !strings.Contains(errOut, "DIR|FILE is required") {
		t.Errorf("no path: exit %d %s", code, errOut)
	}
	if code, _, _ := runMain(t, "fbl", "import", "-h"); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
	cfg := writeConfig(t, "nats:\n  url: nats://127.0.0.1:1\n")
	if code, _, errOut := runMain(t, "fbl", "import", filepath.Join(t.TempDir(), "missing"), "-config", cfg); code != exitUsage || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing path: exit %d %s", code, errOut)
	}
}

// With NATS gone the message is reported not_stored and the import stops
// there with exit 1.
func TestFBLImportStopsWhenNotStored(t *testing.T) {
	ns, _, js := natstest.Start(t)
	top, _ := pipelines.Default()
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, "nats:\n  url: "+ns.ClientURL()+"\nfbl_ingester:\n  publish_timeout: 1s\n")
	cfg, code, ok := newFlags("test", os.Stderr).load([]string{"-config", cfgPath}, os.Stderr)
	if !ok {
		t.Fatalf("config: exit %d", code)
	}
	in, err := importer(cfg, js, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyFile(t, "../../../internal/dsn/testdata/postfix-dsn.eml", filepath.Join(dir, "1.eml"))
	copyFile(t, "../../../internal/arf/testdata/abuse-tracked.eml", filepath.Join(dir, "2.eml"))
	ns.Shutdown()
	ns.WaitForShutdown()
	var out, errOut strings.Builder
	if code := importAll(context.Background(), in, []string{filepath.Join(dir, "1.eml"), filepath.Join(dir, "2.eml")}, false, &out, &errOut); code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	lines := decodeLines(t, out.String())
	if len(lines) != 1 || lines[0].Outcome != outcomeNotStored || lines[0].Error == "" {
		t.Errorf("lines %+v, want one not_stored with its error", lines)
	}
}
