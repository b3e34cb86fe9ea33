package tlsrpt

import "testing"

// FuzzParseTLSRPT feeds arbitrary bytes to Parse. Whatever the input: no
// panic; an error comes without a report; a report has its policies (never
// nil) and UTC dates.
func FuzzParseTLSRPT(f *testing.F) {
	f.Add([]byte(reportArrays))
	f.Add([]byte(reportStrings))
	f.Add([]byte(`{"policies":[{"policy":{"mx-host":7}}]}`))
	f.Add([]byte(`{"date-range":{"start-datetime":"2025-01-01T00:00:00.5-07:00"},"policies":[{}]}{"trailing":1}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := Parse(doc)
		if err != nil {
			if r != nil {
				t.Fatalf("a report with the error %v", err)
			}
			return
		}
		if r.Policies == nil {
			t.Fatal("nil policies")
		}
		if r.Begin.Location().String() != "UTC" || r.End.Location().String() != "UTC" {
			t.Fatalf("dates not in UTC: %v %v", r.Begin, r.End)
		}
	})
}
