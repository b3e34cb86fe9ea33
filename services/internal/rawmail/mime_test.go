package rawmail

import (
	"strings"
	"testing"
)

func TestDecodeTransfer(t *testing.T) {
	tests := []struct{ cte, in, want string }{
		{"base64", "SGVsbG8s\r\nIHdvcmxkIQ==\r\n", "Hello, world!"},
		{"BASE64", "SGVsbG8", "Hello"},                      // unpadded, truncated
		{"base64", "SGVs bG8g*!,d29y\nbGQ=", "Hello world"}, // junk skipped
		{"base64", "SGk=SGk=", "HiHi"},                      // concatenated blocks
		{"base64", "SGVsbG8_LQ", "Hello?-"},                 // URL-safe alphabet
		{"quoted-printable", "caf=C3=A9 =\r\nau lait=\n", "café au lait"},
		{"quoted-printable", "a=3db =zz =4", "a=b =zz =4"},
		{"quoted-printable", "soft =  \nbreak", "soft break"},
		{"7bit", "as is=41", "as is=41"},
		{"", "as is", "as is"},
	}
	for _, tt := range tests {
		if got := string(DecodeTransfer(tt.cte, []byte(tt.in))); got != tt.want {
			t.Errorf("DecodeTransfer(%q, %q) = %q, want %q", tt.cte, tt.in, got, tt.want)
		}
	}
}

const nested = "Content-Type: multipart/report; boundary=\"outer\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--outer\r\n" +
	"Content-Type: text/plain; charset=iso-2022-jp\r\n" +
	"\r\n" +
	"\x1b$B%F%9%H\x1b(B\r\n" +
	"--outer\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"Content-Type: multipart/mixed; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"aW5uZXIgdGV4dA==\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: text/rfc822-headers\r\n" +
	"\r\n" +
	"Message-ID: <h@example.com>\r\n" +
	"--outer\r\n" // no closing delimiter

func TestParseTree(t *testing.T) {
	p := Parse([]byte(nested))
	if p.MediaType != "multipart/report" || len(p.Parts) != 3 {
		t.Fatalf("root = %s with %d parts", p.MediaType, len(p.Parts))
	}
	if got := p.Parts[0].Text(); got != "テスト" {
		t.Errorf("ISO-2022-JP part = %q", got)
	}
	m := p.Parts[1].Message
	if m == nil || m.Header.Get("Subject") != "inner" || len(m.Parts) != 1 || string(m.Parts[0].Body) != "inner text" {
		t.Fatalf("attached message = %+v", m)
	}
	h := p.Parts[2].Message
	if h == nil || h.Header.Get("Message-ID") != "<h@example.com>" {
		t.Errorf("rfc822-headers = %+v", h)
	}
	var types []string
	p.Walk(func(q *Part) bool { types = append(types, q.MediaType); return true })
	want := "multipart/report text/plain message/rfc822 multipart/mixed text/plain text/rfc822-headers text/plain"
	if strings.Join(types, " ") != want {
		t.Errorf("walk = %s\nwant   %s", strings.Join(types, " "), want)
	}

	s := ParseShallow([]byte(nested))
	sm := s.Parts[1].Message
	if sm.Header.Get("Subject") != "inner" || len(sm.Parts) != 0 {
		t.Errorf("shallow attached message = %+v", sm)
	}
	if full := sm.Full(); len(full.Parts) != 1 || string(full.Parts[0].Body) != "inner text" {
		t.Errorf("Full() = %+v", full)
	}
}

func TestParseBrokenMultipart(t *testing.T) {
	// A boundary that never occurs: the body stays whole.
	p := Parse([]byte("Content-Type: multipart/mixed; boundary=nothere\n\nplain text\n"))
	if len(p.Parts) != 0 || string(p.Body) != "plain text\n" {
		t.Errorf("parts = %d, body = %q", len(p.Parts), p.Body)
	}
	// Digest parts default to message/rfc822.
	d := Parse([]byte("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nx\n--d--\n"))
	if len(d.Parts) != 1 || d.Parts[0].MediaType != "message/rfc822" || d.Parts[0].Message.Header.Get("Subject") != "one" {
		t.Errorf("digest = %+v", d.Parts)
	}
}

func TestParseBounded(t *testing.T) {
	// Deep nesting stops at MaxDepth.
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		sb.WriteString("Content-Type: message/rfc822\n\n")
	}
	depth := 0
	Parse([]byte(sb.String())).Walk(func(*Part) bool { depth++; return true })
	if depth > MaxDepth+1 {
		t.Errorf("walked %d levels, want at most %d", depth, MaxDepth+1)
	}
	// Many parts stop at MaxParts.
	sb.Reset()
	sb.WriteString("Content-Type: multipart/mixed; boundary=b\n\n")
	for i := 0; i < 2000; i++ {
		sb.WriteString("--b\n\nx\n")
	}
	n := 0
	Parse([]byte(sb.String())).Walk(func(*Part) bool { n++; return true })
	if n > MaxParts {
		t.Errorf("%d parts, want at most %d", n, MaxParts)
	}
}

func TestToUTF8(t *testing.T) {
	tests := []struct{ cs, in, want string }{
		{"iso-8859-1", "caf\xe9", "café"},
		{"windows-1252", "\x93quoted\x94", "\u201cquoted\u201d"},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"},
		{"shift_jis", "\x83e\x83X\x83g", "テスト"},
		{"", "\x1b$B%F%9%H\x1b(B", "テスト"},
		{"no-such-charset", "as is", "as is"},
		{"utf-8", "déjà", "déjà"},
	}
	for _, tt := range tests {
		if got := ToUTF8(tt.cs, []byte(tt.in)); got != tt.want {
			t.Errorf("ToUTF8(%q, %q) = %q, want %q", tt.cs, tt.in, got, tt.want)
		}
	}
}
