package reportfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

// TestLinear: Extract's time grows linearly with its input, for the
// input shapes that make it work hardest.
func TestLinear(t *testing.T) {
	record := `<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>`
	head := `<?xml version="1.0"?><feedback><report_metadata><report_id>1</report_id></report_metadata>`
	cases := []lineartest.Case{
		{
			Name:  "bare XML with many records",
			Build: func(n int) []byte { return lineartest.Repeat(head, record, "</feedback>", n) },
			Parse: extractOne,
		},
		{
			Name:  "gzip of many records",
			Build: func(n int) []byte { return gz(t, string(lineartest.Repeat(head, record, "</feedback>", n))) },
			Parse: extractOne,
		},
		{
			Name: "mail with a large base64 gzip attachment",
			Build: func(n int) []byte {
				return mailWith("application/gzip", "r.xml.gz", gz(t, string(lineartest.Repeat(head, record, "</feedback>", n))))
			},
			Parse: extractOne,
		},
		{
			Name: "mail with many text parts that look like XML",
			Build: func(n int) []byte {
				return lineartest.Repeat("From: a@b.example\nContent-Type: multipart/mixed; boundary=B\n\n",
					"--B\nContent-Type: text/plain\n\n<not feedback> <feedback\n", "--B--\n", n)
			},
			Parse: func(raw []byte) error {
				_, err := Extract(raw, DefaultLimits())
				return err
			},
			Check: func(t testing.TB, _ int, err error) {
				if !errors.Is(err, ErrNoReport) && !errors.Is(err, ErrLimit) {
					t.Fatalf("err = %v", err)
				}
			},
		},
		{
			Name:  "text with '<' and no report",
			Build: func(n int) []byte { return []byte(strings.Repeat("<feedbac <x:feed ", n/17+1)) },
			Parse: func(raw []byte) error { _, err := Extract(raw, DefaultLimits()); return err },
			Check: func(t testing.TB, _ int, err error) {
				if !errors.Is(err, ErrNoReport) {
					t.Fatalf("err = %v", err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}

func extractOne(raw []byte) error {
	docs, err := Extract(raw, DefaultLimits())
	if err == nil && len(docs) != 1 {
		return errors.New("not one document")
	}
	return err
}
