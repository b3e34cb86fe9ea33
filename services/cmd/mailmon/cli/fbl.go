package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/services/cmd/mailmon/app"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/obs"
	"github.com/mailmon/mailmon/services/internal/worker"
)

const fblUsage = `usage: mailmon fbl import DIR|FILE [-config FILE] [-trusted]

Feeds feedback-loop reports, bounces and DMARC aggregate and SMTP TLS
reports to the fbl-ingester's processing, once: every message of a maildir
(new/ and cur/), of a directory of .eml files, or one file; a file may also
be a report file as receivers send them (.xml, .xml.gz, .zip, .json,
.json.gz). Events are published to the running mailmon's NATS and
confirmed by JetStream (a message no parser understands is dead-lettered),
exactly as for a message the fbl-ingester receives.
Prints one JSON line per message: file, outcome (complaint, auth_failure,
bounce, dmarc_report, tls_report, auto_reply, delivered, dead_letter, or
not_stored with the error),
event_ids and reason. Files are left where they are; importing them again
publishes the same event ids, which are dropped as duplicates. Stops at
the first message that could not be stored. Exit status 0 when every
message was stored, 1 otherwise, 2 on usage errors.

A report counts towards enforcement only when its origin is verified: its
DKIM signature by a configured feedback-loop operator, or -trusted, which
vouches for every report imported (use it only for files you know came
from an operator, never for mail anyone could have sent).`

// outcomeNotStored marks a message whose events JetStream did not confirm.
const outcomeNotStored = "not_stored"

// importLine is one line of `mailmon fbl import`.
type importLine struct {
	File string `json:"file"`
	fblingester.ImportResult
	Error string `json:"error,omitempty"`
}

func fblCmd(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(errOut, fblUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help") {
			return exitOK
		}
		return exitUsage
	}
	rest := args[1:]
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help") {
		fmt.Fprintln(errOut, fblUsage)
		return exitOK
	}
	if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
		fmt.Fprintf(errOut, "mailmon fbl import: DIR|FILE is required\n%s\n", fblUsage)
		return exitUsage
	}
	path := rest[0]
	f := newFlags("fbl import", errOut)
	trusted := f.fs.Bool("trusted", false, "vouch for the imported reports: they count as if signed by a feedback-loop operator")
	cfg, code, ok := f.load(rest[1:], errOut)
	if !ok {
		return code
	}
	files, err := importFiles(path)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon fbl import: %v\n", err)
		return exitUsage
	}
	nc, js, err := dialJetStream(cfg, fblingester.WorkerName)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon fbl import: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	in, err := importer(cfg, js, errOut)
	if err != nil {
		fmt.Fprintf(errOut, "mailmon fbl import: %v\n", err)
		return exitUsage
	}
	return importAll(ctx, in, files, *trusted, out, errOut)
}

// importFiles is the message files of path: a directory's (maildir or
// not, listed like files.dirs), or path itself.
func importFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	return fblingester.MessageFiles(path)
}

// importer builds the ingester as `mailmon fbl-ingester` does (same
// tracking keys, trace rules and limits), without running it: nothing
// listens and no mailbox or directory is pulled.
func importer(cfg app.Config, js jetstream.JetStream, errOut io.Writer) (*fblingester.Ingester, error) {
	// The unmatched-complaints alert is left to the running worker: this
	// process ends after the import, so an alert it raised would never be
	// resolved. No window can reach MaxInt complaints.
	cfg.FBLIngester.UnmatchedAlert.MinComplaints = math.MaxInt
	defs, err := app.SelectWorkers(fblingester.WorkerName)
	if err != nil {
		return nil, err
	}
	track, err := app.TrackingSettings(cfg.Tracking)
	if err != nil {
		return nil, err
	}
	r, err := defs[0].Build(cfg, worker.Settings{JetStream: js, Tracking: track, Logger: obs.NewLogger(cfg.Log, errOut).With("worker", fblingester.WorkerName)})
	if err != nil {
		return nil, err
	}
	in, ok := r.(*fblingester.Ingester)
	if !ok {
		return nil, fmt.Errorf("%s builds a %T, not an ingester", fblingester.WorkerName, r)
	}
	return in, nil
}

// importAll imports files one by one and prints a line for each. Like the
// fbl-ingester's directory import it stops at the first message that
// could not be stored: NATS is then away, and every further message would
// wait out publish_timeout too.
func importAll(ctx context.Context, in *fblingester.Ingester, files []string, trusted bool, out, errOut io.Writer) int {
	enc := json.NewEncoder(out)
	for _, path := range files {
		if ctx.Err() != nil {
			fmt.Fprintln(errOut, "mailmon fbl import: interrupted")
			return exitFailure
		}
		res, err := in.ImportFile(ctx, path, trusted)
		line := importLine{File: path, ImportResult: res}
		if err != nil {
			line.Outcome, line.Error = outcomeNotStored, err.Error()
		}
		if e := enc.Encode(line); e != nil {
			fmt.Fprintf(errOut, "mailmon fbl import: %v\n", e)
			return exitFailure
		}
		if err != nil {
			return exitFailure
		}
	}
	return exitOK
}
