package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sisimaiScript is the baseline: Debian's libsisimai-perl reading the same
// mbox files, every bounce parsed and classified, feedback reports
// included. Sisimai 5 calls it rise, 4.x make; both take delivered => 1 so
// that delivery reports count too. It prints the number of records.
const sisimaiScript = `use Sisimai; my $f = Sisimai->can("rise") ? "rise" : "make"; my $n = 0;` +
	` for my $p (@ARGV) { my $v = Sisimai->$f($p, delivered => 1, vacation => 1) // []; $n += scalar @$v }` +
	` print "$n\n";`

type arfParseOptions struct {
	corpus  string
	passes  int
	keep    bool
	timeout time.Duration
	perl    string
}

type arfParseResult struct {
	Scenario string `json:"scenario"`
	// Messages is the number of messages each side parsed: the corpus
	// (ARF reports and bounces) times passes.
	Messages int `json:"messages"`
	Passes   int `json:"passes"`
	// ARFMessages and BounceMessages split Messages by corpus.
	ARFMessages    int `json:"arf_messages"`
	BounceMessages int `json:"bounce_messages"`
	// OursPerS is Messages over the CPU time (user + system, from the
	// kernel's accounting of the child processes) of `mailmon inspect arf -`
	// and `mailmon inspect bounce -` reading the two mbox files: process
	// start, reading, parsing, classification and JSON output included.
	// CPU time rather than wall time, because on a shared machine the wall
	// time of a one-second burst depends on what else runs; both sides are
	// measured the same way.
	OursPerS float64 `json:"ours_per_s"`
	// BaselinePerS is Messages over the CPU time of one perl process
	// running Sisimai over the same two mbox files.
	BaselinePerS float64 `json:"baseline_per_s"`
	Ratio        float64 `json:"ratio"`
	// OursS and BaselineS are the CPU times; the *_wall_* figures are the
	// same measures by wall-clock time.
	OursS            float64 `json:"ours_s"`
	BaselineS        float64 `json:"baseline_s"`
	OursWallPerS     float64 `json:"ours_wall_per_s"`
	BaselineWallPerS float64 `json:"baseline_wall_per_s"`
	WallRatio        float64 `json:"wall_ratio"`
	// OursStartupS and BaselineStartupS are the CPU seconds of the same
	// processes on no messages (mailmon: package initialisation, paid
	// twice; perl: loading Sisimai), median of 3; ParseRatio compares the
	// throughput with them taken out.
	OursStartupS     float64 `json:"ours_startup_s"`
	BaselineStartupS float64 `json:"baseline_startup_s"`
	ParseRatio       float64 `json:"parse_ratio"`
	// OursRecords: ARF objects plus failed bounce recipients printed;
	// BaselineRecords: Sisimai records (bounced recipients, feedback,
	// vacation and delivery records).
	OursRecords     int `json:"ours_records"`
	BaselineRecords int `json:"baseline_records"`
	// Errors counts failures: a side that exited non-zero or printed a
	// line that is not JSON, and ARF reports that printed no object.
	Errors         int    `json:"errors"`
	SisimaiVersion string `json:"sisimai_version,omitempty"`
	Error          string `json:"error,omitempty"`
	KeptDir        string `json:"kept_dir,omitempty"`
}

func parseARFParseFlags(args []string, stderr io.Writer) (arfParseOptions, error) {
	fs := flag.NewFlagSet("loadtest arf-parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o arfParseOptions
	fs.StringVar(&o.corpus, "corpus", "", "corpora directory holding arf/ and bounces/ (default $MAILMON_CORPORA, else ../shared/corpora from the module root)")
	fs.IntVar(&o.passes, "passes", 10, "times the corpus is repeated in each mbox, so process start-up is amortised")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (mbox files, outputs)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.StringVar(&o.perl, "perl", "perl", "perl interpreter with Sisimai (libsisimai-perl)")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	if o.passes < 1 {
		return o, errors.New("-passes must be at least 1")
	}
	return o, nil
}

// runARFParse measures how fast mailmon parses and classifies the ARF and
// bounce corpus, against Sisimai on the same files in the same run.
func runARFParse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseARFParseFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "arf-parse", err)
	}
	res := arfParseResult{Scenario: "arf-parse", Passes: opts.passes}
	if err := arfParse(ctx, opts, &res, stderr); err != nil {
		res.Error = err.Error()
		res.Errors++
	}
	// A failed run counts in Errors, so Errors alone decides the status.
	return printResult(stdout, stderr, "arf-parse", res, res.Errors == 0)
}

