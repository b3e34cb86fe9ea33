package suppression

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReadCSV: ReadCSV never panics, stays within its limits, and what it
// accepts is written and read back unchanged.
func FuzzReadCSV(f *testing.F) {
	f.Add("email,created,reason\ngone@example.org,1793694600,bounce\n")
	f.Add("\ufeffEmail Address,Created At\n\"a,b\"@example.org,2026-11-03 08:30:00\n")
	f.Add(strings.Join(CSVHeader, ",") + "\n,acme,customer_recipient,hard_bounce,2026-11-03T08:30:00Z,,user_unknown,5.1.1,0123456789abcdef0123456789abcdef,example.org,n\n")
	f.Add("recipient,scope,customer\nexample.org,domain,acme\n")
	f.Add("email\n\"unterminated\n")
	f.Add("address,expires_at\nx@y.example,2026-11-03T08:30:00.999999999+14:00\n")
	lim := CSVLimits{MaxRows: 50, MaxBytes: 8 << 10, MaxErrors: 5}
	f.Fuzz(func(t *testing.T, in string) {
		res, err := ReadCSV(strings.NewReader(in), lim)
		if len(res.Rows) > lim.MaxRows || len(res.Errors) > lim.MaxErrors || res.ErrorCount < len(res.Errors) {
			t.Fatalf("over the limits: %d rows, %d errors of %d", len(res.Rows), len(res.Errors), res.ErrorCount)
		}
		if err != nil || len(res.Rows) == 0 {
			return
		}
		var buf bytes.Buffer
		w := NewCSVWriter(&buf)
		for _, r := range res.Rows {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		back, err := ReadCSV(&buf, CSVLimits{MaxRows: lim.MaxRows, MaxBytes: 1 << 20, MaxErrors: lim.MaxErrors})
		if err != nil || back.ErrorCount != 0 || len(back.Rows) != len(res.Rows) {
			t.Fatalf("written rows read back: %d of %d, %v %v\n%s", len(back.Rows), len(res.Rows), err, back.Errors, buf.String())
		}
		for i, r := range res.Rows {
			want := r
			want.Line = back.Rows[i].Line
			if !sameRow(back.Rows[i], want) {
				t.Fatalf("row %d: read back %+v, written %+v", i, back.Rows[i], want)
			}
		}
	})
}
