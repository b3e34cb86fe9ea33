package lab

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The lab's DMARC reporter: gmail.lab, which reports what it saw of the
// mail under our customers' domains (RFC 7489 section 7.2), and a
// stranger sending as shop.lab from outside our networks.
const (
	dmarcReporter     = "gmail.lab"
	dmarcReporterFrom = "noreply-dmarc-support@gmail.lab"
	dmarcSpoofIP      = "198.51.100.77"
	dmarcSpoofDomain  = "shop.lab"
	dmarcSpoofCount   = 2
)

// dmarcTally counts the customer mail our MTA took for gmail.lab over one
// reporting period, per From domain and sending IP.
type dmarcTally struct {
	begin  time.Time
	counts map[string]map[string]uint64 // domain → IP → messages
}

func newDMARCTally(begin time.Time) *dmarcTally {
	return &dmarcTally{begin: begin, counts: map[string]map[string]uint64{}}
}

// add counts one message of c to rcpt, if gmail.lab received it.
func (d *dmarcTally) add(c labCustomer, rcpt string) {
	if !strings.HasSuffix(rcpt, "@"+dmarcReporter) {
		return
	}
	if d.counts[c.domain] == nil {
		d.counts[c.domain] = map[string]uint64{}
	}
	d.counts[c.domain][c.ip]++
}

// reports are the aggregate report mails of the period that ends at end:
// one per customer domain (a report is about one policy domain), each a
// gzip attachment as gmail sends them. The lab's mail is signed and sent
// from our networks, so it passes; the stranger's rows under shop.lab
// fail both.
func (d *dmarcTally) reports(end time.Time) [][]byte {
	var out [][]byte
	for _, c := range labCustomers {
		rows := d.counts[c.domain]
		if len(rows) == 0 && c.domain != dmarcSpoofDomain {
			continue
		}
		var xml bytes.Buffer
		reportID := fmt.Sprintf("lab-%s-%d", c.domain, d.begin.Unix())
		fmt.Fprintf(&xml, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata><org_name>%s</org_name><email>%s</email><report_id>%s</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
  <policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>
`, dmarcReporter, dmarcReporterFrom, reportID, d.begin.Unix(), end.Unix(), c.domain)
		record := func(ip string, n uint64, result string) {
			fmt.Fprintf(&xml, `  <record>
    <row><source_ip>%s</source_ip><count>%d</count>
      <policy_evaluated><disposition>none</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><dkim><domain>%s</domain><selector>%s</selector><result>%s</result></dkim>
      <spf><domain>%s</domain><result>%s</result></spf></auth_results>
  </record>
`, ip, n, result, result, c.domain, c.domain, dkimSelector, result, c.domain, result)
		}
		for _, ip := range slices.Sorted(maps.Keys(rows)) {
			record(ip, rows[ip], "pass")
		}
		if c.domain == dmarcSpoofDomain {
			record(dmarcSpoofIP, dmarcSpoofCount, "fail")
		}
		xml.WriteString("</feedback>\n")
		out = append(out, dmarcMail(c.domain, reportID, d.begin, end, xml.Bytes()))
	}
	return out
}

// dmarcMail wraps a report as gmail mails it: a gzip attachment named
// receiver!domain!begin!end.xml.gz.
func dmarcMail(domain, reportID string, begin, end time.Time, xml []byte) []byte {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(xml) // a bytes.Buffer does not fail
	_ = w.Close()
	name := fmt.Sprintf("%s!%s!%d!%d.xml.gz", dmarcReporter, domain, begin.Unix(), end.Unix())
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: <%s>\r\n", dmarcReporterFrom, fblAddress)
	fmt.Fprintf(&b, "Subject: Report domain: %s Submitter: %s Report-ID: %s\r\n", domain, dmarcReporter, reportID)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", end.Format(time.RFC1123Z), uuid.NewString(), dmarcReporter)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"lab-dmarc\"\r\n\r\n")
	b.WriteString("--lab-dmarc\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is an aggregate report from gmail.lab.\r\n")
	fmt.Fprintf(&b, "--lab-dmarc\r\nContent-Type: application/gzip; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", name, name)
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--lab-dmarc--\r\n")
	return b.Bytes()
}
