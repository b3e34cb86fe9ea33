package bounceclass

import (
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

// TestClassifyLinear feeds ~100 KB and ~1 MB rejection texts of hostile
// shapes to ParseReply and Classify (as `mailmon inspect rejection` and
// the log and bounce parsers do) and fails when the larger takes more than
// 15 times as long.
func TestClassifyLinear(t *testing.T) {
	classify := func(raw []byte) error {
		code, status, text := ParseReply(lineartest.String(raw))
		Classify(Input{Text: text, ReplyCode: code, Status: status})
		Classify(Input{Text: lineartest.String(raw)})
		return nil
	}
	for _, c := range []struct{ name, head, unit string }{
		{"long reply", "smtp; 550 5.7.1 ", "message rejected because of its content "},
		{"continuation prefixes", "550-5.7.26 ", "550-5.7.26 Gmail requires all senders to authenticate "},
		{"codes without text", "", "5.5.5 550 4.4 "},
		{"dotted digits", "x ", "5.1.1.2.3.4.5.6.7.8."},
		{"pattern prefixes", "", "blocked usin spamha mailbox ful user unknow "},
		{"white space", "550 ", " \t\r\n\v\f"},
		{"typographic apostrophes", "550 ", "don\u2019t \u2018x\u2019 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			lineartest.Run(t, lineartest.Case{
				Name:  c.name,
				Build: func(size int) []byte { return lineartest.Repeat(c.head, c.unit, "", size) },
				Parse: classify,
			})
		})
	}
}
