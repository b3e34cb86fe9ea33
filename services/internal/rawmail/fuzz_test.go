package rawmail

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and ParseShallow: they must
// never panic, the walk must end, and the part count stays bounded.
func FuzzParse(f *testing.F) {
	f.Add([]byte(nested))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n"))
	f.Add([]byte("Content-Transfer-Encoding: base64\n\n====\n"))
	f.Add([]byte("Content-Transfer-Encoding: quoted-printable\n\n=\n=4\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, p := range []*Part{Parse(raw), ParseShallow(raw)} {
			n := 0
			p.Walk(func(q *Part) bool {
				n++
				_ = q.Text()
				q.Full()
				return true
			})
			if n > 2*MaxParts+2 {
				t.Fatalf("%d parts", n)
			}
		}
		ParseDate(string(raw))
		DecodeHeader(string(raw))
	})
}

// FuzzParseDate checks that a parsed date formats and parses back.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Tue, 19 Jan 2016 14:32:40 -0500 (EST)", "2016-01-19T14:32:40Z", "Thu Apr 29 16:51:04 2007", "3/09/2016 8:05:56 PM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDate(s)
		if !ok {
			return
		}
		if d.Location().String() != "UTC" {
			t.Fatalf("ParseDate(%q) not in UTC", s)
		}
		if again, ok := ParseDate(d.Format("Mon, 2 Jan 2006 15:04:05 -0700")); !ok || !again.Equal(d.Truncate(1e9)) {
			t.Fatalf("ParseDate(%q) = %v does not round-trip (%v)", s, d, again)
		}
	})
}
