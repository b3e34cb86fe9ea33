package lab

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/dmarc"
	"github.com/mailmon/mailmon/services/internal/reportfile"
)

// The lab's reports read back as the fbl-ingester reads them: one report
// per customer domain gmail.lab received mail under, with the stranger's
// failing rows under shop.lab.
func TestDMARCTallyReports(t *testing.T) {
	begin := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	d := newDMARCTally(begin)
	for range 3 {
		d.add(labCustomers[0], "user1@gmail.lab") // shop, 127.0.0.2
	}
	d.add(labCustomers[2], "user2@gmail.lab") // bulkdeals, 127.0.0.3
	d.add(labCustomers[1], "user3@yahoo.lab") // not seen by gmail.lab
	mails := d.reports(begin.Add(time.Minute - time.Second))
	if len(mails) != 2 {
		t.Fatalf("%d reports, want 2 (shop.lab and bulkdeals.lab)", len(mails))
	}
	want := map[string]map[string]string{
		"shop.lab":      {ipOut2: "3 pass", dmarcSpoofIP: "2 fail"},
		"bulkdeals.lab": {ipOut3: "1 pass"},
	}
	for _, m := range mails {
		if !reportfile.LooksLikeReport(m) {
			t.Error("a lab report mail does not look like a report")
		}
		docs, err := reportfile.Extract(m, reportfile.DefaultLimits())
		if err != nil || len(docs) != 1 || docs[0].Format != reportfile.FormatDMARC {
			t.Fatalf("extract: %v, %d documents", err, len(docs))
		}
		rep, err := dmarc.Parse(docs[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OrgName != dmarcReporter || !rep.Begin.Equal(begin) {
			t.Errorf("report by %q from %v", rep.OrgName, rep.Begin)
		}
		rows := map[string]string{}
		for _, r := range rep.Records {
			if r.HeaderFrom != rep.Domain {
				t.Errorf("%s: a record under %s", rep.Domain, r.HeaderFrom)
			}
			rows[r.SourceIP.String()] = fmt.Sprintf("%d %s", r.Count, r.DKIM)
		}
		if fmt.Sprint(rows) != fmt.Sprint(want[rep.Domain]) {
			t.Errorf("%s: rows %v, want %v", rep.Domain, rows, want[rep.Domain])
		}
	}
}
