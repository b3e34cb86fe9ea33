package fblingester

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// DoneDir is the folder inside an imported directory that imported files
// are moved to, so a restart does not import them again.
const DoneDir = "done"

// runDir imports one directory every interval until ctx ends; trusted
// marks it as one of files.trusted_dirs.
func (in *Ingester) runDir(ctx context.Context, dir string, trusted bool) {
	name := "dir:" + dir
	for {
		n, err := in.ImportDir(ctx, dir, trusted)
		in.setFailing(name, err)
		if err != nil {
			in.m.pullErrors.WithLabelValues("file", dir).Inc()
			in.log.Warn("directory import failed; the files left are imported at the next scan", "dir", dir, "error", err)
		} else if n > 0 {
			in.log.Info("directory import", "dir", dir, "messages", n)
		}
		if !worker.Sleep(ctx, in.cfg.Files.Interval.Std()) {
			return
		}
	}
}

// MessageFiles lists the message files of a directory: new/ and cur/ of a
// maildir, else the directory's own regular files; dot-files (a maildir's
// tmp files, editors' leftovers) are skipped. `mailmon fbl import` lists
// a directory with it too, so both read the same files.
func MessageFiles(dir string) ([]string, error) {
	var dirs []string
	for _, sub := range []string{"new", "cur"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			dirs = append(dirs, filepath.Join(dir, sub))
		}
	}
	if len(dirs) == 0 {
		dirs = []string{dir}
	}
	var out []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ImportDir imports every message file of dir and moves each to
// dir/done/ once its events (or its dead letter) are stored; a file whose
// events can never be stored is dead-lettered and moved too, so the scan
// goes on past it. It stops at the first file that could not be stored
// (NATS away) and returns how many were imported. trusted makes every
// report in it evidence (files.trusted_dirs).
func (in *Ingester) ImportDir(ctx context.Context, dir string, trusted bool) (int, error) {
	files, err := MessageFiles(dir)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, nil
	}
	done := filepath.Join(dir, DoneDir)
	if err := os.MkdirAll(done, 0o750); err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		if _, err := in.ImportFile(ctx, f, trusted); err != nil {
			return n, err
		}
		if err := os.Rename(f, filepath.Join(done, filepath.Base(f))); err != nil {
			return n, fmt.Errorf("%s imported but not moved to %s (it will be imported again; its events are dropped as duplicates): %w", f, done, err)
		}
		n++
	}
	return n, nil
}

// ImportResult is what one imported file became.
type ImportResult struct {
	Outcome string   `json:"outcome"`
	Events  []string `json:"event_ids,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// ImportFile handles one message file like a message received over SMTP:
// its events are stored, or it is dead-lettered. The file is not moved.
// trusted makes a report in it evidence, as if signed by an operator: for
// a file the operator vouches for (`mailmon fbl import -trusted`); else
// only an operator's DKIM signature on it does.
func (in *Ingester) ImportFile(ctx context.Context, path string, trusted bool) (ImportResult, error) {
	st, err := os.Stat(path)
	if err != nil {
		return ImportResult{}, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return ImportResult{}, err
	}
	if st.Size() > in.cfg.MaxMessageBytes.Int64() {
		// Kept (cut) as a dead letter so an operator sees it; importing
		// it again would never succeed.
		reason := fmt.Sprintf("file of %d bytes is over max_message_bytes", st.Size())
		if err := in.deadLetter(context.WithoutCancel(ctx), raw, schemas.ReceivedViaFile, reason); err != nil {
			return ImportResult{}, fmt.Errorf("%s: %w", path, err)
		}
		in.m.deadLettered.WithLabelValues(schemas.ReceivedViaFile).Inc()
		return ImportResult{Outcome: outcomeDeadLetter, Reason: reason}, nil
	}
	o := origin{via: schemas.ReceivedViaFile}
	if trusted {
		o.trust = schemas.TrustTrustedInput
	}
	res, err := in.handle(context.WithoutCancel(ctx), raw, o)
	if err != nil {
		return ImportResult{}, fmt.Errorf("%s: %w", path, err)
	}
	out := ImportResult{Outcome: res.outcome, Reason: res.reason}
	for _, ev := range res.events {
		out.Events = append(out.Events, ev.EventHeader().ID)
	}
	return out, nil
}
