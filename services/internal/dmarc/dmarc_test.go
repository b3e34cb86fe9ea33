package dmarc

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reportRFC7489 is a small hand-written report in the RFC 7489 appendix C
// schema, without a namespace.
const reportRFC7489 = `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>Receiver.Example</org_name>
    <email> dmarc@receiver.example </email>
    <report_id>r-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>Sender.Example</domain><adkim>r</adkim><aspf>s</aspf>
    <p>Reject</p><sp>quarantine</sp><pct>50</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.7</source_ip><count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>PASS</dkim><spf>fail</spf>
        <reason><type>forwarded</type><comment>list</comment></reason>
        <reason><type>Local_Policy</type></reason>
      </policy_evaluated>
    </row>
    <identifiers><header_from>Sender.Example</header_from><envelope_from>bounce.sender.example</envelope_from></identifiers>
    <auth_results>
      <dkim><domain>Sender.Example</domain><selector>Sel1</selector><result>pass</result></dkim>
      <dkim><domain>esp.example</domain><result>fail</result></dkim>
      <spf><domain>bounce.sender.example</domain><scope>mfrom</scope><result>softfail</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>2001:db8::25</source_ip><count>3</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>sender.example</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
`

// wantRFC7489 is what Parse makes of reportRFC7489.
var wantRFC7489 = &Report{
	OrgName: "Receiver.Example", Email: "dmarc@receiver.example", ReportID: "r-1",
	Begin: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700086399, 0).UTC(),
	Domain: "sender.example", ADKIM: "r", ASPF: "s", Policy: "reject", SubdomainPolicy: "quarantine", Percent: 50,
	Records: []Record{
		{
			SourceIP: netip.MustParseAddr("192.0.2.7"), Count: 12, Disposition: "none", DKIM: "pass", SPF: "fail",
			OverrideReasons: []string{"forwarded", "local_policy"},
			HeaderFrom:      "sender.example", EnvelopeFrom: "bounce.sender.example",
			DKIMAuth: []DKIMAuth{{Domain: "sender.example", Selector: "Sel1", Result: "pass"}, {Domain: "esp.example", Result: "fail"}},
			SPFAuth:  []SPFAuth{{Domain: "bounce.sender.example", Scope: "mfrom", Result: "softfail"}},
		},
		{
			SourceIP: netip.MustParseAddr("2001:db8::25"), Count: 3, Disposition: "reject", DKIM: "fail", SPF: "fail",
			HeaderFrom: "sender.example",
			SPFAuth:    []SPFAuth{{Domain: "spoof.example", Result: "fail"}},
		},
	},
}

// reportRFC9990 is a small hand-written report in the RFC 9990 schema:
// namespaced, with np and testing, without pct.
const reportRFC9990 = `<?xml version="1.0"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>Mailbox Provider</org_name><email>agg@mbp.example</email>
    <report_id>9990-a</report_id>
    <date_range><begin>1718236800</begin><end>1718323199</end></date_range>
    <generator>gen 1</generator>
  </report_metadata>
  <policy_published>
    <domain>sender.example</domain><p>quarantine</p><sp>none</sp><np>reject</np>
    <testing>y</testing><discovery_method>treewalk</discovery_method>
  </policy_published>
  <record>
    <row><source_ip>198.51.100.9</source_ip><count>4</count>
      <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><envelope_to>rcpt.example</envelope_to><header_from>sender.example</header_from></identifiers>
    <auth_results><dkim><domain>sender.example</domain><selector>s2</selector><result>fail</result></dkim></auth_results>
  </record>
</feedback>`

var wantRFC9990 = &Report{
	OrgName: "Mailbox Provider", Email: "agg@mbp.example", ReportID: "9990-a",
	Begin: time.Unix(1718236800, 0).UTC(), End: time.Unix(1718323199, 0).UTC(),
	Domain: "sender.example", Policy: "quarantine", SubdomainPolicy: "none", NonexistentPolicy: "reject", Testing: "y",
	Percent: 100,
	Records: []Record{{
		SourceIP: netip.MustParseAddr("198.51.100.9"), Count: 4, Disposition: "quarantine", DKIM: "fail", SPF: "fail",
		HeaderFrom: "sender.example", EnvelopeTo: "rcpt.example",
		DKIMAuth: []DKIMAuth{{Domain: "sender.example", Selector: "s2", Result: "fail"}},
	}},
}

