package reportfile

import (
	"errors"
	"testing"
)

// fuzzLimits are small enough that fuzzed inputs run into them.
var fuzzLimits = Limits{MaxInput: 1 << 20, MaxDocument: 64 << 10, MaxTotal: 96 << 10, MaxRatio: 50, MaxDocuments: 4}

// FuzzExtract feeds arbitrary bytes to Extract and LooksLikeReport.
// Whatever the input: no panic; an error comes without documents and a
// success with at least one; every document is of a known format, within
// MaxDocument, and the documents together within MaxTotal.
func FuzzExtract(f *testing.F) {
	f.Add([]byte(xmlReport))
	f.Add([]byte(xmlReportNS))
	f.Add([]byte(jsonReport))
	f.Add(gz(f, xmlReport))
	f.Add(append(gz(f, xmlReport), "trailing"...))
	f.Add(zipOf(f, "a.xml", xmlReport, "b.json", jsonReport))
	f.Add(zipOf(f, "a.xml.gz", string(gz(f, xmlReport))))
	f.Add(gz(f, string(zipOf(f, "b.xml.gz", string(gz(f, xmlReport))))))
	f.Add(mailWith("application/gzip", "r.xml.gz", gz(f, xmlReport)))
	f.Add(mailWith("application/tlsrpt+json", "", []byte(jsonReport)))
	f.Add(mailWith("application/zip", "r.zip", zipOf(f, "r.xml", xmlReport)))
	f.Add([]byte("From: a@b.example\nContent-Type: multipart/report; report-type=tlsrpt; boundary=x\n\n--x\nContent-Type: text/xml\n\n<feedback/>\n--x--\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		docs, err := Extract(raw, fuzzLimits)
		_ = LooksLikeReport(raw)
		if err != nil {
			if docs != nil {
				t.Fatalf("documents with the error %v", err)
			}
			if errors.Is(err, ErrLimit) && errors.Is(err, ErrNoReport) {
				t.Fatalf("both a limit and no report: %v", err)
			}
			return
		}
		if len(docs) == 0 || len(docs) > fuzzLimits.MaxDocuments {
			t.Fatalf("%d documents", len(docs))
		}
		var total int64
		for _, d := range docs {
			if d.Format != FormatDMARC && d.Format != FormatTLSRPT {
				t.Fatalf("format %q", d.Format)
			}
			if Detect(d.Data) != d.Format {
				t.Fatalf("format %q, but Detect says %q", d.Format, Detect(d.Data))
			}
			if int64(len(d.Data)) > max(fuzzLimits.MaxDocument, int64(len(raw))) {
				t.Fatalf("a document of %d bytes", len(d.Data))
			}
			total += int64(len(d.Data))
		}
		if total > fuzzLimits.MaxTotal+int64(len(raw)) {
			t.Fatalf("%d bytes of documents", total)
		}
	})
}
