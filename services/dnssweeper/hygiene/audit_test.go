package hygiene

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
)

func rsaKeyRecord(t *testing.T, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

func TestParseDMARC(t *testing.T) {
	tests := []struct {
		record string
		policy string
		rua    int
		pct    int
		bad    string
	}{
		{record: "v=DMARC1; p=reject; rua=mailto:a@example.com,mailto:b@example.net", policy: "reject", rua: 2, pct: 100},
		{record: "v=DMARC1;p=none", policy: "none", pct: 100},
		{record: "v=DMARC1; P=Quarantine; pct=25; adkim=s", policy: "quarantine", pct: 25},
		{record: "v=DMARC1; rua=mailto:a@example.com", bad: "no p="},
		{record: "v=DMARC1; p=block", bad: "not none"},
		{record: "v=DMARC1; p=none; pct=150", bad: "pct"},
		{record: "v=DMARC1; p=none; p=reject", bad: "twice"},
		{record: "v=DMARC1; p=none; aspf=x", bad: "aspf"},
		{record: "v=spf1 -all", bad: "not a DMARC record"},
		{record: "v=DMARC1; p=none; junk", bad: "tag=value"},
	}
	for _, tt := range tests {
		d, err := ParseDMARC(tt.record)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("ParseDMARC(%q) = %+v, %v; want an error about %q", tt.record, d, err, tt.bad)
			}
			continue
		}
		if err != nil || d.Policy != tt.policy || len(d.RUA) != tt.rua || d.Pct != tt.pct {
			t.Errorf("ParseDMARC(%q) = %+v, %v", tt.record, d, err)
		}
	}
}

func TestParseDKIMKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		record  string
		keyType string
		bits    int
		revoked bool
		bad     string
	}{
		{record: rsaKeyRecord(t, 2048), keyType: "rsa", bits: 2048},
		{record: strings.Replace(rsaKeyRecord(t, 1024), "p=", "t=y:s; p=", 1), keyType: "rsa", bits: 1024},
		{record: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), keyType: "ed25519", bits: 256},
		{record: "v=DKIM1; p=", keyType: "rsa", revoked: true},
		{record: "v=DKIM1; k=rsa", bad: "no p="},
		{record: "v=DKIM2; p=abc", bad: "DKIM1"},
		{record: "v=DKIM1; p=!!!", bad: "base64"},
		{record: "v=DKIM1; p=" + base64.StdEncoding.EncodeToString([]byte("not a key")), bad: "not an RSA public key"},
		{record: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString([]byte("short")), bad: "Ed25519"},
		{record: "v=DKIM1; k=dsa; p=" + base64.StdEncoding.EncodeToString([]byte("x")), bad: "unknown key type"},
	}
	for _, tt := range tests {
		k, err := ParseDKIMKey(tt.record)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("ParseDKIMKey(%.40q) = %+v, %v; want an error about %q", tt.record, k, err, tt.bad)
			}
			continue
		}
		if err != nil || k.KeyType != tt.keyType || k.Bits != tt.bits || k.Revoked != tt.revoked {
			t.Errorf("ParseDKIMKey(%.40q) = %+v, %v", tt.record, k, err)
		}
	}
}