func arfParse(ctx context.Context, opts arfParseOptions, res *arfParseResult, log io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	corpus := opts.corpus
	if corpus == "" {
		corpus = corporaDir(root)
	}
	dir, endDir, err := tempRunDir("mailmon-arfparse-", opts.keep, &res.KeptDir, log)
	if err != nil {
		return err
	}
	defer endDir(&err)

	arfFiles, err := emlFiles(filepath.Join(corpus, "arf"))
	if err != nil {
		return err
	}
	bounceFiles, err := emlFiles(filepath.Join(corpus, "bounces"))
	if err != nil {
		return err
	}
	arfMbox, bounceMbox := filepath.Join(dir, "arf.mbox"), filepath.Join(dir, "bounces.mbox")
	if err := writeMbox(arfMbox, arfFiles, opts.passes); err != nil {
		return err
	}
	if err := writeMbox(bounceMbox, bounceFiles, opts.passes); err != nil {
		return err
	}
	res.ARFMessages = len(arfFiles) * opts.passes
	res.BounceMessages = len(bounceFiles) * opts.passes
	res.Messages = res.ARFMessages + res.BounceMessages
	progress(log, "corpus: %d ARF reports and %d bounces, %d passes: %d messages", len(arfFiles), len(bounceFiles), opts.passes, res.Messages)

	progress(log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, opts.perl, "-MSisimai", "-e", "print $Sisimai::VERSION").Output(); err == nil {
		res.SisimaiVersion = strings.TrimSpace(string(out))
	} else {
		return fmt.Errorf("perl with Sisimai not available (install libsisimai-perl: go tool task deps): %w", err)
	}

	// Warm the page cache and the binaries once, then measure.
	_, _, _, _ = runOurs(ctx, bin, "arf", arfMbox)
	progress(log, "ours: mailmon inspect arf/bounce over the mbox files")
	start := time.Now()
	arfOut, arfBad, cpuA, errA := runOurs(ctx, bin, "arf", arfMbox)
	bounceOut, bounceBad, cpuB, errB := runOurs(ctx, bin, "bounce", bounceMbox)
	oursWall := time.Since(start)
	ours := cpuA + cpuB
	if errA != nil || errB != nil {
		return errors.Join(errA, errB)
	}
	res.Errors += arfBad + bounceBad
	if arfOut != res.ARFMessages {
		res.Errors += abs(res.ARFMessages - arfOut)
	}
	res.OursRecords = arfOut + bounceOut
	res.OursS = round(ours.Seconds(), 3)
	res.OursPerS = round(float64(res.Messages)/ours.Seconds(), 1)
	res.OursWallPerS = round(float64(res.Messages)/oursWall.Seconds(), 1)
	progress(log, "ours: %d messages in %.3f s CPU (%.3f s wall) = %.0f/s (%d records)", res.Messages, ours.Seconds(), oursWall.Seconds(), res.OursPerS, res.OursRecords)

	progress(log, "baseline: Sisimai %s over the same mbox files", res.SisimaiVersion)
	start = time.Now()
	cmd := exec.CommandContext(ctx, opts.perl, "-e", sisimaiScript, arfMbox, bounceMbox)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	baseWall := time.Since(start)
	if err != nil {
		return fmt.Errorf("sisimai: %w: %s", err, tail(errBuf.String(), 2000))
	}
	base := cpuTime(cmd.ProcessState)
	res.BaselineRecords, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	res.BaselineS = round(base.Seconds(), 3)
	res.BaselinePerS = round(float64(res.Messages)/base.Seconds(), 1)
	res.BaselineWallPerS = round(float64(res.Messages)/baseWall.Seconds(), 1)
	progress(log, "baseline: %d messages in %.3f s CPU (%.3f s wall) = %.0f/s (%d records)", res.Messages, base.Seconds(), baseWall.Seconds(), res.BaselinePerS, res.BaselineRecords)
	if res.BaselinePerS > 0 {
		res.Ratio = round(res.OursPerS/res.BaselinePerS, 2)
	}
	if res.BaselineWallPerS > 0 {
		res.WallRatio = round(res.OursWallPerS/res.BaselineWallPerS, 2)
	}

	empty := filepath.Join(dir, "empty.mbox")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return err
	}
	oursStart := medianCPU(3, func() (time.Duration, error) {
		_, _, cpu, err := runOurs(ctx, bin, "bounce", empty)
		return 2 * cpu, err // two processes
	})
	baseStart := medianCPU(3, func() (time.Duration, error) {
		c := exec.CommandContext(ctx, opts.perl, "-e", sisimaiScript, empty)
		if err := c.Run(); err != nil {
			return 0, err
		}
		return cpuTime(c.ProcessState), nil
	})
	res.OursStartupS, res.BaselineStartupS = round(oursStart.Seconds(), 3), round(baseStart.Seconds(), 3)
	if o, b := ours-oursStart, base-baseStart; o > 0 && b > 0 {
		res.ParseRatio = round((float64(res.Messages)/o.Seconds())/(float64(res.Messages)/b.Seconds()), 2)
	}
	progress(log, "start-up CPU: ours %.3f s, baseline %.3f s; ratio without it %.2f", oursStart.Seconds(), baseStart.Seconds(), res.ParseRatio)
	return nil
}

