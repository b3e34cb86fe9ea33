package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// The postfix-parse scenario: lines per second that `mailmon inspect
// postfix-log` parses, joins and classifies over the corpus logs (repeated
// to a bounded count), against Debian's pflogsumm over the same file in the
// same run.

// postfixTargetRatio is the ratio issue 5 asks for.
const postfixTargetRatio = 20

type postfixParseOptions struct {
	lines     int
	corpus    string
	runs      int
	timeout   time.Duration
	pflogsumm string
	keep      bool
}

func parsePostfixParseFlags(args []string, stderr io.Writer) (postfixParseOptions, error) {
	fs := flag.NewFlagSet("postfix-parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o postfixParseOptions
	fs.IntVar(&o.lines, "lines", 2_000_000, "log lines to feed both parsers (the corpus logs repeated; rounded up to whole repeats)")
	fs.StringVar(&o.corpus, "corpus", "", "folder of Postfix logs (*.log); default $MAILMON_CORPORA/postfix/logs, else ../shared/corpora/postfix/logs from the repository root")
	fs.IntVar(&o.runs, "runs", 3, "runs of mailmon over the input; the median is reported (pflogsumm runs once)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.StringVar(&o.pflogsumm, "pflogsumm", "", "pflogsumm binary (default: pflogsumm on PATH, else /usr/sbin/pflogsumm; `go tool task deps` installs it)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (input file, mailmon binary) for inspection")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var problems []string
	if o.lines < 1 {
		problems = append(problems, fmt.Sprintf("-lines must be at least 1, got %d", o.lines))
	}
	if o.runs < 1 {
		problems = append(problems, fmt.Sprintf("-runs must be at least 1, got %d", o.runs))
	}
	if o.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("-timeout must be positive, got %s", o.timeout))
	}
	return o, joinProblems(problems)
}

// postfixParseResult is the JSON line the scenario ends with.
type postfixParseResult struct {
	Scenario string `json:"scenario"`
	// OursPerS is lines / the median CPU time (user + system, all
	// threads) of `mailmon inspect postfix-log INPUT`, less mailmon's
	// start-up CPU time on an empty file. CPU time, not wall time, so that
	// other load on the machine does not skew the ratio.
	OursPerS float64 `json:"ours_per_s"`
	// BaselinePerS is lines / the CPU time of `pflogsumm INPUT`, less its
	// start-up on an empty file.
	BaselinePerS float64 `json:"baseline_per_s"`
	// Ratio is OursPerS / BaselinePerS.
	Ratio float64 `json:"ratio"`
	// Lines is the number of log lines in the input.
	Lines int `json:"lines"`
	// Unparsed counts delivery-status and expiry lines in the input that
	// did not come out as a delivery record.
	Unparsed int `json:"unparsed"`
	// StatusLines is the number of delivery-status and expiry lines in the
	// input; Deliveries, Expiries and Rejects are the records mailmon
	// printed (per run).
	StatusLines int `json:"status_lines"`
	Deliveries  int `json:"deliveries"`
	Expiries    int `json:"expiries"`
	Rejects     int `json:"rejects"`
	Files       int `json:"files"`
	Repeats     int `json:"repeats"`
	InputBytes  int `json:"input_bytes"`
	// OursS are the CPU times of every run of mailmon and OursWallS their
	// wall times; BaselineS and BaselineWallS the pflogsumm run's.
	// OursRawPerS, BaselineRawPerS and RatioRaw count start-up in.
	OursRawPerS      float64   `json:"ours_raw_per_s"`
	BaselineRawPerS  float64   `json:"baseline_raw_per_s"`
	RatioRaw         float64   `json:"ratio_raw"`
	OursStartupS     float64   `json:"ours_startup_s"`
	BaselineStartupS float64   `json:"baseline_startup_s"`
	OursS            []float64 `json:"ours_s"`
	OursWallS        []float64 `json:"ours_wall_s"`
	BaselineS        float64   `json:"baseline_s"`
	BaselineWallS    float64   `json:"baseline_wall_s"`
	TargetRatio      float64   `json:"target_ratio"`
	ElapsedS         float64   `json:"elapsed_s"`
	Error            string    `json:"error,omitempty"`
	KeptDir          string    `json:"kept_dir,omitempty"`
}

