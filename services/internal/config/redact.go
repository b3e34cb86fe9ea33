package config

import (
	"net/url"
	"strings"
)

// RedactURLs hides the credentials a URL, or a comma-separated list of
// URLs (nats.url), can carry: the whole user info ("nats://user:pass@h",
// and a token alone in the user part, "nats://token@h") and the values of
// query parameters whose name suggests a credential (token, key, secret,
// password, signature, auth, …). Anything else, and text that is not a
// URL, is returned unchanged. A part that looks like a URL with user info
// but does not parse is replaced whole.
func RedactURLs(s string) string {
	if !strings.Contains(s, "//") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactURL(p)
	}
	return strings.Join(parts, ",")
}

func redactURL(p string) string {
	// prefix is the scheme and "//" (or "//" alone: a URL relative to its
	// scheme), rest the authority and what follows.
	var prefix, rest string
	if i := strings.Index(p, "://"); i >= 0 {
		prefix, rest = p[:i+3], p[i+3:]
	} else if trimmed := strings.TrimLeft(p, " "); strings.HasPrefix(trimmed, "//") {
		prefix, rest = p[:len(p)-len(trimmed)+2], trimmed[2:]
	} else {
		return p
	}
	u, err := url.Parse(strings.TrimSpace(p))
	if err != nil {
		if strings.ContainsAny(rest, "@?") {
			return redacted
		}
		return p
	}
	// Rebuilt by hand rather than with u.String(), which would
	// percent-encode the brackets of the marker.
	out := p
	if u.User != nil {
		at := strings.LastIndex(rest[:authorityEnd(rest)], "@")
		if at < 0 {
			return redacted
		}
		out = prefix + redacted + "@" + rest[at+1:]
	}
	if u.RawQuery == "" {
		return out
	}
	base, query, _ := strings.Cut(out, "?")
	query, fragment, hasFragment := strings.Cut(query, "#")
	params := strings.Split(query, "&")
	for i, kv := range params {
		name, _, _ := strings.Cut(kv, "=")
		if decoded, err := url.QueryUnescape(name); err == nil {
			name = decoded
		}
		if credentialName(name) {
			params[i] = strings.SplitN(kv, "=", 2)[0] + "=" + redacted
		}
	}
	out = base + "?" + strings.Join(params, "&")
	if hasFragment {
		out += "#" + fragment
	}
	return out
}

// authorityEnd is where the authority (user info and host) of a URL
// without its scheme ends: at the first '/', '?' or '#'.
func authorityEnd(rest string) int {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return i
	}
	return len(rest)
}

// credentialWords are what the name of a query parameter holding a
// credential contains, lower-cased.
var credentialWords = []string{"token", "key", "secret", "pass", "pwd", "sig", "auth", "cred", "session"}

func credentialName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
