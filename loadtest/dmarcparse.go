package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

type dmarcParseOptions struct {
	corpus  string
	passes  int
	keep    bool
	timeout time.Duration
}

type dmarcParseResult struct {
	Scenario string `json:"scenario"`
	// Reports is the number of reports each side read: the valid files of
	// the DMARC corpus (aggregate and TLS reports) times passes.
	Reports int `json:"reports"`
	Passes  int `json:"passes"`
	// DMARCReports and TLSReports split Reports by kind; Rows is the
	// records (DMARC) plus policies (TLS) the answer key lists, times
	// passes, which each side must print or count.
	DMARCReports int `json:"dmarc_reports"`
	TLSReports   int `json:"tls_reports"`
	Rows         int `json:"rows"`
	// OursPerS is Reports over the CPU time (user + system, as the kernel
	// accounts the child processes) of `mailmon inspect dmarc -` and
	// `mailmon inspect tlsrpt -` reading the two mbox files: process
	// start, mbox splitting, MIME, base64, gzip/zip within limits, parsing
	// and JSON output included.
	OursPerS float64 `json:"ours_per_s"`
	// BaselinePerS is Reports over the CPU time of one child process (this
	// program, scenario dmarc-parse-baseline) reading the same mbox files
	// with the standard library only: net/mail, mime/multipart, base64,
	// compress/gzip, archive/zip, then encoding/xml (or encoding/json)
	// into plain structs, no limits, no output.
	BaselinePerS float64 `json:"baseline_per_s"`
	Ratio        float64 `json:"ratio"`
	OursS        float64 `json:"ours_s"`
	BaselineS    float64 `json:"baseline_s"`
	// The *_wall_* figures are the same measures by wall-clock time.
	OursWallPerS     float64 `json:"ours_wall_per_s"`
	BaselineWallPerS float64 `json:"baseline_wall_per_s"`
	WallRatio        float64 `json:"wall_ratio"`
	// OursStartupS and BaselineStartupS are the CPU seconds of the same
	// processes on an empty input, median of 3 (both mailmon processes);
	// ParseRatio compares the throughput with them taken out.
	OursStartupS     float64 `json:"ours_startup_s"`
	BaselineStartupS float64 `json:"baseline_startup_s"`
	ParseRatio       float64 `json:"parse_ratio"`
	// OursRows and BaselineRows are the rows each side printed or counted.
	OursRows     int `json:"ours_rows"`
	BaselineRows int `json:"baseline_rows"`
	// Errors counts failures: a side that exited non-zero, lines that are
	// not JSON, and rows missing or extra against the key.
	Errors  int    `json:"errors"`
	Error   string `json:"error,omitempty"`
	KeptDir string `json:"kept_dir,omitempty"`
}

func parseDMARCParseFlags(args []string, stderr io.Writer) (dmarcParseOptions, error) {
	fs := flag.NewFlagSet("loadtest dmarc-parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dmarcParseOptions
	fs.StringVar(&o.corpus, "corpus", "", "corpora directory holding dmarc/ (default $MAILMON_CORPORA, else ../shared/corpora from the module root)")
	fs.IntVar(&o.passes, "passes", 20, "times the corpus is repeated in each mbox, so process start-up is amortised (mailmon inspect reads at most 64 MiB: keep passes x 1.3 MB under it)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (mbox files)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	if o.passes < 1 {
		return o, errors.New("-passes must be at least 1")
	}
	return o, nil
}

// runDMARCParse measures how fast mailmon unwraps and parses the DMARC
// and TLS report corpus, against a standard-library baseline on the same
// files in the same run.
func runDMARCParse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseDMARCParseFlags(args, stderr)
	if err != nil {
		return flagExitCode(stderr, "dmarc-parse", err)
	}
	res := dmarcParseResult{Scenario: "dmarc-parse", Passes: opts.passes}
	if err := dmarcParse(ctx, opts, &res, stderr); err != nil {
		res.Error = err.Error()
		res.Errors++
	}
	return printResult(stdout, stderr, "dmarc-parse", res, res.Errors == 0)
}

// dmarcKeyLine is what the scenario needs of a line of
// dmarc/expected.jsonl.
type dmarcKeyLine struct {
	File  string            `json:"file"`
	Kind  string            `json:"kind"`
	Valid bool              `json:"valid"`
	Rows  []json.RawMessage `json:"rows"`
}

