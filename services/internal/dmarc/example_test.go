package dmarc_test

import (
	"fmt"

	"github.com/mailmon/mailmon/services/internal/dmarc"
)

func ExampleParse() {
	doc := []byte(`<?xml version="1.0"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <report_metadata><org_name>receiver.example</org_name><report_id>r-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
  <policy_published><domain>sender.example</domain><p>reject</p><np>reject</np></policy_published>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>4</count>
      <policy_evaluated><disposition>none</disposition><dkim>Pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>sender.example</header_from></identifiers>
    <auth_results><dkim><domain>sender.example</domain><selector>s1</selector><result>pass</result></dkim></auth_results>
  </record>
</feedback>`)
	rep, err := dmarc.Parse(doc)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.OrgName, rep.ReportID, rep.Begin.Format("2006-01-02"), rep.Domain, rep.Policy, rep.Percent)
	for _, r := range rep.Records {
		fmt.Println(r.SourceIP, r.Count, r.Disposition, r.DKIM, r.SPF, r.HeaderFrom, r.DKIMAuth)
	}
	// Output:
	// receiver.example r-1 2023-11-14 sender.example reject 100
	// 192.0.2.10 4 none pass fail sender.example [{sender.example s1 pass}]
}
