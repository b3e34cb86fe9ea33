package bounceclass

import "fmt"

// matcher finds, in one pass over a text, which of a fixed set of patterns
// occur in it: an Aho-Corasick automaton compiled to a dense DFA over byte
// classes (every byte that occurs in some pattern has its own class, all other
// bytes share class 0). Texts are normalised while they are fed in (see
// normalizedBytes), so patterns are written in the normalised form: lower
// case, single spaces.
type matcher struct {
	class  [256]uint8
	nclass int
	// next[state*nclass+class] is the next state. States fit in 16 bits,
	// which halves the table (it is the working set of scan).
	next     []uint16
	hasOut   []uint64  // bit per state: out[state] is not empty
	out      [][]int32 // pattern ids ending at each state (fail chain merged)
	patterns []string
}

const maxPatterns = 64 * matchWords

// matchWords is the size of the per-call bitset of matched patterns.
const matchWords = 32

type matchSet [matchWords]uint64

func (m *matchSet) has(id int32) bool { return m[id>>6]&(1<<(uint(id)&63)) != 0 }
func (m *matchSet) set(id int32)      { m[id>>6] |= 1 << (uint(id) & 63) }

func newMatcher(patterns []string) (*matcher, error) {
	if len(patterns) > maxPatterns {
		return nil, fmt.Errorf("bounceclass: %d patterns, at most %d", len(patterns), maxPatterns)
	}
	m := &matcher{patterns: patterns}
	// Byte classes.
	n := 1
	for _, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("bounceclass: empty pattern")
		}
		for i := 0; i < len(p); i++ {
			if m.class[p[i]] == 0 {
				if n == 255 {
					return nil, fmt.Errorf("bounceclass: too many distinct bytes in patterns")
				}
				m.class[p[i]] = uint8(n)
				n++
			}
		}
	}
	m.nclass = n
	// Trie, built straight into the dense transition table: row s holds
	// state s's children (0 = no child; the root is never a child). A map
	// per node made this the bulk of a first Classify call (tens of ms for
	// ~20,000 states). The trie has at most one state per pattern byte.
	total := 1
	for _, p := range patterns {
		total += len(p)
	}
	next := make([]uint16, 0, min(total, 1<<16)*n)
	next = append(next, make([]uint16, n)...)
	var outs [][]int32 // pattern ids ending at each state (trie only)
	outs = append(outs, nil)
	for id, p := range patterns {
		s := 0
		for i := 0; i < len(p); i++ {
			c := int(m.class[p[i]])
			nx := int(next[s*n+c])
			if nx == 0 {
				nx = len(outs)
				if nx >= 1<<16 {
					return nil, fmt.Errorf("bounceclass: more than %d automaton states", 1<<16)
				}
				next = append(next, make([]uint16, n)...)
				outs = append(outs, nil)
				next[s*n+c] = uint16(nx)
			}
			s = nx
		}
		outs[s] = append(outs[s], int32(id))
	}
	states := len(outs)
	// BFS for failure links, turning each row into full transitions. When
	// state s is dequeued its row still holds only its trie children, and
	// its failure state (shallower) is already complete.
	fail := make([]uint16, states)
	m.out = make([][]int32, states)
	queue := make([]int32, 0, states)
	for c := 0; c < n; c++ {
		if nx := next[c]; nx != 0 {
			fail[nx] = 0
			queue = append(queue, int32(nx))
		}
	}
	m.out[0] = outs[0]
	for len(queue) > 0 {
		s := int(queue[0])
		queue = queue[1:]
		f := int(fail[s])
		if len(outs[s]) > 0 || len(m.out[f]) > 0 {
			out := append([]int32(nil), outs[s]...)
			m.out[s] = append(out, m.out[f]...)
		}
		row, frow := next[s*n:s*n+n], next[f*n:f*n+n]
		for c := 0; c < n; c++ {
			if nx := row[c]; nx != 0 {
				fail[nx] = frow[c]
				queue = append(queue, int32(nx))
			} else {
				row[c] = frow[c]
			}
		}
	}
	m.next = next
	m.hasOut = make([]uint64, (states+63)/64)
	for st, o := range m.out {
		if len(o) > 0 {
			m.hasOut[st>>6] |= 1 << (uint(st) & 63)
		}
	}
	return m, nil
}

// scan feeds the normalised text to the automaton and sets the ids of every
// pattern found. The normalisation of normalizedBytes is done inline here
// (this loop is the hot path of Classify); TestMatcherAgainstNaive checks the
// two agree.
func (m *matcher) scan(text string, found *matchSet) {
	next, out, hasOut, class := m.next, m.out, m.hasOut, &m.class
	n := m.nclass
	s := 0
	step := func(c byte) {
		s = int(next[s*n+int(class[c])])
		if hasOut[s>>6]&(1<<(uint(s)&63)) != 0 {
			for _, id := range out[s] {
				found.set(id)
			}
		}
	}
	step(' ')
	space := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0 || c == '\v' || c == '\f':
			if space {
				continue
			}
			space = true
			c = ' '
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x80 && (text[i+2] == 0x98 || text[i+2] == 0x99):
			i += 2
			c = '\''
		case c >= '2' && c <= '5' && space && i > 0 && i+4 < len(text) && text[i+3] == '-' &&
			isDigit(text[i+1]) && isDigit(text[i+2]):
			i = skipContinuation(text, i) - 1
			continue
		}
		if c != ' ' {
			space = false
		}
		s = int(next[s*n+int(class[c])])
		if hasOut[s>>6]&(1<<(uint(s)&63)) != 0 {
			for _, id := range out[s] {
				found.set(id)
			}
		}
	}
	step(' ')
}

// skipContinuation returns the index after a "550-5.7.1 " continuation
// prefix that starts at text[i].
func skipContinuation(text string, i int) int {
	j := i + 4
	if _, m := statusAt(text, j); m > 0 {
		return j + m
	}
	for j < len(text) && text[j] == ' ' {
		j++
	}
	return j
}

// normalizedBytes calls emit with the normalised form of text: ASCII letters
// lower-cased, runs of white space (and NUL) as one space, typographic
// apostrophes (U+2018, U+2019) as "'", and the "550-5.7.1 " prefixes of the
// continuation lines of multi-line SMTP replies dropped. A leading and a
// trailing space are added by the caller so " word " patterns also match at
// the edges.
func normalizedBytes(text string, emit func(byte)) {
	space := true // the caller emitted a leading space
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0 || c == '\v' || c == '\f':
			if space {
				continue
			}
			space = true
			emit(' ')
			continue
		case c == 0xE2 && i+2 < len(text) && text[i+1] == 0x80 && (text[i+2] == 0x98 || text[i+2] == 0x99):
			i += 2
			c = '\''
		case c >= '2' && c <= '5' && space && i > 0 && i+4 < len(text) && text[i+3] == '-' &&
			isDigit(text[i+1]) && isDigit(text[i+2]):
			// "550-5.7.1 " continuation prefix in the middle of a joined reply.
			i = skipContinuation(text, i) - 1
			continue
		}
		space = false
		emit(c)
	}
}