// medianCPU runs f n times and returns the median duration (0 when a run
// fails).
func medianCPU(n int, f func() (time.Duration, error)) time.Duration {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		d, err := f()
		if err != nil {
			return 0
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// runOurs runs `mailmon inspect KIND -` on an mbox, counts the JSON objects
// it prints and the lines that are not JSON, and returns its CPU time.
func runOurs(ctx context.Context, bin, kind, mbox string) (records, bad int, cpu time.Duration, err error) {
	in, err := os.Open(mbox)
	if err != nil {
		return 0, 0, 0, err
	}
	defer in.Close()
	cmd := exec.CommandContext(ctx, bin, "inspect", kind, "-")
	cmd.Stdin = in
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if json.Valid(sc.Bytes()) {
			records++
		} else {
			bad++
		}
	}
	if err := cmd.Wait(); err != nil {
		return records, bad, 0, fmt.Errorf("mailmon inspect %s: %w: %s", kind, err, tail(errBuf.String(), 2000))
	}
	cpu = cpuTime(cmd.ProcessState)
	return records, bad, cpu, sc.Err()
}

// emlFiles lists the .eml files of a corpus directory, sorted.
func emlFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .eml files in %s (is ../shared/corpora there? use -corpus)", dir)
	}
	sort.Strings(files)
	return files, nil
}

// writeMbox writes the messages passes times into one mboxrd file: each
// message after a "From " line, its own leading "From " line dropped,
// body lines that start with "From " (or ">From ") quoted with one more
// ">", CRLF kept as it is.
func writeMbox(path string, files []string, passes int) error {
	var buf bytes.Buffer
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(raw, []byte("From ")) {
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[i+1:]
			}
		}
		buf.WriteString("From MAILER-DAEMON Thu Apr 29 23:34:45 2021\n")
		for len(raw) > 0 {
			line := raw
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i+1], raw[i+1:]
			} else {
				raw = nil
			}
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				buf.WriteByte('>')
			}
			buf.Write(line)
		}
		if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
	}
	return writeRepeated(path, buf.Bytes(), passes)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
