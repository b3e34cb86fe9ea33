package hygiene

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// SPF limits (RFC 7208 section 4.6.4).
const (
	// MaxLookups is the limit on terms that cause DNS queries (include, a,
	// mx, ptr, exists, redirect) in one evaluation.
	MaxLookups = 10
	// MaxVoidLookups is the limit on such queries that find nothing.
	MaxVoidLookups = 2
	// maxMXOrPTR is the limit on MX or PTR names looked up for one term.
	maxMXOrPTR = 10
)

// SPFResult is a check_host result (RFC 7208 section 2.6).
type SPFResult string

const (
	SPFNone      SPFResult = "none"
	SPFNeutral   SPFResult = "neutral"
	SPFPass      SPFResult = "pass"
	SPFFail      SPFResult = "fail"
	SPFSoftfail  SPFResult = "softfail"
	SPFTemperror SPFResult = "temperror"
	SPFPermerror SPFResult = "permerror"
)

var qualifierResult = map[byte]SPFResult{'+': SPFPass, '-': SPFFail, '~': SPFSoftfail, '?': SPFNeutral}

// Directive is one mechanism of an SPF record with its qualifier.
type Directive struct {
	Qualifier byte   // '+', '-', '~' or '?'
	Mechanism string // all, include, a, mx, ptr, ip4, ip6, exists
	// Domain is the domain-spec, a macro string; "" means the current domain.
	Domain string
	// CIDR4 and CIDR6 are the dual-cidr-length of a and mx (-1 when absent).
	CIDR4, CIDR6 int
	// Net is the network of ip4 and ip6.
	Net netip.Prefix
}

// SPFRecord is a parsed "v=spf1" record.
type SPFRecord struct {
	Directives []Directive
	// Redirect is the redirect= modifier's domain-spec, if any.
	Redirect string
	// Exp is the exp= modifier's domain-spec, if any.
	Exp string
}

// IsSPF reports whether a TXT record is an SPF version 1 record.
func IsSPF(txt string) bool {
	return len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ')
}

// ParseSPF parses one SPF record. An error is a permerror: the record's
// syntax is invalid (RFC 7208 sections 4.6 and 12).
func ParseSPF(txt string) (SPFRecord, error) {
	if !IsSPF(txt) {
		return SPFRecord{}, errors.New("not an SPF record (must start with v=spf1)")
	}
	var rec SPFRecord
	seenRedirect, seenExp := false, false
	for _, term := range strings.Fields(txt[6:]) {
		if name, value, isMod := modifier(term); isMod {
			switch strings.ToLower(name) {
			case "redirect":
				if seenRedirect {
					return SPFRecord{}, errors.New("redirect= appears twice")
				}
				seenRedirect = true
				if err := checkMacroString(value); err != nil || value == "" {
					return SPFRecord{}, fmt.Errorf("redirect=%s: invalid domain-spec", value)
				}
				rec.Redirect = value
			case "exp":
				if seenExp {
					return SPFRecord{}, errors.New("exp= appears twice")
				}
				seenExp = true
				rec.Exp = value
			default:
				// Unknown modifiers are ignored (RFC 7208 section 6), but
				// their value must still be a macro-string.
				if err := checkMacroString(value); err != nil {
					return SPFRecord{}, fmt.Errorf("modifier %s: %v", term, err)
				}
			}
			continue
		}
		d, err := parseDirective(term)
		if err != nil {
			return SPFRecord{}, err
		}
		rec.Directives = append(rec.Directives, d)
	}
	return rec, nil
}

