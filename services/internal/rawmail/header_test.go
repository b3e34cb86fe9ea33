package rawmail

import (
	"reflect"
	"testing"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []Field
		body   string
	}{
		{"simple", "From: a@example.com\nSubject: hi\n\nbody\n",
			[]Field{{"From", "a@example.com"}, {"Subject", "hi"}}, "body\n"},
		{"crlf and folding", "Subject: one\r\n  two\r\n\tthree\r\nX-A:b\r\n\r\nbody",
			[]Field{{"Subject", "one two three"}, {"X-A", "b"}}, "body"},
		{"mbox line skipped", "From MAILER-DAEMON Thu Apr 29 16:51:04 2007\nTo: x@example.com\n\nb",
			[]Field{{"To", "x@example.com"}}, "b"},
		{"quoted mbox line skipped", ">From x Thu Apr 29 16:51:04 2007\nTo: x@example.com\n\nb",
			[]Field{{"To", "x@example.com"}}, "b"},
		{"no blank line before body", "Content-Type: text/plain\nThis is the body\nmore\n",
			[]Field{{"Content-Type", "text/plain"}}, "This is the body\nmore\n"},
		{"space before colon", "Subject : spaced\n\n", []Field{{"Subject", "spaced"}}, ""},
		{"empty value", "X-Empty:\nX-B: 1\n\n", []Field{{"X-Empty", ""}, {"X-B", "1"}}, ""},
		{"unindented boundary parameter", "Content-Type: multipart/alternative;\nboundary=\"abc\"\n\nx",
			[]Field{{"Content-Type", "multipart/alternative; boundary=\"abc\""}}, "x"},
		{"header only", "A: 1\nB: 2", []Field{{"A", "1"}, {"B", "2"}}, ""},
		{"empty header", "\nbody", nil, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := ParseHeader([]byte(tt.in))
			if !(len(h) == 0 && len(tt.fields) == 0) && !reflect.DeepEqual([]Field(h), tt.fields) {
				t.Errorf("fields = %q, want %q", h, tt.fields)
			}
			if string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
		})
	}
}

func TestHeaderLookups(t *testing.T) {
	h := Header{{"Received", "a"}, {"message-id", "<x@y>"}, {"Received", "b"}}
	if got := h.Get("Message-ID"); got != "<x@y>" {
		t.Errorf("Get = %q", got)
	}
	if got := h.Values("received"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Values = %q", got)
	}
	if h.Has("Subject") || !h.Has("RECEIVED") {
		t.Error("Has is wrong")
	}
}

func TestParseMediaType(t *testing.T) {
	tests := []struct {
		in     string
		mt     string
		params map[string]string
	}{
		{`multipart/report; report-type=feedback-report; boundary="b 1"`, "multipart/report",
			map[string]string{"report-type": "feedback-report", "boundary": "b 1"}},
		{`Multipart/Mixed;boundary=----=_Part_0;;charset="utf-8"`, "multipart/mixed",
			map[string]string{"boundary": "----=_Part_0", "charset": "utf-8"}},
		{`text/plain; charset`, "text/plain", nil},
		{`text/plain; name="a \"b\""; name=dup`, "text/plain", map[string]string{"name": `a "b"`}},
		{`message/rfc822 (comment)`, "message/rfc822", nil},
		{``, "", nil},
	}
	for _, tt := range tests {
		mt, params := ParseMediaType(tt.in)
		if mt != tt.mt || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("ParseMediaType(%q) = %q, %q; want %q, %q", tt.in, mt, params, tt.mt, tt.params)
		}
	}
}

func TestDecodeHeader(t *testing.T) {
	tests := map[string]string{
		"=?UTF-8?B?QXRpIHByaW1pdCB1biBjdXBvbiEgbmxt?=": "Ati primit un cupon! nlm",
		"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=":           "テスト",
		"=?iso-8859-1?Q?caf=E9?= au lait":              "café au lait",
		"plain text":                                   "plain text",
		"=?unknown-charset?Q?x?=":                      "=?unknown-charset?Q?x?=",
	}
	for in, want := range tests {
		if got := DecodeHeader(in); got != want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", in, got, want)
		}
	}
}
