package mailhdr

import (
	"strings"
)

// AuthResults is one Authentication-Results field.
type AuthResults struct {
	// AuthServID is the authserv-id; empty when the writer omitted it
	// (Microsoft).
	AuthServID string
	Methods    []Method
}

// Method is one "method=result" clause with its properties.
type Method struct {
	// Name is the method in lower case: spf, dkim, dmarc, arc, compauth, ...
	Name string
	// Result is the result in lower case: pass, fail, none, softfail, ...
	Result string
	// Props are the ptype.property=value pairs (header.d, smtp.mailfrom)
	// and plain key=value pairs (reason, action), keys in lower case; the
	// first of a repeated key wins.
	Props map[string]string
	// Comment joins the clause's parenthesised comments.
	Comment string
}

// Prop returns a property value, "" when absent.
func (m Method) Prop(key string) string { return m.Props[strings.ToLower(key)] }

// ParseAuthResults reads an Authentication-Results value leniently. It
// never fails: what cannot be read is left out.
func ParseAuthResults(v string) AuthResults {
	var ar AuthResults
	if len(v) > 16<<10 {
		v = v[:16<<10]
	}
	clauses := splitClauses(v)
	for i, c := range clauses {
		toks, comment := tokens(c)
		if len(toks) == 0 {
			continue
		}
		if i == 0 && !strings.Contains(toks[0], "=") {
			// authserv-id [version]; "none" may follow alone.
			ar.AuthServID = toks[0]
			toks = toks[1:]
			if len(toks) > 0 && !strings.Contains(toks[0], "=") {
				toks = toks[1:] // version
			}
			if len(toks) == 0 {
				continue
			}
		}
		name, result, ok := strings.Cut(toks[0], "=")
		if !ok || name == "" {
			continue
		}
		if j := strings.IndexByte(name, '/'); j > 0 {
			name = name[:j] // method version, e.g. dkim/1
		}
		m := Method{Name: strings.ToLower(name), Result: strings.ToLower(result), Props: map[string]string{}, Comment: comment}
		for _, tok := range toks[1:] {
			k, val, ok := strings.Cut(tok, "=")
			if !ok || k == "" {
				continue
			}
			k = strings.ToLower(k)
			if _, dup := m.Props[k]; !dup {
				m.Props[k] = val
			}
		}
		ar.Methods = append(ar.Methods, m)
	}
	return ar
}

// First returns the first method called name.
func (ar AuthResults) First(name string) (Method, bool) {
	for _, m := range ar.Methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// All returns every method called name.
func (ar AuthResults) All(name string) []Method {
	var out []Method
	for _, m := range ar.Methods {
		if m.Name == name {
			out = append(out, m)
		}
	}
	return out
}

// DKIMDomain is the signing domain a dkim method checked: header.d, or
// the domain of header.i.
func (m Method) DKIMDomain() string {
	if d := m.Prop("header.d"); d != "" {
		return strings.ToLower(d)
	}
	if i := m.Prop("header.i"); i != "" {
		if _, d, ok := strings.Cut(i, "@"); ok {
			return strings.ToLower(d)
		}
		return strings.ToLower(i)
	}
	return ""
}

// DMARCPolicy is the policy a dmarc method reports: p= in the comment
// (Gmail), policy.dmarc (RFC 7489 registry) or action (Microsoft), in lower
// case.
func (m Method) DMARCPolicy() string {
	for _, f := range strings.Fields(m.Comment) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "p") {
			return strings.ToLower(strings.Trim(v, ",;)"))
		}
	}
	if p := m.Prop("policy.dmarc"); p != "" {
		return strings.ToLower(p)
	}
	return strings.ToLower(m.Prop("action"))
}

// splitClauses splits at ";" outside quotes and comments.
func splitClauses(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case c == '\\' && depth > 0:
			i++
		case c == ';' && depth == 0:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// tokens splits a clause into whitespace-separated tokens outside comments,
// with "a = b" joined to "a=b" and quotes removed from values, and returns
// the comments joined by spaces.
func tokens(c string) ([]string, string) {
	var toks, comments []string
	var cur, com strings.Builder
	depth, quoted := 0, false
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case depth > 0:
			switch ch {
			case '(':
				depth++
				com.WriteByte(ch)
			case ')':
				depth--
				if depth == 0 {
					comments = append(comments, strings.TrimSpace(com.String()))
					com.Reset()
				} else {
					com.WriteByte(ch)
				}
			case '\\':
				if i+1 < len(c) {
					i++
					com.WriteByte(c[i])
				}
			default:
				com.WriteByte(ch)
			}
		case quoted:
			switch ch {
			case '"':
				quoted = false
			case '\\':
				if i+1 < len(c) {
					i++
					cur.WriteByte(c[i])
				}
			default:
				cur.WriteByte(ch)
			}
		case ch == '"':
			quoted = true
		case ch == '(':
			flush()
			depth = 1
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
			flush()
		case ch == '=':
			// "a = b": glue to the previous token and the next one.
			if cur.Len() == 0 && len(toks) > 0 && !strings.Contains(toks[len(toks)-1], "=") {
				cur.WriteString(toks[len(toks)-1])
				toks = toks[:len(toks)-1]
			}
			cur.WriteByte('=')
			for i+1 < len(c) && (c[i+1] == ' ' || c[i+1] == '\t') {
				i++
			}
		default:
			cur.WriteByte(ch)
		}
	}
	flush()
	if depth > 0 && com.Len() > 0 {
		comments = append(comments, strings.TrimSpace(com.String()))
	}
	return toks, strings.Join(comments, " ")
}