// modifier splits name=value when term is a modifier: name is ALPHA
// *(ALPHA / DIGIT / "-" / "_" / ".") followed by "=".
func modifier(term string) (name, value string, ok bool) {
	i := strings.IndexByte(term, '=')
	if i <= 0 {
		return "", "", false
	}
	name = term[:i]
	if !isAlpha(name[0]) {
		return "", "", false
	}
	for j := 1; j < len(name); j++ {
		c := name[j]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return name, term[i+1:], true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func parseDirective(term string) (Directive, error) {
	d := Directive{Qualifier: '+', CIDR4: -1, CIDR6: -1}
	for i := range len(term) {
		if term[i] < 0x21 || term[i] > 0x7e {
			return Directive{}, fmt.Errorf("term %q: SPF records are printable US-ASCII", term)
		}
	}
	if strings.IndexByte("+-~?", term[0]) >= 0 {
		d.Qualifier = term[0]
		term = term[1:]
	}
	name, arg, hasArg := strings.Cut(term, ":")
	name = strings.ToLower(name)
	// a and mx may carry a cidr without a domain: "a/24", "mx//64".
	if !hasArg {
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name, arg = name[:i], term[i:]
		}
	}
	bad := func(why string) (Directive, error) {
		return Directive{}, fmt.Errorf("term %q: %s", term, why)
	}
	d.Mechanism = name
	switch name {
	case "all":
		if hasArg || arg != "" {
			return bad("all takes no argument")
		}
	case "include", "exists":
		if !hasArg || arg == "" {
			return bad(name + " needs a domain")
		}
		if err := checkMacroString(arg); err != nil {
			return bad(err.Error())
		}
		d.Domain = arg
	case "ptr":
		if hasArg {
			if arg == "" {
				return bad("empty domain")
			}
			if err := checkMacroString(arg); err != nil {
				return bad(err.Error())
			}
			d.Domain = arg
		}
	case "a", "mx":
		if hasArg && arg == "" {
			return bad("empty domain")
		}
		spec, c4, c6, err := splitDualCIDR(arg)
		if err != nil {
			return bad(err.Error())
		}
		if hasArg && spec == "" {
			return bad("empty domain")
		}
		if err := checkMacroString(spec); err != nil {
			return bad(err.Error())
		}
		d.Domain, d.CIDR4, d.CIDR6 = spec, c4, c6
	case "ip4", "ip6":
		if !hasArg {
			return bad(name + " needs an address")
		}
		addrText, bitsText, hasBits := strings.Cut(arg, "/")
		a, err := netip.ParseAddr(addrText)
		if err != nil || a.Zone() != "" || (name == "ip4") != a.Is4() {
			return bad("invalid address")
		}
		n := a.BitLen()
		if hasBits {
			b, err := strconv.Atoi(bitsText)
			if err != nil || b < 0 || b > a.BitLen() || bitsText != strconv.Itoa(b) {
				return bad("invalid prefix length")
			}
			n = b
		}
		d.Net = netip.PrefixFrom(a, n).Masked()
	default:
		return bad("unknown mechanism")
	}
	return d, nil
}

// splitDualCIDR splits "domain/24//64", "/24", "//64" or "domain".
func splitDualCIDR(arg string) (spec string, c4, c6 int, err error) {
	c4, c6 = -1, -1
	if i := strings.Index(arg, "//"); i >= 0 {
		v, e := strconv.Atoi(arg[i+2:])
		if e != nil || v < 0 || v > 128 {
			return "", 0, 0, errors.New("invalid ip6 prefix length")
		}
		c6, arg = v, arg[:i]
	}
	if i := strings.LastIndexByte(arg, '/'); i >= 0 {
		v, e := strconv.Atoi(arg[i+1:])
		if e != nil || v < 0 || v > 32 {
			return "", 0, 0, errors.New("invalid ip4 prefix length")
		}
		c4, arg = v, arg[:i]
	}
	return arg, c4, c6, nil
}

// checkMacroString validates a macro-string (RFC 7208 section 7.1).
func checkMacroString(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e {
			return errors.New("invalid character")
		}
		if c != '%' {
			continue
		}
		if i+1 >= len(s) {
			return errors.New("lone % at the end")
		}
		switch s[i+1] {
		case '%', '_', '-':
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return errors.New("unterminated %{")
			}
			body := s[i+2 : i+end]
			if _, _, _, _, err := parseMacro(body); err != nil {
				return err
			}
			i += end
		default:
			return fmt.Errorf("invalid macro %%%c", s[i+1])
		}
	}
	return nil
}