func dmarcParse(ctx context.Context, opts dmarcParseOptions, res *dmarcParseResult, log io.Writer) (err error) {
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
	dir, endDir, err := tempRunDir("mailmon-dmarcparse-", opts.keep, &res.KeptDir, log)
	if err != nil {
		return err
	}
	defer endDir(&err)

	key, err := readDMARCKey(filepath.Join(corpus, "dmarc", "expected.jsonl"))
	if err != nil {
		return fmt.Errorf("%w (is ../shared/corpora there? use -corpus)", err)
	}
	// Every valid file of the key, as a mail: .eml files as they are, the
	// others attached the way reporters send them.
	var aggMails, tlsMails []string
	aggRows, tlsRows := 0, 0
	for i, k := range key {
		if !k.Valid {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(corpus, "dmarc", filepath.FromSlash(k.File)))
		if err != nil {
			return err
		}
		m := raw
		if !strings.HasSuffix(k.File, ".eml") {
			m = reportMail(filepath.Base(k.File), raw)
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d.eml", i))
		if err := os.WriteFile(path, m, 0o644); err != nil {
			return err
		}
		switch k.Kind {
		case "dmarc":
			aggMails = append(aggMails, path)
			aggRows += len(k.Rows)
		case "tlsrpt":
			tlsMails = append(tlsMails, path)
			tlsRows += len(k.Rows)
		}
	}
	if len(aggMails) == 0 || len(tlsMails) == 0 {
		return fmt.Errorf("the key lists %d valid DMARC and %d TLS reports; want some of each", len(aggMails), len(tlsMails))
	}
	aggMbox, tlsMbox := filepath.Join(dir, "dmarc.mbox"), filepath.Join(dir, "tlsrpt.mbox")
	if err := writeMbox(aggMbox, aggMails, opts.passes); err != nil {
		return err
	}
	if err := writeMbox(tlsMbox, tlsMails, opts.passes); err != nil {
		return err
	}
	res.DMARCReports, res.TLSReports = len(aggMails)*opts.passes, len(tlsMails)*opts.passes
	res.Reports = res.DMARCReports + res.TLSReports
	res.Rows = (aggRows + tlsRows) * opts.passes
	progress(log, "corpus: %d DMARC and %d TLS reports (%d rows), %d passes: %d reports", len(aggMails), len(tlsMails), aggRows+tlsRows, opts.passes, res.Reports)

	progress(log, "building mailmon")
	bin, err := buildMailmon(ctx, root, dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// Warm the page cache and the binaries once, then measure.
	_, _, _, _ = runOurs(ctx, bin, "dmarc", aggMbox)
	_, _, _ = runDMARCBaseline(ctx, self, aggMbox, tlsMbox)
	progress(log, "ours: mailmon inspect dmarc/tlsrpt over the mbox files")
	start := time.Now()
	aggOut, aggBad, cpuA, errA := runOurs(ctx, bin, "dmarc", aggMbox)
	tlsOut, tlsBad, cpuT, errT := runOurs(ctx, bin, "tlsrpt", tlsMbox)
	oursWall := time.Since(start)
	if errA != nil || errT != nil {
		return errors.Join(errA, errT)
	}
	ours := cpuA + cpuT
	res.OursRows = aggOut + tlsOut
	res.Errors += aggBad + tlsBad + abs(res.Rows-res.OursRows)
	res.OursS = round(ours.Seconds(), 3)
	res.OursPerS = round(float64(res.Reports)/ours.Seconds(), 1)
	res.OursWallPerS = round(float64(res.Reports)/oursWall.Seconds(), 1)
	progress(log, "ours: %d reports in %.3f s CPU (%.3f s wall) = %.0f/s (%d rows)", res.Reports, ours.Seconds(), oursWall.Seconds(), res.OursPerS, res.OursRows)

	progress(log, "baseline: standard library unwrapping and decoding over the same mbox files")
	start = time.Now()
	baseRows, base, err := runDMARCBaseline(ctx, self, aggMbox, tlsMbox)
	baseWall := time.Since(start)
	if err != nil {
		return err
	}
	res.BaselineRows = baseRows
	res.Errors += abs(res.Rows - res.BaselineRows)
	res.BaselineS = round(base.Seconds(), 3)
	res.BaselinePerS = round(float64(res.Reports)/base.Seconds(), 1)
	res.BaselineWallPerS = round(float64(res.Reports)/baseWall.Seconds(), 1)
	progress(log, "baseline: %d reports in %.3f s CPU (%.3f s wall) = %.0f/s (%d rows)", res.Reports, base.Seconds(), baseWall.Seconds(), res.BaselinePerS, res.BaselineRows)
	if res.BaselinePerS > 0 {
		res.Ratio = round(res.OursPerS/res.BaselinePerS, 2)
	}
	if res.BaselineWallPerS > 0 {
		res.WallRatio = round(res.OursWallPerS/res.BaselineWallPerS, 2)
	}

	// Start-up: an empty input (mailmon refuses it, after the same start).
	empty := filepath.Join(dir, "empty.mbox")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return err
	}
	oursStart := medianCPU(3, func() (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, "inspect", "dmarc", empty)
		_ = cmd.Run() // exits 1: no report
		if cmd.ProcessState == nil {
			return 0, errors.New("mailmon did not run")
		}
		return 2 * cpuTime(cmd.ProcessState), nil // two processes
	})
	baseStart := medianCPU(3, func() (time.Duration, error) {
		_, cpu, err := runDMARCBaseline(ctx, self, empty)
		return cpu, err
	})
	res.OursStartupS, res.BaselineStartupS = round(oursStart.Seconds(), 3), round(baseStart.Seconds(), 3)
	if o, b := ours-oursStart, base-baseStart; o > 0 && b > 0 {
		res.ParseRatio = round(b.Seconds()/o.Seconds(), 2)
	}
	progress(log, "start-up CPU: ours %.3f s, baseline %.3f s; ratio without it %.2f", oursStart.Seconds(), baseStart.Seconds(), res.ParseRatio)
	return nil
}

