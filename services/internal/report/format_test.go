package report

import (
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"  plain  text ", 20, "plain text"},
		{"421-4.7.0 first\r\n421 4.7.0 second", 40, "421-4.7.0 first 421 4.7.0 second"},
		{"red\x1b[31m alert\x07", 40, "red [31m alert"},
		{"bidi \u202egnp.exe", 40, "bidi gnp.exe"},
		{"bad \xff utf-8", 40, "bad \uFFFD utf-8"},
		{"abcdefgh", 5, "abcde…"},
		{"abcde", 5, "abcde"},
		{"héllo wörld", 7, "héllo w…"},
	} {
		if got := oneLine(c.in, c.max); got != c.want {
			t.Errorf("oneLine(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{formatLatency(0), "-"},
		{formatLatency(850), "850ms"},
		{formatLatency(1000), "1.0s"},
		{formatLatency(12_345), "12.3s"},
		{formatLatency(125_400), "2m5s"},
		{formatPercent(100.0 / 3), "33.3%"},
		{formatRate(0.003), "0.300%"},
		{formatRatePercent(40), "40.000%"},
		{formatThreshold("complaint_rate", 0.003), "0.300%"},
		{formatThreshold("complaint_count", 10), "10"},
		{formatThreshold("rejection_burst", 20), "20"},
		{formatCount(1234567), "1234567"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestTableAlignsColumns(t *testing.T) {
	tb := newTable(true, false, false)
	tb.add("count", "name", "note")
	tb.add("7", "a", "")
	tb.add("12345", "longer name", "x")
	var b strings.Builder
	tb.write(&b, "  ")
	want := "  count  name         note\n" +
		"      7  a\n" +
		"  12345  longer name  x\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