// parseMacro reads the inside of %{...}: a letter, digits, r, delimiters.
func parseMacro(body string) (letter byte, digits int, reverse bool, delims string, err error) {
	if body == "" {
		return 0, 0, false, "", errors.New("empty macro")
	}
	letter = body[0] | 0x20
	if strings.IndexByte("slodiphcrtv", letter) < 0 {
		return 0, 0, false, "", fmt.Errorf("unknown macro letter %q", body[0])
	}
	rest := body[1:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j > 0 {
		digits, err = strconv.Atoi(rest[:j])
		if err != nil || digits == 0 || digits > 128 {
			return 0, 0, false, "", errors.New("invalid macro digits")
		}
	}
	rest = rest[j:]
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		reverse, rest = true, rest[1:]
	}
	for k := 0; k < len(rest); k++ {
		if strings.IndexByte(".-+,/_=", rest[k]) < 0 {
			return 0, 0, false, "", fmt.Errorf("invalid macro delimiter %q", rest[k])
		}
	}
	return letter, digits, reverse, rest, nil
}

// macroEnv holds what macros expand to.
type macroEnv struct {
	ip             netip.Addr
	sender, domain string
	helo           string
}

// expand expands a macro-string for a domain-spec; the result is cut to
// 253 characters by dropping labels from the left (section 7.3).
func (e macroEnv) expand(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return strings.TrimSuffix(s, "."), nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("lone % at the end")
		}
		switch s[i+1] {
		case '%':
			b.WriteByte('%')
			i++
			continue
		case '_':
			b.WriteByte(' ')
			i++
			continue
		case '-':
			b.WriteString("%20")
			i++
			continue
		case '{':
		default:
			return "", fmt.Errorf("invalid macro %%%c", s[i+1])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated %{")
		}
		body := s[i+2 : i+end]
		letter, digits, reverse, delims, err := parseMacro(body)
		if err != nil {
			return "", err
		}
		value := e.letter(letter)
		if delims == "" {
			delims = "."
		}
		parts := strings.FieldsFunc(value, func(r rune) bool { return strings.ContainsRune(delims, r) })
		if reverse {
			slices.Reverse(parts)
		}
		if digits > 0 && digits < len(parts) {
			parts = parts[len(parts)-digits:]
		}
		out := strings.Join(parts, ".")
		if body[0] >= 'A' && body[0] <= 'Z' {
			out = url.QueryEscape(out)
		}
		b.WriteString(out)
		i += end
	}
	out := strings.TrimSuffix(b.String(), ".")
	for len(out) > 253 {
		_, rest, ok := strings.Cut(out, ".")
		if !ok {
			return "", errors.New("expanded domain too long")
		}
		out = rest
	}
	return out, nil
}

func (e macroEnv) letter(l byte) string {
	local, dom, _ := strings.Cut(e.sender, "@")
	switch l {
	case 's':
		return e.sender
	case 'l':
		if local == "" {
			return "postmaster"
		}
		return local
	case 'o':
		return dom
	case 'd':
		return e.domain
	case 'i':
		if e.ip.Is4() {
			return e.ip.String()
		}
		b := e.ip.As16()
		parts := make([]string, 0, 32)
		for _, x := range b {
			parts = append(parts, string(hexDigit(x>>4)), string(hexDigit(x&0xf)))
		}
		return strings.Join(parts, ".")
	case 'p':
		return "unknown"
	case 'v':
		if e.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return e.helo
	}
	return "" // c, r, t: exp only
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b] }

// Checker evaluates check_host (RFC 7208 section 4) through a Resolver.
type Checker struct {
	Resolver Resolver
}

// evaluation is the state of one check_host, shared across includes.
type evaluation struct {
	ctx       context.Context
	r         Resolver
	ip        netip.Addr
	sender    string
	helo      string
	lookups   int
	voids     int
	permError error
}

// SPFOutcome is a check_host result and why.
type SPFOutcome struct {
	Result SPFResult
	// Lookups is the number of DNS-querying terms evaluated.
	Lookups int
	// Reason explains permerror and temperror results, and which term
	// matched otherwise.
	Reason string
}

