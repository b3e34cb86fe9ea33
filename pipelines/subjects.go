package pipelines

import "strings"

// NATS subjects are dot-separated tokens; "*" matches exactly one token and
// ">" (only as the last token) matches one or more.

// Contains reports whether every subject matched by sub is also matched by
// pattern. Both may hold wildcards.
func Contains(pattern, sub string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(sub, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == ">" {
			return false
		}
		if pt != "*" && pt != s[i] {
			return false
		}
	}
	return len(p) == len(s)
}

// Overlaps reports whether some subject is matched by both a and b.
func Overlaps(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] == ">" || y[i] == ">" {
			return true
		}
		if x[i] != "*" && y[i] != "*" && x[i] != y[i] {
			return false
		}
	}
	return len(x) == len(y)
}
