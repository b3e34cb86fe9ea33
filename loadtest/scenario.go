package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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