// CheckHost evaluates whether ip may send mail for domain, with sender as
// the MAIL FROM address (postmaster@domain when empty) and helo as the
// HELO name.
func (c Checker) CheckHost(ctx context.Context, ip netip.Addr, domain, sender, helo string) SPFOutcome {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if sender == "" {
		sender = "postmaster@" + domain
	}
	if helo == "" {
		helo = domain
	}
	ev := &evaluation{ctx: ctx, r: c.Resolver, ip: ip.Unmap(), sender: sender, helo: helo}
	res, reason := ev.checkHost(domain, 0)
	return SPFOutcome{Result: res, Lookups: ev.lookups, Reason: reason}
}

// FindSPF returns the domain's SPF record: none when there is none,
// permerror when there are several, temperror when DNS fails.
func FindSPF(ctx context.Context, r Resolver, domain string) (string, SPFResult, error) {
	txts, err := r.LookupTXT(ctx, domain)
	if err != nil {
		if notFound(err) {
			return "", SPFNone, nil
		}
		return "", SPFTemperror, err
	}
	var found []string
	for _, t := range txts {
		if IsSPF(t) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return "", SPFNone, nil
	case 1:
		return found[0], "", nil
	default:
		return "", SPFPermerror, fmt.Errorf("%d SPF records published (exactly one is allowed)", len(found))
	}
}

func (ev *evaluation) checkHost(domain string, depth int) (SPFResult, string) {
	if depth > MaxLookups+1 {
		return SPFPermerror, "include or redirect loop"
	}
	txt, res, err := FindSPF(ev.ctx, ev.r, domain)
	if res != "" {
		reason := "no SPF record at " + domain
		if err != nil {
			reason = domain + ": " + err.Error()
		}
		return res, reason
	}
	rec, err := ParseSPF(txt)
	if err != nil {
		return SPFPermerror, domain + ": " + err.Error()
	}
	env := macroEnv{ip: ev.ip, sender: ev.sender, domain: domain, helo: ev.helo}
	for _, d := range rec.Directives {
		match, res, reason := ev.match(d, env, domain, depth)
		if res != "" {
			return res, reason
		}
		if match {
			return qualifierResult[d.Qualifier], fmt.Sprintf("%s matched %s", domain, d.String())
		}
	}
	if rec.Redirect != "" {
		if res, reason := ev.count(); res != "" {
			return res, reason
		}
		target, err := env.expand(rec.Redirect)
		if err != nil {
			return SPFPermerror, domain + ": redirect: " + err.Error()
		}
		res, reason := ev.checkHost(strings.ToLower(target), depth+1)
		if res == SPFNone {
			return SPFPermerror, "redirect target " + target + " has no SPF record"
		}
		return res, reason
	}
	return SPFNeutral, domain + ": no mechanism matched and there is no redirect (default neutral)"
}

// count charges one DNS-querying term against the limit.
func (ev *evaluation) count() (SPFResult, string) {
	ev.lookups++
	if ev.lookups > MaxLookups {
		return SPFPermerror, fmt.Sprintf("more than %d DNS-querying terms (RFC 7208 section 4.6.4)", MaxLookups)
	}
	return "", ""
}

// void charges a lookup that found nothing.
func (ev *evaluation) void() (SPFResult, string) {
	ev.voids++
	if ev.voids > MaxVoidLookups {
		return SPFPermerror, fmt.Sprintf("more than %d void lookups (RFC 7208 section 4.6.4)", MaxVoidLookups)
	}
	return "", ""
}