func readDMARCKey(path string) ([]dmarcKeyLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var key []dmarcKeyLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var k dmarcKeyLine
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		key = append(key, k)
	}
	return key, sc.Err()
}

// reportMail wraps a report file as a receiver mails it: a multipart with
// a text part and the file attached in base64, with the media type its
// name says.
func reportMail(name string, data []byte) []byte {
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(name, ".json.gz"):
		ct = "application/tlsrpt+gzip"
	case strings.HasSuffix(name, ".json"):
		ct = "application/tlsrpt+json"
	case strings.HasSuffix(name, ".gz"):
		ct = "application/gzip"
	case strings.HasSuffix(name, ".zip"):
		ct = "application/zip"
	case strings.HasSuffix(name, ".xml"):
		ct = "text/xml"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reports@receiver.example\nTo: rua@sender.example\nSubject: Report Domain: sender.example Submitter: receiver.example\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=_report\"\n\n"+
		"--=_report\nContent-Type: text/plain; charset=us-ascii\n\nThis is an aggregate report.\n\n"+
		"--=_report\nContent-Type: %s; name=%q\nContent-Disposition: attachment; filename=%q\nContent-Transfer-Encoding: base64\n\n", ct, name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n--=_report--\n")
	return b.Bytes()
}

// runDMARCBaseline runs the baseline in a child process (this program,
// scenario dmarc-parse-baseline) over the mbox files and returns the rows
// it counted and its CPU time.
func runDMARCBaseline(ctx context.Context, self string, mboxes ...string) (rows int, cpu time.Duration, err error) {
	cmd := exec.CommandContext(ctx, self, append([]string{"dmarc-parse-baseline"}, mboxes...)...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("baseline: %w: %s", err, tail(errBuf.String(), 2000))
	}
	if _, err := fmt.Sscan(string(out), &rows); err != nil {
		return 0, 0, fmt.Errorf("baseline printed %q: %w", out, err)
	}
	return rows, cpuTime(cmd.ProcessState), nil
}

// runDMARCParseBaseline is the baseline's process: it reads the mbox files
// named in args and prints the number of rows (DMARC records and TLS
// policies) in them.
func runDMARCParseBaseline(args []string, stdout, stderr io.Writer) int {
	rows := 0
	for _, path := range args {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for i, m := range dmarcBaselineSplitMbox(raw) {
			n, err := dmarcBaselineMessage(m)
			if err != nil {
				fmt.Fprintf(stderr, "%s message %d: %v\n", path, i+1, err)
				return 1
			}
			rows += n
		}
	}
	fmt.Fprintln(stdout, rows)
	return 0
}

// dmarcBaselineSplitMbox splits an mboxrd file the plain way: a message starts
// after each "From " line, ">From " lines lose one '>'.
func dmarcBaselineSplitMbox(raw []byte) [][]byte {
	var msgs [][]byte
	var cur []byte
	in := false
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		if bytes.HasPrefix(line, []byte("From ")) {
			if in {
				msgs = append(msgs, cur)
			}
			cur, in = nil, true
			continue
		}
		if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) && line[0] == '>' {
			line = line[1:]
		}
		cur = append(cur, line...)
	}
	if in {
		msgs = append(msgs, cur)
	}
	return msgs
}

// dmarcBaselineMessage reads one message with net/mail and mime/multipart and
// returns the rows of the reports in its parts.
func dmarcBaselineMessage(m []byte) (int, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m))
	if err != nil {
		return 0, err
	}
	return dmarcBaselinePart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