func findings(fs []Finding, check string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func TestAuditIP(t *testing.T) {
	z := newZone()
	z.ptr["192.0.2.25"] = []string{"mta1.example.com"}
	z.a["mta1.example.com"] = []string{"192.0.2.25"}
	z.ptr["192.0.2.26"] = []string{"mta2.example.com"}
	z.a["mta2.example.com"] = []string{"192.0.2.99"}
	z.ptr["192.0.2.27"] = []string{"27-2-0-192.dyn.isp.example"}
	z.a["27-2-0-192.dyn.isp.example"] = []string{"192.0.2.27"}
	z.ptr["2001:db8::25"] = []string{"mta6.example.com"}
	z.aaaa["mta6.example.com"] = []string{"2001:db8::25"}
	z.fail["192.0.2.29"] = true
	tests := []struct {
		ip          string
		ptr, fcrdns string // severities; "" when the check is absent
		message     string
	}{
		{"192.0.2.25", OK, OK, "mta1.example.com resolves back"},
		{"192.0.2.26", OK, Critical, "not forward-confirmed"},
		{"192.0.2.27", Warning, OK, "generic"},
		{"192.0.2.28", Critical, "", "no PTR record"},
		{"192.0.2.29", Warning, "", "failed"},
		{"2001:db8::25", OK, OK, "mta6.example.com"},
	}
	for _, tt := range tests {
		a := AuditIP(context.Background(), z, netip.MustParseAddr(tt.ip))
		ptr, fc := findings(a.Findings, "ptr"), findings(a.Findings, "fcrdns")
		var all []string
		for _, f := range a.Findings {
			all = append(all, f.Message)
		}
		if len(ptr) != 1 || ptr[0].Severity != tt.ptr || (tt.fcrdns == "") != (len(fc) == 0) || (len(fc) == 1 && fc[0].Severity != tt.fcrdns) ||
			!strings.Contains(strings.Join(all, "|"), tt.message) {
			t.Errorf("AuditIP(%s) = %+v", tt.ip, a.Findings)
		}
	}
}

func TestAuditDomain(t *testing.T) {
	z := spfZone()
	z.txt["s1._domainkey.example.com"] = []string{rsaKeyRecord(t, 2048)}
	z.txt["old._domainkey.example.com"] = []string{"v=DKIM1; p="}
	z.txt["_dmarc.example.com"] = []string{"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"}
	ips := []netip.Addr{netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("198.51.100.7")}
	a := AuditDomain(context.Background(), z, "example.com", []string{"s1", "old", "gone"}, ips)
	want := []Finding{
		{"spf", OK, "SPF record present and valid (3 DNS lookups of 10)"},
		{"spf_authorizes_ip", OK, "SPF authorises sending IP 192.0.2.5 (example.com matched ip4:192.0.2.0/27)"},
		{"spf_authorizes_ip", Warning, "SPF does not authorise sending IP 198.51.100.7 (result: fail)"},
		{"dkim", OK, "selector s1 publishes a 2048-bit RSA key"},
		{"dkim", Info, "selector old is revoked (empty p=); remove it from the configuration if it was retired"},
		{"dkim", Info, "selector gone has no DKIM record; remove it from the configuration if it was retired"},
		{"dmarc", OK, "DMARC policy quarantine with aggregate reports"},
		{"mx", OK, "2 MX hosts resolve"},
	}
	if len(a.Findings) != len(want) {
		t.Fatalf("findings:\n%+v\nwant\n%+v", a.Findings, want)
	}
	for i := range want {
		if a.Findings[i] != want[i] {
			t.Errorf("finding %d = %+v, want %+v", i, a.Findings[i], want[i])
		}
	}
	if Worst(a.Findings) != Warning || a.DMARCPolicy != "quarantine" || len(a.MXHosts) != 2 || !strings.HasPrefix(a.SPFRecord, "v=spf1 ip4:") {
		t.Errorf("audit %+v", a)
	}

	// A domain with nothing: every check fails loudly.
	bare := AuditDomain(context.Background(), z, "nothing.example", []string{"s1"}, ips)
	for _, check := range []string{"spf", "dkim", "dmarc"} {
		if f := findings(bare.Findings, check); len(f) != 1 || f[0].Severity != Critical {
			t.Errorf("nothing.example %s: %+v", check, f)
		}
	}
	if f := findings(bare.Findings, "mx"); len(f) != 1 || f[0].Severity != Warning {
		t.Errorf("nothing.example mx: %+v", f)
	}
	if Worst(bare.Findings) != Critical {
		t.Errorf("worst %s", Worst(bare.Findings))
	}

	// Smaller problems.
	z.txt["loose.example"] = []string{"v=spf1 +all"}
	z.txt["_dmarc.loose.example"] = []string{"v=DMARC1; p=none", "v=DMARC1; p=reject"}
	z.mx["loose.example"] = []MX{{0, ""}}
	loose := AuditDomain(context.Background(), z, "loose.example", nil, nil)
	msgs := ""
	for _, f := range loose.Findings {
		msgs += f.Severity + ":" + f.Message + "\n"
	}
	for _, want := range []string{"critical:SPF ends in +all", "info:no DKIM selectors", "critical:2 DMARC records", "warning:loose.example publishes a null MX"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("loose.example findings lack %q:\n%s", want, msgs)
		}
	}
}

func FuzzParseDMARC(f *testing.F) {
	f.Add("v=DMARC1; p=reject; rua=mailto:a@example.com")
	f.Add("v=DMARC1;p=none;pct=0;sp=reject")
	f.Add("v=DMARC1; p=none; p=reject")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDMARC(s)
		if err != nil {
			return
		}
		if d.Policy != "none" && d.Policy != "quarantine" && d.Policy != "reject" || d.Pct < 0 || d.Pct > 100 {
			t.Fatalf("%q parsed to %+v", s, d)
		}
	})
}

func FuzzParseDKIMKey(f *testing.F) {
	f.Add("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB")
	f.Add("p=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseDKIMKey(s)
		if err == nil && !k.Revoked && k.Bits <= 0 {
			t.Fatalf("%q: key without bits %+v", s, k)
		}
	})
}
