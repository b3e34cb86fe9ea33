package reportfile_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/corpustest"
	"github.com/mailmon/mailmon/services/internal/dmarc"
	"github.com/mailmon/mailmon/services/internal/reportfile"
	"github.com/mailmon/mailmon/services/internal/tlsrpt"
)

// keyLine is one line of dmarc/expected.jsonl (see the corpora README).
type keyLine struct {
	File           string         `json:"file"`
	Kind           string         `json:"kind"`
	Valid          bool           `json:"valid"`
	NeedsTolerance bool           `json:"needs_tolerance"`
	Report         map[string]any `json:"report"`
	Rows           []map[string]any
	Error          string `json:"error"`
}

// TestCorpus reads every file of the DMARC and TLS report corpus through
// Extract and the parser of its kind, and compares the report fields and
// the rows (as a multiset) with the answer key. A file the key marks
// invalid must be refused with a reason. Run with -v for one line per
// file.
func TestCorpus(t *testing.T) {
	dir := corpustest.Path(t, "dmarc")
	f, err := os.Open(filepath.Join(dir, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	files, agreed := 0, 0
	for sc.Scan() {
		var k keyLine
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			t.Fatalf("expected.jsonl: %v", err)
		}
		files++
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k.File)))
		if err != nil {
			t.Fatal(err)
		}
		problems, refusal := checkFile(k, raw)
		// A report mail passes the fbl-ingester's cheap check.
		if strings.HasSuffix(k.File, ".eml") && k.Valid && !reportfile.LooksLikeReport(raw) {
			problems = append(problems, "LooksLikeReport is false for a report mail")
		}
		if len(problems) == 0 {
			agreed++
			switch {
			case !k.Valid:
				t.Logf("ok   %s (%s, refused as the key expects: %s)", k.File, k.Kind, refusal)
			case k.NeedsTolerance:
				t.Logf("ok   %s (%s, %d rows, damaged and read)", k.File, k.Kind, len(k.Rows))
			default:
				t.Logf("ok   %s (%s, %d rows)", k.File, k.Kind, len(k.Rows))
			}
			continue
		}
		for _, p := range problems {
			t.Errorf("FAIL %s: %s", k.File, p)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("expected.jsonl lists no files")
	}
	t.Logf("corpus: %d of %d files agree with the key (%.0f%%)", agreed, files, 100*float64(agreed)/float64(files))
}

// checkFile returns how the file's reading differs from its key line, and
// the error that refused it, if one did.
func checkFile(k keyLine, raw []byte) (problems []string, refusal error) {
	docs, err := reportfile.Extract(raw, reportfile.DefaultLimits())
	var rep map[string]any
	var rows []map[string]any
	if err == nil {
		if len(docs) != 1 {
			return []string{fmt.Sprintf("%d documents, want 1", len(docs))}, nil
		}
		if string(docs[0].Format) != k.Kind {
			return []string{fmt.Sprintf("format %q, want %q", docs[0].Format, k.Kind)}, nil
		}
		switch docs[0].Format {
		case reportfile.FormatDMARC:
			var r *dmarc.Report
			if r, err = dmarc.Parse(docs[0].Data); err == nil {
				rep, rows = dmarcKey(r)
			}
		case reportfile.FormatTLSRPT:
			var r *tlsrpt.Report
			if r, err = tlsrpt.Parse(docs[0].Data); err == nil {
				rep, rows = tlsrptKey(r)
			}
		}
	}
	if !k.Valid {
		if err == nil {
			return []string{"read, but the key says it is not a readable report"}, nil
		}
		if strings.TrimSpace(err.Error()) == "" {
			return []string{"refused without a reason"}, err
		}
		return nil, err
	}
	if err != nil {
		return []string{fmt.Sprintf("refused: %v", err)}, err
	}
	for name, want := range k.Report {
		if got := rep[name]; fmt.Sprint(got) != fmt.Sprint(want) {
			problems = append(problems, fmt.Sprintf("report %s = %q, want %q", name, fmt.Sprint(got), fmt.Sprint(want)))
		}
	}
	got, want := rowKeys(rows), rowKeys(k.Rows)
	if !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("rows differ:\n got  %d: %s\n want %d: %s", len(got), abbrev(got), len(want), abbrev(want)))
	}
	return problems, nil
}

// dmarcKey is a DMARC report in the key's terms.
func dmarcKey(r *dmarc.Report) (map[string]any, []map[string]any) {
	rep := map[string]any{
		"org_name": r.OrgName, "report_id": r.ReportID, "domain": r.Domain, "policy": r.Policy,
		"begin": float64(r.Begin.Unix()), "end": float64(r.End.Unix()),
	}
	var rows []map[string]any
	for _, rec := range r.Records {
		ip := ""
		if rec.SourceIP.IsValid() {
			ip = rec.SourceIP.String()
		}
		rows = append(rows, map[string]any{
			"source_ip": ip, "count": float64(rec.Count), "disposition": rec.Disposition,
			"dkim": rec.DKIM, "spf": rec.SPF, "header_from": rec.HeaderFrom,
		})
	}
	return rep, rows
}

// tlsrptKey is a TLS report in the key's terms.
func tlsrptKey(r *tlsrpt.Report) (map[string]any, []map[string]any) {
	rep := map[string]any{"organization": r.Organization, "report_id": r.ReportID}
	var rows []map[string]any
	for _, p := range r.Policies {
		rows = append(rows, map[string]any{
			"policy_domain": p.Domain, "policy_type": p.Type,
			"success": float64(p.Success), "failure": float64(p.Failure),
		})
	}
	return rep, rows
}

// rowKeys turns rows into sorted canonical strings: equal slices are equal
// multisets.
func rowKeys(rows []map[string]any) []string {
	keys := make([]string, 0, len(rows))
	for _, r := range rows {
		b, err := json.Marshal(r) // map keys are sorted
		if err != nil {
			panic(err)
		}
		keys = append(keys, string(b))
	}
	slices.Sort(keys)
	return keys
}

func abbrev(keys []string) string {
	if len(keys) > 4 {
		return strings.Join(keys[:4], " ") + fmt.Sprintf(" ... (%d more)", len(keys)-4)
	}
	return strings.Join(keys, " ")
}