func (r postfixParseResult) ok() bool { return r.Error == "" && r.Unparsed == 0 }

func runPostfixParse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parsePostfixParseFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "postfix-parse", err)
	}
	started := time.Now()
	res := postfixParseResult{Scenario: "postfix-parse", TargetRatio: postfixTargetRatio}
	if err := runPostfixParseScenario(ctx, opts, &res, stderr); err != nil {
		res.Error = err.Error()
		progress(stderr, "failed: %v", err)
	}
	res.ElapsedS = round(time.Since(started).Seconds(), 3)
	return printResult(stdout, stderr, "postfix-parse", res, res.ok())
}

func runPostfixParseScenario(parent context.Context, o postfixParseOptions, res *postfixParseResult, log io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(parent, o.timeout)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	pfl, err := findPflogsumm(o.pflogsumm)
	if err != nil {
		return err
	}
	corpus := o.corpus
	if corpus == "" {
		corpus = filepath.Join(corporaDir(root), "postfix", "logs")
	}
	data, files, err := readPostfixCorpus(corpus)
	if err != nil {
		return err
	}
	perRepeat, statusPerRepeat := countLogLines(data)
	res.Files = len(files)
	res.Repeats = (o.lines + perRepeat - 1) / perRepeat
	res.Lines = res.Repeats * perRepeat
	res.StatusLines = res.Repeats * statusPerRepeat
	res.InputBytes = res.Repeats * len(data)

	dir, endDir, err := tempRunDir("mailmon-postfix-parse-", o.keep, &res.KeptDir, log)
	if err != nil {
		return err
	}
	defer endDir(&err)
	input := filepath.Join(dir, "input.log")
	if err := writeRepeated(input, data, res.Repeats); err != nil {
		return err
	}
	progress(log, "input: %d files x %d repeats = %d lines (%d status lines), %.1f MB in %s",
		len(files), res.Repeats, res.Lines, res.StatusLines, float64(res.InputBytes)/1e6, input)

	progress(log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}

	// Start-up (runtime and package init for mailmon, the interpreter and
	// modules for pflogsumm) is not parsing: measure it on an empty file
	// and take it off both tools' CPU time alike.
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return err
	}
	var oursStart, pflStart []float64
	for i := 0; i < 3; i++ {
		cpu, _, _, err := timeInspect(ctx, bin, empty)
		if err != nil {
			return err
		}
		oursStart = append(oursStart, cpu)
		cpu, _, err = timePflogsumm(ctx, pfl, empty)
		if err != nil {
			return err
		}
		pflStart = append(pflStart, cpu)
	}
	res.OursStartupS, res.BaselineStartupS = round(median(oursStart), 3), round(median(pflStart), 3)
	progress(log, "start-up on an empty file: mailmon %.3f s CPU, pflogsumm %.3f s CPU", res.OursStartupS, res.BaselineStartupS)

	var cpus []float64
	for i := 0; i < o.runs; i++ {
		cpu, wall, counts, err := timeInspect(ctx, bin, input)
		if err != nil {
			return err
		}
		cpus = append(cpus, round(cpu, 3))
		res.OursWallS = append(res.OursWallS, round(wall, 3))
		progress(log, "mailmon run %d: %.3f s CPU (%.0f lines/s), %.3f s wall; %d deliveries, %d expiries, %d rejects",
			i+1, cpu, float64(res.Lines)/cpu, wall, counts.deliveries, counts.expiries, counts.rejects)
		if i == 0 {
			res.Deliveries, res.Expiries, res.Rejects = counts.deliveries, counts.expiries, counts.rejects
		} else if counts != (inspectCounts{res.Deliveries, res.Expiries, res.Rejects}) {
			return fmt.Errorf("run %d printed %+v records, run 1 %d/%d/%d", i+1, counts, res.Deliveries, res.Expiries, res.Rejects)
		}
	}
	res.OursS = cpus
	oursCPU := median(cpus)
	res.OursRawPerS = round(float64(res.Lines)/oursCPU, 0)
	res.OursPerS = round(float64(res.Lines)/max(oursCPU-median(oursStart), 1e-3), 0)
	if missing := res.StatusLines - res.Deliveries - res.Expiries; missing > 0 {
		res.Unparsed = missing
	}

	progress(log, "pflogsumm over the same file (%s)", pfl)
	cpu, wall, err := timePflogsumm(ctx, pfl, input)
	if err != nil {
		return err
	}
	res.BaselineS, res.BaselineWallS = round(cpu, 3), round(wall, 3)
	res.BaselineRawPerS = round(float64(res.Lines)/cpu, 0)
	res.BaselinePerS = round(float64(res.Lines)/max(cpu-median(pflStart), 1e-3), 0)
	res.Ratio = round(res.OursPerS/res.BaselinePerS, 2)
	res.RatioRaw = round(res.OursRawPerS/res.BaselineRawPerS, 2)
	progress(log, "pflogsumm: %.3f s CPU, %.3f s wall; without start-up %.0f lines/s, ours %.0f lines/s: ratio %.1f (with start-up %.1f; target %d)",
		cpu, wall, res.BaselinePerS, res.OursPerS, res.Ratio, res.RatioRaw, postfixTargetRatio)
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// findPflogsumm returns the pflogsumm binary to run.
func findPflogsumm(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pflogsumm"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/sbin/pflogsumm"); err == nil && !st.IsDir() {
		return "/usr/sbin/pflogsumm", nil
	}
	return "", errors.New("pflogsumm not found: install it with `go tool task deps` (Debian package pflogsumm) or pass -pflogsumm")
}