func dmarcBaselinePart(contentType, cte string, body io.Reader) (int, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		rows := 0
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return rows, nil
			}
			if err != nil {
				return rows, err
			}
			n, err := dmarcBaselinePart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			if err != nil {
				return rows, err
			}
			rows += n
		}
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return 0, err
	}
	return dmarcBaselineDocument(data)
}

// dmarcBaselineDocument opens gzip and zip archives and decodes the reports
// in them.
func dmarcBaselineDocument(data []byte) (int, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if err != nil {
			return 0, err
		}
		return dmarcBaselineDocument(out)
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return 0, err
		}
		rows := 0
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				return rows, err
			}
			out, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return rows, err
			}
			n, err := dmarcBaselineDocument(out)
			if err != nil {
				return rows, err
			}
			rows += n
		}
		return rows, nil
	}
	t := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(t, []byte("{")):
		var r dmarcBaselineTLSReport
		if err := json.Unmarshal(t, &r); err != nil {
			return 0, err
		}
		return len(r.Policies), nil
	case bytes.Contains(t, []byte("<feedback")):
		var r dmarcBaselineFeedback
		if err := xml.Unmarshal(bytes.ToValidUTF8(t, []byte("\uFFFD")), &r); err != nil {
			return 0, err
		}
		return len(r.Records), nil
	}
	return 0, nil
}

// dmarcBaselineFeedback is the aggregate report as plain structs, the same
// fields mailmon reads.
type dmarcBaselineFeedback struct {
	Metadata struct {
		OrgName   string `xml:"org_name"`
		Email     string `xml:"email"`
		ReportID  string `xml:"report_id"`
		DateRange struct {
			Begin int64 `xml:"begin"`
			End   int64 `xml:"end"`
		} `xml:"date_range"`
	} `xml:"report_metadata"`
	Policy struct {
		Domain  string `xml:"domain"`
		ADKIM   string `xml:"adkim"`
		ASPF    string `xml:"aspf"`
		P       string `xml:"p"`
		SP      string `xml:"sp"`
		NP      string `xml:"np"`
		Pct     string `xml:"pct"`
		Testing string `xml:"testing"`
	} `xml:"policy_published"`
	Records []struct {
		Row struct {
			SourceIP string `xml:"source_ip"`
			Count    string `xml:"count"`
			Eval     struct {
				Disposition string `xml:"disposition"`
				DKIM        string `xml:"dkim"`
				SPF         string `xml:"spf"`
				Reasons     []struct {
					Type string `xml:"type"`
				} `xml:"reason"`
			} `xml:"policy_evaluated"`
		} `xml:"row"`
		Identifiers struct {
			HeaderFrom   string `xml:"header_from"`
			EnvelopeFrom string `xml:"envelope_from"`
			EnvelopeTo   string `xml:"envelope_to"`
		} `xml:"identifiers"`
		Auth struct {
			DKIM []struct {
				Domain   string `xml:"domain"`
				Selector string `xml:"selector"`
				Result   string `xml:"result"`
			} `xml:"dkim"`
			SPF []struct {
				Domain string `xml:"domain"`
				Scope  string `xml:"scope"`
				Result string `xml:"result"`
			} `xml:"spf"`
		} `xml:"auth_results"`
	} `xml:"record"`
}

// dmarcBaselineTLSReport is the TLS report as plain structs.
type dmarcBaselineTLSReport struct {
	Organization string `json:"organization-name"`
	DateRange    struct {
		Start time.Time `json:"start-datetime"`
		End   time.Time `json:"end-datetime"`
	} `json:"date-range"`
	ContactInfo string `json:"contact-info"`
	ReportID    string `json:"report-id"`
	Policies    []struct {
		Policy struct {
			Type    string   `json:"policy-type"`
			Strings []string `json:"policy-string"`
			Domain  string   `json:"policy-domain"`
			MXHost  any      `json:"mx-host"`
		} `json:"policy"`
		Summary struct {
			Success uint64 `json:"total-successful-session-count"`
			Failure uint64 `json:"total-failure-session-count"`
		} `json:"summary"`
		FailureDetails []struct {
			ResultType            string `json:"result-type"`
			SendingMTAIP          string `json:"sending-mta-ip"`
			ReceivingMXHostname   string `json:"receiving-mx-hostname"`
			ReceivingMXHelo       string `json:"receiving-mx-helo"`
			ReceivingIP           string `json:"receiving-ip"`
			FailedSessions        uint64 `json:"failed-session-count"`
			AdditionalInformation string `json:"additional-information"`
			FailureReasonCode     string `json:"failure-reason-code"`
		} `json:"failure-details"`
	} `json:"policies"`
}
