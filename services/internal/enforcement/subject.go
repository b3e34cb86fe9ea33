package enforcement

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/mailmon/mailmon/schemas"
)

// Bucket is the KV bucket that holds the current decisions (declared in
// pipelines/topology.yaml).
const Bucket = "enforcement"

// Subject is what a decision applies to. Exactly the fields of its scope
// are set: Customer for "customer", SourceIP for "source_ip", Customer and
// Provider for "customer_provider".
type Subject struct {
	Scope    string
	Customer string
	SourceIP string
	Provider string
}

// Customer returns the subject "customer:<name>".
func Customer(name string) Subject { return Subject{Scope: schemas.ScopeCustomer, Customer: name} }

// SourceIP returns the subject "ip:<addr>".
func SourceIP(addr string) Subject { return Subject{Scope: schemas.ScopeSourceIP, SourceIP: addr} }

// CustomerProvider returns the subject "customer:<name>/provider:<provider>".
func CustomerProvider(name, provider string) Subject {
	return Subject{Scope: schemas.ScopeCustomerProvider, Customer: name, Provider: provider}
}

// String is the subject as events and operators write it.
func (s Subject) String() string {
	switch s.Scope {
	case schemas.ScopeCustomer:
		return "customer:" + s.Customer
	case schemas.ScopeSourceIP:
		return "ip:" + s.SourceIP
	case schemas.ScopeCustomerProvider:
		return "customer:" + s.Customer + "/provider:" + s.Provider
	}
	return ""
}

// Target is the subject as the decision events carry it.
func (s Subject) Target() schemas.DecisionTarget {
	return schemas.DecisionTarget{Scope: s.Scope, Subject: s.String(), Customer: s.Customer, SourceIP: s.SourceIP, Provider: s.Provider}
}

// Valid reports whether the subject has its scope's fields, and only those.
func (s Subject) Valid() bool {
	switch s.Scope {
	case schemas.ScopeCustomer:
		return s.Customer != "" && s.SourceIP == "" && s.Provider == ""
	case schemas.ScopeSourceIP:
		return s.SourceIP != "" && s.Customer == "" && s.Provider == ""
	case schemas.ScopeCustomerProvider:
		return s.Customer != "" && s.Provider != "" && s.SourceIP == ""
	}
	return false
}

// Partition maps the subject to one of n partitions by a hash of its text:
// the copy of the complaint-evaluator with that partition index owns it.
func (s Subject) Partition(n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(s.String()))
	return int(h.Sum32() % uint32(n))
}

// ParseSubject reads "customer:NAME", "ip:ADDR" or
// "customer:NAME/provider:PROVIDER".
func ParseSubject(text string) (Subject, error) {
	var s Subject
	switch {
	case strings.HasPrefix(text, "ip:"):
		s = SourceIP(text[len("ip:"):])
	case strings.HasPrefix(text, "customer:"):
		rest := text[len("customer:"):]
		if name, provider, ok := strings.Cut(rest, "/provider:"); ok {
			s = CustomerProvider(name, provider)
		} else {
			s = Customer(rest)
		}
	default:
		return Subject{}, fmt.Errorf("subject %q: want customer:NAME, ip:ADDR or customer:NAME/provider:PROVIDER", text)
	}
	if !s.Valid() {
		return Subject{}, fmt.Errorf("subject %q: empty name", text)
	}
	return s, nil
}

// Key is the subject's key in the enforcement bucket.
func (s Subject) Key() string {
	switch s.Scope {
	case schemas.ScopeCustomer:
		return s.Scope + "." + escape(s.Customer)
	case schemas.ScopeSourceIP:
		return s.Scope + "." + escape(s.SourceIP)
	case schemas.ScopeCustomerProvider:
		return s.Scope + "." + escape(s.Customer) + "." + escape(s.Provider)
	}
	return ""
}

// SubjectFromKey decodes a key of the enforcement bucket.
func SubjectFromKey(key string) (Subject, error) {
	parts := strings.Split(key, ".")
	values := make([]string, len(parts)-1)
	for i, p := range parts[1:] {
		v, err := unescape(p)
		if err != nil {
			return Subject{}, fmt.Errorf("key %q: %w", key, err)
		}
		values[i] = v
	}
	var s Subject
	switch {
	case parts[0] == schemas.ScopeCustomer && len(values) == 1:
		s = Customer(values[0])
	case parts[0] == schemas.ScopeSourceIP && len(values) == 1:
		s = SourceIP(values[0])
	case parts[0] == schemas.ScopeCustomerProvider && len(values) == 2:
		s = CustomerProvider(values[0], values[1])
	default:
		return Subject{}, fmt.Errorf("key %q is not an enforcement key", key)
	}
	if !s.Valid() {
		return Subject{}, fmt.Errorf("key %q: empty name", key)
	}
	return s, nil
}

const hexDigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func escape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

var errBadEscape = errors.New("bad =XX escape")

func unescape(v string) (string, error) {
	if v == "" {
		return "", errors.New("empty token")
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		if c != '=' || i+2 >= len(v) {
			return "", errBadEscape
		}
		hi, lo := strings.IndexByte(hexDigits, v[i+1]), strings.IndexByte(hexDigits, v[i+2])
		if hi < 0 || lo < 0 {
			return "", errBadEscape
		}
		x := byte(hi<<4 | lo)
		if plain(x) {
			return "", errors.New("escaped plain byte: a key has one spelling")
		}
		b.WriteByte(x)
		i += 2
	}
	return b.String(), nil
}