// match evaluates one directive: whether it matches, or a result that ends
// the evaluation (errors).
func (ev *evaluation) match(d Directive, env macroEnv, domain string, depth int) (bool, SPFResult, string) {
	target := domain
	if d.Domain != "" && d.Mechanism != "ip4" && d.Mechanism != "ip6" {
		t, err := env.expand(d.Domain)
		if err != nil {
			return false, SPFPermerror, d.String() + ": " + err.Error()
		}
		target = strings.ToLower(t)
	}
	switch d.Mechanism {
	case "all":
		return true, "", ""
	case "ip4", "ip6":
		return d.Net.Contains(ev.ip), "", ""
	}
	if res, reason := ev.count(); res != "" {
		return false, res, reason
	}
	switch d.Mechanism {
	case "include":
		res, reason := ev.checkHost(target, depth+1)
		switch res {
		case SPFPass:
			return true, "", ""
		case SPFFail, SPFSoftfail, SPFNeutral:
			return false, "", ""
		case SPFTemperror:
			return false, SPFTemperror, reason
		default: // none, permerror
			if res == SPFNone {
				reason = "include:" + target + " has no SPF record"
			}
			return false, SPFPermerror, reason
		}
	case "a":
		addrs, res, reason := ev.lookupIP(target)
		if res != "" {
			return false, res, reason
		}
		return ev.anyInCIDR(addrs, d), "", ""
	case "mx":
		mxs, err := ev.r.LookupMX(ev.ctx, target)
		if err != nil {
			if notFound(err) {
				res, reason := ev.void()
				return false, res, reason
			}
			return false, SPFTemperror, "mx " + target + ": " + err.Error()
		}
		if len(mxs) > maxMXOrPTR {
			return false, SPFPermerror, fmt.Sprintf("mx %s: more than %d MX records", target, maxMXOrPTR)
		}
		for _, mx := range mxs {
			if mx.Host == "" {
				continue
			}
			addrs, err := ev.r.LookupIP(ev.ctx, mx.Host, ev.ip.Is6())
			if err != nil && !notFound(err) {
				return false, SPFTemperror, "mx host " + mx.Host + ": " + err.Error()
			}
			if ev.anyInCIDR(addrs, d) {
				return true, "", ""
			}
		}
		return false, "", ""
	case "ptr":
		names, err := ev.r.LookupPTR(ev.ctx, ev.ip)
		if err != nil {
			if notFound(err) {
				res, reason := ev.void()
				return false, res, reason
			}
			return false, "", "" // a PTR failure is a non-match (section 5.5)
		}
		for i, n := range names {
			if i >= maxMXOrPTR {
				break
			}
			addrs, err := ev.r.LookupIP(ev.ctx, n, ev.ip.Is6())
			if err != nil || !slices.Contains(addrs, ev.ip) {
				continue
			}
			if n == target || strings.HasSuffix(n, "."+target) {
				return true, "", ""
			}
		}
		return false, "", ""
	case "exists":
		addrs, err := ev.r.LookupIP(ev.ctx, target, false)
		if err != nil {
			if notFound(err) {
				res, reason := ev.void()
				return false, res, reason
			}
			return false, SPFTemperror, "exists " + target + ": " + err.Error()
		}
		return len(addrs) > 0, "", ""
	}
	return false, SPFPermerror, "unknown mechanism " + d.Mechanism
}

func (ev *evaluation) lookupIP(name string) ([]netip.Addr, SPFResult, string) {
	addrs, err := ev.r.LookupIP(ev.ctx, name, ev.ip.Is6())
	if err != nil {
		if notFound(err) {
			res, reason := ev.void()
			return nil, res, reason
		}
		return nil, SPFTemperror, name + ": " + err.Error()
	}
	return addrs, "", ""
}

func (ev *evaluation) anyInCIDR(addrs []netip.Addr, d Directive) bool {
	bits := d.CIDR4
	if ev.ip.Is6() {
		bits = d.CIDR6
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() != ev.ip.Is4() {
			continue
		}
		if bits < 0 {
			if a == ev.ip {
				return true
			}
			continue
		}
		if p, err := a.Prefix(bits); err == nil && p.Contains(ev.ip) {
			return true
		}
	}
	return false
}

// String writes the directive back in record syntax.
func (d Directive) String() string {
	var b strings.Builder
	if d.Qualifier != '+' {
		b.WriteByte(d.Qualifier)
	}
	b.WriteString(d.Mechanism)
	switch d.Mechanism {
	case "ip4", "ip6":
		b.WriteString(":" + d.Net.String())
		return b.String()
	}
	if d.Domain != "" {
		b.WriteString(":" + d.Domain)
	}
	if d.CIDR4 >= 0 {
		fmt.Fprintf(&b, "/%d", d.CIDR4)
	}
	if d.CIDR6 >= 0 {
		fmt.Fprintf(&b, "//%d", d.CIDR6)
	}
	return b.String()
}

