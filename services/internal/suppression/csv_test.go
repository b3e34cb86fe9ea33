package suppression

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/lineartest"
)

func TestReadCSVFormats(t *testing.T) {
	created := time.Date(2026, 11, 3, 8, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     []CSVRow
		errLines []int
		err      string
	}{
		{
			name:     "sendgrid: email, reason, created as Unix seconds",
			in:       "email,created,reason,status\ngone@example.org,1793694600,Bounced Address,5.1.1\n",
			errLines: []int{2},
		},
		{
			name: "sendgrid bounces",
			in:   "email,created,reason,status\ngone@example.org,1793694600,bounce,5.1.1\n",
			want: []CSVRow{{Line: 2, Email: "gone@example.org", Created: created, Reason: schemas.SuppressHardBounce, Status: "5.1.1"}},
		},
		{
			name: "mailgun: address, created_at RFC 3339, BOM",
			in:   "\ufeffaddress,created_at,reason\nUser@Example.ORG,2026-11-03T09:30:00+01:00,unsubscribed\n",
			want: []CSVRow{{Line: 2, Email: "User@Example.ORG", Created: created, Reason: schemas.SuppressUnsubscribe}},
		},
		{
			name: "mailchimp: Email Address, datetime, extra columns",
			in:   "Email Address,First Name,Created At,Reason\n\"a,b\"\"c@example.org\",Ann,2026-11-03 08:30:00,Spam Complaint\n",
			want: []CSVRow{{Line: 2, Email: `a,b"c@example.org`, Created: created, Reason: schemas.SuppressComplaint}},
		},
		{
			name: "postmark: recipient only; blank rows skipped",
			in:   "Recipient\r\none@example.org\r\n\r\n,\r\ntwo@example.org\r\n",
			want: []CSVRow{{Line: 2, Email: "one@example.org"}, {Line: 5, Email: "two@example.org"}},
		},
		{
			name: "export format with hashed addresses",
			in: strings.Join(CSVHeader, ",") + "\n" +
				",acme,customer_recipient,hard_bounce,2026-11-03T08:30:00Z,2027-02-01T08:30:00.5Z,user_unknown,5.1.1,0123456789ABCDEF0123456789abcdef,example.org,from ESP\n",
			want: []CSVRow{{Line: 2, Customer: "acme", Scope: schemas.SuppressCustomerRecipient, Reason: schemas.SuppressHardBounce,
				Created: created, Expires: time.Date(2027, 2, 1, 8, 30, 0, 5e8, time.UTC), BounceCategory: "user_unknown", Status: "5.1.1",
				RecipientHash: "0123456789abcdef0123456789abcdef", RecipientDomain: "example.org", Note: "from ESP"}},
		},
		{
			name: "domain scope takes a bare domain; short scope names",
			in:   "email,scope,customer\nExample.ORG,domain,acme\nx@example.net,global,\n",
			want: []CSVRow{{Line: 2, Email: "Example.ORG", Scope: schemas.SuppressCustomerDomain, Customer: "acme"},
				{Line: 3, Email: "x@example.net", Scope: schemas.SuppressGlobalRecipient}},
		},
		{
			name: "bad rows are collected by line, good ones kept",
			in: "email,reason,expires,scope,customer,recipient_hash\n" +
				"not-an-address,,,,,\n" + // 2
				"ok@example.org,,,,,\n" + // 3
				"a@example.org,bored,,,,\n" + // 4
				"b@example.org,,yesterday,,,\n" + // 5
				"c@example.org,,,everyone,,\n" + // 6
				"d@example.org,,,global,acme,\n" + // 7
				",,,,,xyz\n" + // 8
				"e@example.org,,99999999999999,,,\n" + // 9
				"f@exa\x01mple.org,,,,,\n" + // 10
				"g@example.org,\"bad\"quote,,,,\n" + // 11
				"h@example.org\n", // 12
			want:     []CSVRow{{Line: 3, Email: "ok@example.org"}, {Line: 12, Email: "h@example.org"}},
			errLines: []int{2, 4, 5, 6, 7, 8, 9, 10, 11},
		},
		{name: "no header naming the address", in: "name,reason\nann,bounce\n", err: "no header row"},
		{name: "empty", in: "", err: "no header row"},
		{name: "a column twice", in: "email,address\na@b.example,c@d.example\n", err: "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ReadCSV(strings.NewReader(tc.in), DefaultCSVLimits())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != len(tc.want) {
				t.Fatalf("rows %+v, want %+v (errors %v)", res.Rows, tc.want, res.Errors)
			}
			for i := range tc.want {
				if !sameRow(res.Rows[i], tc.want[i]) {
					t.Errorf("row %d: %+v, want %+v", i, res.Rows[i], tc.want[i])
				}
			}
			var lines []int
			for _, e := range res.Errors {
				lines = append(lines, e.Line)
			}
			if res.ErrorCount != len(tc.errLines) || !equalInts(lines, tc.errLines) {
				t.Errorf("error lines %v (count %d), want %v: %v", lines, res.ErrorCount, tc.errLines, res.Errors)
			}
		})
	}
}

func TestReadCSVLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("email\n")
	for i := 0; i < 10; i++ {
		b.WriteString("user@example.org\n")
	}
	in := b.String()
	if _, err := ReadCSV(strings.NewReader(in), CSVLimits{MaxRows: 9, MaxBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "more than 9 rows") {
		t.Errorf("rows over the limit: %v", err)
	}
	if res, err := ReadCSV(strings.NewReader(in), CSVLimits{MaxRows: 10, MaxBytes: int64(len(in))}); err != nil || len(res.Rows) != 10 {
		t.Errorf("at the limits: %d rows, %v", len(res.Rows), err)
	}
	if _, err := ReadCSV(strings.NewReader(in), CSVLimits{MaxRows: 10, MaxBytes: int64(len(in)) - 1}); !errors.Is(err, errCSVTooLarge) {
		t.Errorf("bytes over the limit: %v", err)
	}
	// One endless quoted field stops at the byte limit, not at the end.
	huge := "email\n\"" + strings.Repeat("x", 1<<20)
	if _, err := ReadCSV(strings.NewReader(huge), CSVLimits{MaxRows: 10, MaxBytes: 4096}); !errors.Is(err, errCSVTooLarge) {
		t.Errorf("endless field: %v", err)
	}
	// Errors are all counted, the first MaxErrors kept.
	bad := "email\n" + strings.Repeat("nope\n", 20)
	res, err := ReadCSV(strings.NewReader(bad), CSVLimits{MaxRows: 100, MaxBytes: 1 << 20, MaxErrors: 3})
	if err != nil || res.ErrorCount != 20 || len(res.Errors) != 3 || res.Errors[0].Line != 2 {
		t.Errorf("errors: %d counted, %d kept, %v", res.ErrorCount, len(res.Errors), err)
	}
}

func TestParseCSVTime(t *testing.T) {
	want := time.Date(2026, 11, 3, 8, 30, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-03T08:30:00Z", "2026-11-03T03:30:00-05:00", "1793694600", "2026-11-03 08:30:00", " 1793694600 "} {
		got, err := ParseCSVTime(s)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%q: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"03/11/2026", "1793694600.5", "2026-11-03", "253402300800"} {
		if _, err := ParseCSVTime(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 3, 8, 30, 0, 123, time.UTC)
	plain := NewEntry(NewHasher(""), Target{Scope: schemas.SuppressCustomerRecipient, Customer: "acme", Value: "gone@example.org", Domain: "example.org"},
		schemas.SuppressHardBounce, created, created.Add(90*24*time.Hour))
	plain.BounceCategory, plain.Status, plain.Note = "user_unknown", "5.1.1", "said \"no\", twice"
	keyed := NewEntry(NewHasher("k"), Target{Scope: schemas.SuppressGlobalRecipient, Value: "gone@example.org", Domain: "example.org"},
		schemas.SuppressComplaint, created, time.Time{})
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	for _, e := range []Entry{plain, keyed} {
		if err := w.Write(CSVRowOf(e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if lines[0] != "email,customer,scope,reason,created_at,expires_at,bounce_category,status,recipient_hash,recipient_domain,note" {
		t.Errorf("header %q", lines[0])
	}
	if !strings.HasPrefix(lines[2], ",,global_recipient,complaint,") || strings.Contains(buf.String(), ",gone@example.org,") && strings.Count(buf.String(), "gone@example.org") != 1 {
		t.Errorf("hashed row holds the address: %q", lines[2])
	}
	res, err := ReadCSV(&buf, DefaultCSVLimits())
	if err != nil || len(res.Rows) != 2 || res.ErrorCount != 0 {
		t.Fatalf("read back: %+v %v", res, err)
	}
	for i, e := range []Entry{plain, keyed} {
		want := CSVRowOf(e)
		want.Line = i + 2
		if !sameRow(res.Rows[i], want) {
			t.Errorf("row %d: %+v, want %+v", i, res.Rows[i], want)
		}
	}
	var empty bytes.Buffer
	if err := NewCSVWriter(&empty).Flush(); err != nil || empty.String() != strings.Join(CSVHeader, ",")+"\n" {
		t.Errorf("empty export %q %v", empty.String(), err)
	}
}

func sameRow(a, b CSVRow) bool {
	ac, bc := a, b
	ac.Created, ac.Expires, bc.Created, bc.Expires = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ac == bc && a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadCSVLinear: hostile files take time in proportion to their size.
func TestReadCSVLinear(t *testing.T) {
	lim := CSVLimits{MaxRows: 1 << 20, MaxBytes: 16 << 20, MaxErrors: 100}
	read := func(raw []byte) error {
		_, err := ReadCSV(bytes.NewReader(raw), lim)
		return err
	}
	for _, c := range []lineartest.Case{
		{Name: "good rows", Build: func(n int) []byte {
			return lineartest.Repeat(strings.Join(CSVHeader, ",")+"\n", "a.b+c@Example.ORG,acme,customer_recipient,bounce,2026-11-03 08:30:00,1793694600,user_unknown,5.1.1,,example.org,\"a, note\"\n", "", n)
		}, Parse: read},
		{Name: "bad rows", Build: func(n int) []byte {
			return lineartest.Repeat("email,reason,created\n", "not an address,bored,yesterday\n", "", n)
		}, Parse: read},
		{Name: "one open quote", Build: func(n int) []byte { return lineartest.Repeat("email\n\"", "x,\"\"y\n", "", n) }, Parse: read},
		{Name: "wide rows", Build: func(n int) []byte {
			return lineartest.Repeat("email\n", "a@b.example"+strings.Repeat(",", 200)+"\n", "", n)
		}, Parse: read},
		{Name: "long address", Build: func(n int) []byte { return lineartest.Repeat("email\n", "a", "@b.example\n", n) }, Parse: read},
	} {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}
