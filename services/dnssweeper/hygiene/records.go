package hygiene

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// tags parses a tag=value list (DKIM, RFC 6376 section 3.2; DMARC, RFC
// 7489 section 6.4): tags separated by ";", names case-insensitive for
// DMARC (callers lower them), whitespace around names and values ignored.
// A tag given twice is an error.
func tags(record string) (map[string]string, []string, error) {
	out := map[string]string{}
	var order []string
	for part := range strings.SplitSeq(record, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q is not tag=value", part)
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, nil, fmt.Errorf("%q has an empty tag name", part)
		}
		if _, dup := out[name]; dup {
			return nil, nil, fmt.Errorf("tag %s appears twice", name)
		}
		out[name] = strings.TrimSpace(value)
		order = append(order, name)
	}
	return out, order, nil
}

// DMARC is a parsed DMARC record (RFC 7489 section 6.3).
type DMARC struct {
	Policy          string // p: none, quarantine or reject
	SubdomainPolicy string // sp, "" when absent
	Pct             int    // pct, 100 when absent
	RUA, RUF        []string
	ADKIM, ASPF     string // r or s
}

// IsDMARC reports whether a TXT record is a DMARC record: it starts with
// the tag v=DMARC1.
func IsDMARC(txt string) bool {
	first, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && strings.TrimSpace(name) == "v" && strings.TrimSpace(value) == "DMARC1"
}

// ParseDMARC parses a record that IsDMARC accepted.
func ParseDMARC(txt string) (DMARC, error) {
	if !IsDMARC(txt) {
		return DMARC{}, errors.New("not a DMARC record (must start with v=DMARC1)")
	}
	t, _, err := tags(txt)
	if err != nil {
		return DMARC{}, err
	}
	d := DMARC{Pct: 100, ADKIM: "r", ASPF: "r"}
	policy := func(v string) (string, bool) {
		v = strings.ToLower(v)
		return v, v == "none" || v == "quarantine" || v == "reject"
	}
	for name, v := range t {
		switch strings.ToLower(name) {
		case "p":
			p, ok := policy(v)
			if !ok {
				return DMARC{}, fmt.Errorf("p=%s is not none, quarantine or reject", v)
			}
			d.Policy = p
		case "sp":
			p, ok := policy(v)
			if !ok {
				return DMARC{}, fmt.Errorf("sp=%s is not none, quarantine or reject", v)
			}
			d.SubdomainPolicy = p
		case "pct":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return DMARC{}, fmt.Errorf("pct=%s is not 0 to 100", v)
			}
			d.Pct = n
		case "rua", "ruf":
			var uris []string
			for u := range strings.SplitSeq(v, ",") {
				if u = strings.TrimSpace(u); u != "" {
					uris = append(uris, u)
				}
			}
			if strings.ToLower(name) == "rua" {
				d.RUA = uris
			} else {
				d.RUF = uris
			}
		case "adkim", "aspf":
			v = strings.ToLower(v)
			if v != "r" && v != "s" {
				return DMARC{}, fmt.Errorf("%s=%s is not r or s", name, v)
			}
			if strings.ToLower(name) == "adkim" {
				d.ADKIM = v
			} else {
				d.ASPF = v
			}
		}
	}
	if d.Policy == "" {
		return DMARC{}, errors.New("no p= policy tag")
	}
	return d, nil
}

// DKIMKey is what a DKIM key record (RFC 6376 section 3.6.1) says.
type DKIMKey struct {
	// KeyType is k=, "rsa" by default, or "ed25519" (RFC 8463).
	KeyType string
	// Bits is the RSA modulus size, 256 for Ed25519, 0 when revoked.
	Bits int
	// Revoked: p= is empty, the key was withdrawn.
	Revoked bool
	// Testing: t=y, receivers treat failures leniently.
	Testing bool
}

// ParseDKIMKey parses a DKIM key record and decodes its public key.
func ParseDKIMKey(txt string) (DKIMKey, error) {
	t, _, err := tags(txt)
	if err != nil {
		return DKIMKey{}, err
	}
	if v, ok := t["v"]; ok && v != "DKIM1" {
		return DKIMKey{}, fmt.Errorf("v=%s is not DKIM1", v)
	}
	k := DKIMKey{KeyType: "rsa"}
	if kt, ok := t["k"]; ok {
		k.KeyType = strings.ToLower(kt)
	}
	for flag := range strings.SplitSeq(t["t"], ":") {
		if strings.TrimSpace(flag) == "y" {
			k.Testing = true
		}
	}
	p, ok := t["p"]
	if !ok {
		return DKIMKey{}, errors.New("no p= public key tag")
	}
	p = strings.Join(strings.Fields(p), "")
	if p == "" {
		k.Revoked = true
		return k, nil
	}
	raw, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return DKIMKey{}, errors.New("p= is not valid base64")
	}
	switch k.KeyType {
	case "rsa":
		pub, err := x509.ParsePKIXPublicKey(raw)
		if err != nil {
			// Some signers publish the bare PKCS#1 RSAPublicKey.
			if rk, err2 := x509.ParsePKCS1PublicKey(raw); err2 == nil {
				k.Bits = rk.N.BitLen()
				return k, nil
			}
			return DKIMKey{}, fmt.Errorf("p= is not an RSA public key: %v", err)
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return DKIMKey{}, errors.New("p= holds a non-RSA key but k=rsa")
		}
		k.Bits = rk.N.BitLen()
	case "ed25519":
		if len(raw) != ed25519.PublicKeySize {
			return DKIMKey{}, fmt.Errorf("p= holds %d bytes, an Ed25519 key has %d", len(raw), ed25519.PublicKeySize)
		}
		k.Bits = 256
	default:
		return DKIMKey{}, fmt.Errorf("unknown key type k=%s", k.KeyType)
	}
	return k, nil
}
