package provider

import "testing"

func TestMatch(t *testing.T) {
	d, mx := Domains(), MXSuffixes()
	tests := []struct {
		table map[string]string
		name  string
		want  string
	}{
		{d, "gmail.com", "gmail"},
		{d, "GMail.COM.", "gmail"},
		{d, "x.mail.ru", "mailru"},
		{d, "gmail.ru", ""},
		{d, "aol.com", "aol"},
		{d, "example.org", ""},
		{d, "", ""},
		{mx, "gmail-smtp-in.l.google.com", "gmail"},
		{mx, "example-com.mail.protection.outlook.com", "outlook"},
		{mx, "mta5.am0.yahoodns.net", "yahoo"},
		{mx, "mx.example.org", ""},
	}
	for _, tt := range tests {
		if got := Match(tt.table, tt.name); got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTablesAreCopies(t *testing.T) {
	d := Domains()
	d["gmail.com"] = "changed"
	if Match(Domains(), "gmail.com") != "gmail" {
		t.Fatal("changing a returned table changed the built-in one")
	}
}
