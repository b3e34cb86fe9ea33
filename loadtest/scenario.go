package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The scaffolding every scenario shares: flags only, no positional
// arguments, every flag problem reported at once, exit status 2 for bad
// flags, and one JSON object as the last stdout line with exit status 0
// only when the result is ok.

// parseArgs parses args into fs and refuses positional arguments, which no
// scenario takes: a stray word is most likely a mistyped flag.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// joinProblems is one error listing every flag problem, so a user fixes
// them in one go; nil when there are none.
func joinProblems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// flagExitCode is the exit status when a scenario's flags did not parse:
// 0 for -h (the flag package printed the usage), else 2 after saying why.
func flagExitCode(stderr io.Writer, scenario string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "loadtest %s: %v\n", scenario, err)
	return 2
}

// printResult prints res as one JSON line on stdout, the line a scenario
// ends with, and returns the exit status: 0 only when ok.
func printResult(stdout, stderr io.Writer, scenario string, res any, ok bool) int {
	line, err := json.Marshal(res)
	if err != nil {
		// Only a NaN or infinite figure gets here: a bug in the scenario.
		fmt.Fprintf(stderr, "loadtest %s: %v\n", scenario, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", line)
	if !ok {
		return 1
	}
	return 0
}

// moduleRoot is the root of the mailmon module the harness runs in, where
// the example events and the mailmon command live.
func moduleRoot() (string, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return findModuleRoot(cwd)
}

// keepOrRemove ends a run's temp dir: with -keep it stays for inspection,
// named in the result's kept_dir and on stderr; else it is removed.
func keepOrRemove(dir string, keep bool, keptDir *string, log io.Writer) error {
	if keep {
		*keptDir = dir
		progress(log, "kept %s", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove temp dir: %w", err)
	}
	return nil
}

// round rounds v to digits decimals, so the JSON line shows no float noise.
func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

// tempRunDir makes a run's temp dir. end, deferred with a pointer to the
// run's error, keeps or removes the dir (see keepOrRemove) and joins a
// removal failure into that error.
func tempRunDir(prefix string, keep bool, keptDir *string, log io.Writer) (dir string, end func(runErr *error), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	end = func(runErr *error) {
		if dirErr := keepOrRemove(dir, keep, keptDir, log); dirErr != nil {
			*runErr = errors.Join(*runErr, dirErr)
		}
	}
	return dir, end, nil
}

// childConfigHead is the start of a child's config that the scenarios
// running `mailmon run` share: the data dir, warnings-only text logs, an
// embedded NATS and the HTTP address, both on loopback. comment is the
// first line, saying which harness wrote the file. http comes last so a
// caller may add keys of its own to it.
func childConfigHead(comment, dataDir string, httpPort, natsPort int) string {
	return fmt.Sprintf(`%s
data_dir: %q
log:
  level: warn
  format: text
nats:
  url: ""
  embedded:
    listen: "127.0.0.1:%d"
http:
  addr: "127.0.0.1:%d"
`, comment, dataDir, natsPort, httpPort)
}

// writeRepeated writes data repeats times into a new file at path: the
// parser scenarios repeat a corpus to a size where start-up is amortised.
func writeRepeated(path string, data []byte, repeats int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < repeats; i++ {
		if _, err := w.Write(data); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuTime is the user + system CPU time of a finished child process, all
// its threads: the parser scenarios compare CPU time, not wall time, so
// other load on a shared machine weighs on neither side.
func cpuTime(ps *os.ProcessState) time.Duration {
	return ps.UserTime() + ps.SystemTime()
}

// corporaDir is where the real-world corpora live: $MAILMON_CORPORA, else
// ../shared/corpora beside the repository (they are never copied into it).
func corporaDir(root string) string {
	if dir := os.Getenv("MAILMON_CORPORA"); dir != "" {
		return dir
	}
	return filepath.Join(root, "..", "shared", "corpora")
}
