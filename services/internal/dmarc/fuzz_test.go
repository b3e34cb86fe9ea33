package dmarc

import (
	"strings"
	"testing"
)

// FuzzParseDMARC feeds arbitrary bytes to Parse. Whatever the input: no
// panic; an error comes without a report; a report's percent is 0..100,
// its values trimmed, and every record's source IP valid or empty.
func FuzzParseDMARC(f *testing.F) {
	f.Add([]byte(reportRFC7489))
	f.Add([]byte(reportRFC9990))
	f.Add([]byte("junk\xff<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<feedback><report_metadata><date_range><begin>1</begin><end>2</end></date_range></report_metadata><record><row><source_ip>::ffff:192.0.2.1</source_ip></row></record></feedback>trailer"))
	f.Add([]byte("<a:feedback xmlns:a=\"x\"><a:report_metadata/></a:feedback>"))
	f.Add([]byte("<feedback><feedback></feedback>"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := Parse(doc)
		if err != nil {
			if r != nil {
				t.Fatalf("a report with the error %v", err)
			}
			return
		}
		if r.Percent < 0 || r.Percent > 100 {
			t.Fatalf("percent %d", r.Percent)
		}
		if r.OrgName != strings.TrimSpace(r.OrgName) || r.Domain != strings.ToLower(strings.TrimSpace(r.Domain)) {
			t.Fatalf("untrimmed: %q %q", r.OrgName, r.Domain)
		}
		for _, rec := range r.Records {
			if rec.SourceIP.IsValid() && rec.SourceIP.Is4In6() {
				t.Fatalf("an IPv4-mapped address: %v", rec.SourceIP)
			}
			if rec.Disposition != strings.ToLower(rec.Disposition) || rec.HeaderFrom != strings.ToLower(rec.HeaderFrom) {
				t.Fatalf("not lower-cased: %+v", rec)
			}
		}
	})
}
