package dmarc

import (
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

// TestLinear: Parse's time grows linearly with the document, for the
// shapes that make it work hardest.
func TestLinear(t *testing.T) {
	record := `<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>` +
		`<identifiers><header_from>Sender.Example</header_from></identifiers><auth_results><dkim><domain>sender.example</domain><result>pass</result></dkim></auth_results></record>`
	head := `<?xml version="1.0"?><feedback><report_metadata><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`
	ok := func(raw []byte) error { _, err := Parse(raw); return err }
	refused := func(t testing.TB, _ int, err error) {
		if err == nil {
			t.Fatal("parsed")
		}
	}
	cases := []lineartest.Case{
		{Name: "many records", Build: func(n int) []byte { return lineartest.Repeat(head, record, "</feedback>", n) }, Parse: ok},
		{Name: "many records with invalid UTF-8", Build: func(n int) []byte { return lineartest.Repeat(head, record+"\xff\xfe", "</feedback>", n) }, Parse: ok},
		{Name: "many end tags after the document", Build: func(n int) []byte { return lineartest.Repeat(head+"</feedback>", "</feedback>x", "", n) }, Parse: ok},
		{Name: "many start tags before the document", Build: func(n int) []byte { return lineartest.Repeat("", "<feedbac <x:feedbac ", head+"</feedback>", n) }, Parse: ok},
		{Name: "many prefixed names before the document", Build: func(n int) []byte {
			return lineartest.Repeat("", "abc:feedback:feedback/feedback ", head+"</feedback>", n)
		}, Parse: ok},
		{Name: "many unclosed end tags after the document", Build: func(n int) []byte { return lineartest.Repeat(head+"</feedback>", "</x:feedback feedback", "", n) }, Parse: ok},
		{Name: "deeply nested unknown elements", Build: func(n int) []byte { return lineartest.Repeat(head, "<x>", "", n) }, Parse: ok, Check: refused},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}
