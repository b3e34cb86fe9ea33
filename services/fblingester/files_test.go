package fblingester

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailmon/mailmon/schemas"
)

func TestImportMaildirMovesOnlyStoredFiles(t *testing.T) {
	n := startRestartableNATS(t)
	cfg := testConfig()
	cfg.SMTP.Listen = ""
	cfg.PublishTimeout = 3e9
	r := startIngester(t, cfg, n.js)
	r.stop()
	dir := t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("new/1.eml", arfReport("f1", "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", "m-f1")))
	write("cur/2.eml", dsnBounce("fb2", ""))
	write("tmp/3.eml", arfReport("f3", "abuse", "192.0.2.10", "")) // being written: not imported

	n.stop()
	if got, err := r.in.ImportDir(context.Background(), dir, false); err == nil || got != 0 {
		t.Fatalf("import with NATS down: %d, %v; want 0 and an error", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new/1.eml")); err != nil {
		t.Fatal("file moved although its events were not stored")
	}
	n.start(t)
	got, err := r.in.ImportDir(context.Background(), dir, false)
	if err != nil || got != 2 {
		t.Fatalf("import: %d, %v; want 2", got, err)
	}
	done, _ := os.ReadDir(filepath.Join(dir, DoneDir))
	if len(done) != 2 {
		t.Errorf("%d files in done/, want 2", len(done))
	}
	// A second scan (a restart) imports nothing again.
	if got, err := r.in.ImportDir(context.Background(), dir, false); err != nil || got != 0 {
		t.Errorf("second import: %d, %v; want 0", got, err)
	}
	cs := decode[schemas.ComplaintReceived](t, storedMsgs(t, n.js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(cs) != 1 || cs[0].ReceivedVia != schemas.ReceivedViaFile {
		t.Errorf("complaints %+v", cs)
	}
	if bs := storedMsgs(t, n.js, "BOUNCE", schemas.SubjectBounceReceived); len(bs) != 2 {
		t.Errorf("%d bounces, want 2", len(bs))
	}
}