// SPFAnalysis is the static view of a domain's SPF policy: its record and
// the worst-case number of DNS-querying terms, includes and redirects
// followed.
type SPFAnalysis struct {
	Record string
	// Result is "" for a usable record, else none, permerror or temperror.
	Result SPFResult
	Reason string
	// Lookups counts every DNS-querying term reachable from the record,
	// the most an evaluation can use; above MaxLookups some evaluations
	// end in permerror.
	Lookups int
	// Notes are smaller findings: +all, ?all, ptr, no all/redirect.
	Notes []string
	// AllQualifier is the qualifier of the top record's "all", 0 if none.
	AllQualifier byte
}

// AnalyzeSPF fetches and parses domain's SPF record and walks its includes
// and redirects to count DNS-querying terms.
func AnalyzeSPF(ctx context.Context, r Resolver, domain string) SPFAnalysis {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	txt, res, err := FindSPF(ctx, r, domain)
	a := SPFAnalysis{Record: txt, Result: res}
	if err != nil {
		a.Reason = err.Error()
	}
	if res != "" {
		return a
	}
	rec, err := ParseSPF(txt)
	if err != nil {
		a.Result, a.Reason = SPFPermerror, err.Error()
		return a
	}
	for _, d := range rec.Directives {
		switch {
		case d.Mechanism == "all":
			a.AllQualifier = d.Qualifier
		case d.Mechanism == "ptr":
			a.Notes = append(a.Notes, "uses the ptr mechanism, which RFC 7208 section 5.5 says not to use")
		}
	}
	if a.AllQualifier == 0 && rec.Redirect == "" {
		a.Notes = append(a.Notes, "has neither all nor redirect, so unmatched senders get neutral")
	}
	w := walker{ctx: ctx, r: r, onPath: map[string]bool{domain: true}}
	w.walk(domain, rec, 0)
	a.Lookups = w.lookups
	if w.err != "" && a.Result == "" {
		a.Result, a.Reason = w.errResult, w.err
	}
	if a.Result == "" && a.Lookups > MaxLookups {
		a.Result = SPFPermerror
		a.Reason = fmt.Sprintf("%d DNS-querying terms reachable, more than the limit of %d", a.Lookups, MaxLookups)
	}
	return a
}

type walker struct {
	ctx       context.Context
	r         Resolver
	onPath    map[string]bool // the record and the includes leading to the one walked
	lookups   int
	err       string
	errResult SPFResult
}

func (w *walker) fail(res SPFResult, reason string) {
	if w.err == "" {
		w.err, w.errResult = reason, res
	}
}

func (w *walker) walk(domain string, rec SPFRecord, depth int) {
	if depth > MaxLookups || w.lookups > 3*MaxLookups {
		return
	}
	env := macroEnv{ip: netip.IPv4Unspecified(), sender: "postmaster@" + domain, domain: domain, helo: domain}
	follow := func(spec, what string) {
		if strings.Contains(spec, "%{i") || strings.Contains(spec, "%{I") || strings.Contains(spec, "%{s") || strings.Contains(spec, "%{l") {
			return // depends on the connecting IP or sender: cannot be walked statically
		}
		target, err := env.expand(spec)
		if err != nil {
			w.fail(SPFPermerror, domain+": "+what+": "+err.Error())
			return
		}
		target = strings.ToLower(target)
		if w.onPath[target] {
			w.fail(SPFPermerror, what+":"+target+" loops back to a record that includes it")
			return
		}
		txt, res, err := FindSPF(w.ctx, w.r, target)
		switch {
		case res == SPFNone:
			w.fail(SPFPermerror, what+":"+target+" has no SPF record")
			return
		case res != "":
			reason := what + ":" + target
			if err != nil {
				reason += ": " + err.Error()
			}
			w.fail(res, reason)
			return
		}
		sub, err := ParseSPF(txt)
		if err != nil {
			w.fail(SPFPermerror, what+":"+target+": "+err.Error())
			return
		}
		w.onPath[target] = true
		w.walk(target, sub, depth+1)
		delete(w.onPath, target)
	}
	for _, d := range rec.Directives {
		switch d.Mechanism {
		case "all", "ip4", "ip6":
			continue
		}
		w.lookups++
		if d.Mechanism == "include" {
			follow(d.Domain, "include")
		}
	}
	if rec.Redirect != "" {
		w.lookups++
		follow(rec.Redirect, "redirect")
	}
}
