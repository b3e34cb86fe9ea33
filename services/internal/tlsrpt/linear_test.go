package tlsrpt

import (
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

// TestLinear: Parse's time grows linearly with the document.
func TestLinear(t *testing.T) {
	detail := `{"result-type":"validation-failure","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example","failed-session-count":1},`
	cases := []lineartest.Case{
		{
			Name: "many failure details",
			Build: func(n int) []byte {
				return lineartest.Repeat(`{"organization-name":"o","policies":[{"policy":{"policy-type":"sts","policy-domain":"d.example"},"failure-details":[`,
					detail, `{}]}]}`, n)
			},
			Parse: func(raw []byte) error { _, err := Parse(raw); return err },
		},
		{
			Name:  "junk before the object",
			Build: func(n int) []byte { return lineartest.Repeat("", "junk ", `{"policies":[]}`, n) },
			Parse: func(raw []byte) error { _, err := Parse(raw); return err },
		},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}