// readPostfixCorpus concatenates the *.log files of dir (each ending in a
// newline) in name order.
func readPostfixCorpus(dir string) ([]byte, []string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no *.log files in %s (set -corpus or MAILMON_CORPORA)", dir)
	}
	sort.Strings(files)
	var buf bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		buf.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), files, nil
}

// countLogLines counts the lines of data and, among them, the Postfix
// delivery-status lines ("QID: to=<..>, ... status=") and qmgr expiries:
// the lines that must each come out as one record.
func countLogLines(data []byte) (lines, status int) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		lines++
		if bytes.Contains(line, []byte(": to=")) && bytes.Contains(line, []byte(", status=")) ||
			bytes.Contains(line, []byte(", status=expired, returned to sender")) {
			status++
		}
	}
	return lines, status
}

type inspectCounts struct{ deliveries, expiries, rejects int }

// timeInspect runs `mailmon inspect postfix-log input`, reads and counts
// its JSON lines, and returns the process's CPU time (user + system) and
// the wall time from start to exit.
func timeInspect(ctx context.Context, bin, input string) (cpu, wall float64, _ inspectCounts, _ error) {
	cmd := exec.CommandContext(ctx, bin, "inspect", "postfix-log", input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, inspectCounts{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, inspectCounts{}, err
	}
	var c inspectCounts
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		b := sc.Bytes()
		switch {
		case bytes.HasPrefix(b, []byte(`{"event":"delivery"`)):
			c.deliveries++
		case bytes.HasPrefix(b, []byte(`{"event":"expired"`)):
			c.expiries++
		case bytes.HasPrefix(b, []byte(`{"event":"reject"`)):
			c.rejects++
		}
	}
	scanErr := sc.Err()
	if scanErr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	err = cmd.Wait()
	wall = time.Since(start).Seconds()
	if err != nil {
		return 0, 0, c, fmt.Errorf("mailmon inspect postfix-log: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if scanErr != nil {
		return 0, 0, c, fmt.Errorf("reading mailmon's output: %w", scanErr)
	}
	return cpuTime(cmd.ProcessState).Seconds(), wall, c, nil
}

// timePflogsumm runs pflogsumm over input (its report discarded) and
// returns its CPU time (user + system) and wall time.
func timePflogsumm(ctx context.Context, bin, input string) (cpu, wall float64, _ error) {
	cmd := exec.CommandContext(ctx, bin, input)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w: %s", bin, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return cpuTime(cmd.ProcessState).Seconds(), time.Since(start).Seconds(), nil
}