func TestParse(t *testing.T) {
	prefixed := strings.NewReplacer("<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">", "<d:feedback xmlns:d=\"urn:ietf:params:xml:ns:dmarc-2.0\">",
		"</feedback>", "</d:feedback>", "<record>", "<d:record>", "</record>", "</d:record>").Replace(reportRFC9990)
	oldNS := strings.Replace(reportRFC7489, "<feedback>", `<feedback xmlns="http://dmarc.org/dmarc-xml/0.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`, 1)
	latin1 := strings.Replace(strings.Replace(reportRFC7489, `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1),
		"<org_name>Receiver.Example</org_name>", "<org_name>R\xe9ceiver.Example</org_name>", 1)
	withLatin1 := *wantRFC7489
	withLatin1.OrgName = "Réceiver.Example"
	badByte := strings.Replace(reportRFC7489, "<org_name>Receiver.Example</org_name>", "<org_name>Receiver\x91</org_name>", 1)
	withBadByte := *wantRFC7489
	withBadByte.OrgName = "Receiver\uFFFD"
	tests := []struct {
		name string
		doc  string
		want *Report
	}{
		{"rfc7489", reportRFC7489, wantRFC7489},
		{"rfc7489 with its draft namespace", oldNS, wantRFC7489},
		{"rfc9990 namespaced", reportRFC9990, wantRFC9990},
		{"rfc9990 with a prefix", prefixed, wantRFC9990},
		{"junk around the document", "\r\n--boundary junk\n" + reportRFC7489 + "\n\x00\x00 trailing junk <not closed", wantRFC7489},
		{"no declaration, junk before the root", "garbage " + reportRFC9990, wantRFC9990},
		{"byte order mark", "\xef\xbb\xbf" + reportRFC7489, wantRFC7489},
		{"declared latin-1", latin1, &withLatin1},
		{"invalid UTF-8 replaced", badByte, &withBadByte},
		{"no records", `<feedback><report_metadata><org_name>x</org_name><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>a.example</domain><p>none</p></policy_published></feedback>`,
			&Report{OrgName: "x", ReportID: "1", Begin: time.Unix(1, 0).UTC(), End: time.Unix(2, 0).UTC(), Domain: "a.example", Policy: "none", Percent: 100, Records: []Record{}}},
		{"a fractional date and an empty record", `<feedback><report_metadata><report_id>2</report_id><date_range><begin> 10.5 </begin><end>20</end></date_range></report_metadata><record><row><source_ip/><count/></row></record><record><row><source_ip>::ffff:192.0.2.5</source_ip><count>3.0</count></row></record></feedback>`,
			&Report{ReportID: "2", Begin: time.Unix(10, 0).UTC(), End: time.Unix(20, 0).UTC(), Percent: 100, Records: []Record{{}, {SourceIP: netip.MustParseAddr("192.0.2.5"), Count: 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	meta := `<report_metadata><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"empty", "", ErrNotXML},
		{"text", "this is not a report", ErrNotXML},
		{"JSON", `{"policies": []}`, ErrNotXML},
		{"broken XML", `<feedback><report_metadata><email><a@b.example></email></report_metadata></feedback>`, ErrNotXML},
		{"unclosed", `<feedback>` + meta, ErrNotXML},
		{"nested too deep", `<feedback>` + meta + strings.Repeat("<x>", MaxDepth) + strings.Repeat("</x>", MaxDepth) + `</feedback>`, ErrNotXML},
		{"another root", `<?xml version="1.0"?><html><body>report</body></html>`, ErrNoFeedback},
		{"no metadata", `<feedback><policy_published><domain>a.example</domain></policy_published></feedback>`, ErrNoMetadata},
		{"no dates", `<feedback><report_metadata><report_id>1</report_id></report_metadata></feedback>`, ErrBadValue},
		{"bad date", `<feedback><report_metadata><date_range><begin>yesterday</begin><end>2</end></date_range></report_metadata></feedback>`, ErrBadValue},
		{"bad count", `<feedback>` + meta + `<record><row><source_ip>192.0.2.1</source_ip><count>-1</count></row></record></feedback>`, ErrBadValue},
		{"fractional count", `<feedback>` + meta + `<record><row><source_ip>192.0.2.1</source_ip><count>1.5</count></row></record></feedback>`, ErrBadValue},
		{"bad source IP", `<feedback>` + meta + `<record><row><source_ip>192.0.2.300</source_ip><count>1</count></row></record></feedback>`, ErrBadValue},
		{"bad pct", `<feedback>` + meta + `<policy_published><pct>150</pct></policy_published></feedback>`, ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.doc))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if r != nil {
				t.Errorf("a report with the error: %+v", r)
			}
		})
	}
}
