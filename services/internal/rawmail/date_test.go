package rawmail

import (
	"strings"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Tue, 19 Jan 2016 14:32:40 -0500 (EST)", "2016-01-19T19:32:40Z"},
		{"Thu, 8 Mar 2005 14:00:00 EDT", "2005-03-08T18:00:00Z"},
		{"8 Oct 2011 20:15:58 +0000 (GMT)", "2011-10-08T20:15:58Z"},
		{"Mon, 18 Jan 2016 23:57:24 UTC", "2016-01-18T23:57:24Z"},
		{"Thu, 29 Apr 2013 23:45:50 PST", "2013-04-30T07:45:50Z"},
		{"Tue, 04 Aug 2015 08:51:17 -0000", "2015-08-04T08:51:17Z"},
		{"Thu, 29 Apr 2009 00:00:00 -0000 (EST)", "2009-04-29T00:00:00Z"},
		{"Sun,  3 Sep 2016 22:06:04 +0200 (CEST)", "2016-09-03T20:06:04Z"},
		{"Thu Apr 29 16:51:04 2007", "2007-04-29T16:51:04Z"},
		{"2016-01-19T14:32:40Z", "2016-01-19T14:32:40Z"},
		{"2016-01-19T14:32:40.250+09:00", "2016-01-19T05:32:40.25Z"},
		{"2016-01-19 14:32:40 +0100", "2016-01-19T13:32:40Z"},
		{"2016/04/29 23:34:45", "2016-04-29T23:34:45Z"},
		{"11 Jun 24 07:59:10 EDT", "2024-06-11T11:59:10Z"},
		{"Mon, 17 Jun 2024 11:30 +0000", "2024-06-17T11:30:00Z"},
		{"17 Jun 99 11:30:00 GMT", "1999-06-17T11:30:00Z"},
		{"Wed, 29 Apr 2015 23:34:45 +0900 (JST)", "2015-04-29T14:34:45Z"},
		{"Thursday, April 29, 2008 2:45:56 PM", "2008-04-29T14:45:56Z"},
		{"Thu, 29 Apr 2010 23:34:45 GMT+0900", "2010-04-29T14:34:45Z"},
		{"29-Apr-2016 10:00:00 +0000", "2016-04-29T10:00:00Z"},
		{"Fri, 28 Sep 2018 16:48:42 +08:00", "2018-09-28T08:48:42Z"},
		{"Mon, 1 Jan 2024 12:00:60 +0000", "2024-01-01T12:00:59Z"},
		{"Thu, 29 Feb 2024 00:00:00 +0000", "2024-02-29T00:00:00Z"},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if !ok {
			t.Errorf("ParseDate(%q) failed, want %s", tt.in, tt.want)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != tt.want {
			t.Errorf("ParseDate(%q) = %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestParseDateRejects(t *testing.T) {
	for _, in := range []string{
		"", "yesterday", "Thu, 31 Feb 2024 00:00:00 +0000", "Mon, 1 Jan 2024 25:00:00 +0000",
		"Mon, 1 Foo 2024", "12:00:00", "hello world 2024", "Mon, 1 Jan 2024 12:00:00 +9999",
	} {
		if got, ok := ParseDate(in); ok {
			t.Errorf("ParseDate(%q) = %v, want failure", in, got)
		}
	}
}

// A date may carry comments up to a header line's length; past it the
// text is no date a mail system wrote and is refused without reading it.
func TestParseDateLength(t *testing.T) {
	date := "Tue, 19 Jan 2016 14:32:40 -0500 "
	fits := date + strings.Repeat("(a)", (maxDateBytes-len(date))/3)
	if got, ok := ParseDate(fits); !ok || got.Format(time.RFC3339) != "2016-01-19T19:32:40Z" {
		t.Errorf("a %d-byte date: %v, %v", len(fits), got, ok)
	}
	if got, ok := ParseDate(fits + "(a)"); ok {
		t.Errorf("a %d-byte date was read: %v", len(fits)+3, got)
	}
}
