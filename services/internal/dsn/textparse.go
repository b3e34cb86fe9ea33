package dsn

import (
	"regexp"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// Limits on what is taken as one recipient's error text.
const (
	maxBlockLines  = 40
	maxDiagnostic  = 2000
	maxTrailParas  = 3
	maxScanLines   = 2000
	maxNoticeBytes = 256 << 10
	// maxSentence bounds the lines searched for an address in a sentence.
	maxSentence = 1000
)

// hit is a line of the notice that starts with an address.
type hit struct {
	line      int
	addr      string
	rest      string
	labelled  bool
	indent    int
	expanded  string // "(expanded from <x>)"
	strongEnd bool   // the rest already holds error text
}

var reExpanded = regexp.MustCompile(`(?i)^\(\s*(?:expanded|generated) from\s*<?([^>\s)]+)>?\s*\)\s*[:.]?\s*`)

func indentOf(l string) int {
	n := 0
	for n < len(l) && (l[n] == ' ' || l[n] == '\t') {
		n++
	}
	return n
}

// findHits returns the lines of the notice that start with a recipient
// address not in excl.
func findHits(lines []string, excl map[string]bool) []hit {
	var hits []hit
	for i, l := range lines {
		if i >= maxScanLines {
			break
		}
		if len(l) > 600 || !strings.Contains(l, "@") {
			continue
		}
		a, rest, labelled, ok := leadAddress(l)
		if !ok || excl[normAddr(a)] {
			continue
		}
		h := hit{line: i, addr: a, rest: rest, labelled: labelled, indent: indentOf(l)}
		if m := reExpanded.FindStringSubmatch(rest); m != nil {
			h.expanded = strings.Trim(m[1], "<>")
			h.rest = strings.TrimSpace(rest[len(m[0]):])
		}
		hits = append(hits, h)
	}
	return hits
}

// blockAfter returns the lines that continue the recipient line at index
// i: indented deeper than it, or (when it is not indented) every line up
// to a blank line, ending at the next recipient line or separator.
func blockAfter(lines []string, i int, isHit map[int]bool) []string {
	var out []string
	base := indentOf(lines[i])
	for j := i + 1; j < len(lines) && len(out) < maxBlockLines; j++ {
		l := lines[j]
		if strings.TrimSpace(l) == "" {
			break
		}
		if isHit[j] {
			break
		}
		if base > 0 && indentOf(l) < base {
			break
		}
		if isRule(l) {
			break
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// isRule reports a line of dashes, equals or stars (a section border).
func isRule(l string) bool {
	t := strings.TrimSpace(l)
	if len(t) < 3 {
		return false
	}
	n := 0
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '-', '=', '*', '_', '#', '+', '|':
			n++
		}
	}
	return n*10 >= len(t)*8
}

// isHeading reports a decorated section heading ("----- Transcript of
// session follows -----", "*** Error ***"): it starts a section rather
// than saying anything itself.
func isHeading(l string) bool {
	t := strings.TrimSpace(l)
	return len(t) >= 4 && (strings.HasPrefix(t, "--") || strings.HasPrefix(t, "==") ||
		strings.HasPrefix(t, "**") || strings.HasPrefix(t, "##"))
}

// paragraph is a run of non-blank lines of the notice.
type paragraph struct {
	start, end int // line indexes, end exclusive
	text       string
	// Set by noticeIndex.paragraphsAfter, which shares its results
	// between recipients: looksLikeError(text) and hasCode(text).
	isError, coded bool
}

// paragraphsAfter returns up to n paragraphs after line i, skipping
// recipient lines, and stopping at a recipient line once some text was
// collected.
func paragraphsAfter(lines []string, i int, isHit map[int]bool, n int) []paragraph {
	var out []paragraph
	var cur []string
	start := -1
	flush := func(end int) {
		if len(cur) > 0 {
			out = append(out, paragraph{start: start, end: end, text: joinDiag(cur)})
		}
		cur, start = nil, -1
	}
	for j := i + 1; j < len(lines) && len(out) < n; j++ {
		l := strings.TrimSpace(lines[j])
		if isHit[j] {
			flush(j)
			if len(out) > 0 {
				break
			}
			continue
		}
		if l == "" || isRule(l) || isHeading(l) {
			flush(j)
			continue
		}
		if start < 0 {
			start = j
		}
		cur = append(cur, l)
	}
	if len(out) < n {
		flush(len(lines))
	}
	return out
}

// paragraphsBefore returns up to n paragraphs before line i, nearest
// first; the lines right above i (same paragraph) come first.
func paragraphsBefore(lines []string, i int, isHit map[int]bool, n int) []paragraph {
	var out []paragraph
	var cur []string
	end := -1
	flush := func(start int) {
		if len(cur) > 0 {
			for a, z := 0, len(cur)-1; a < z; a, z = a+1, z-1 {
				cur[a], cur[z] = cur[z], cur[a]
			}
			out = append(out, paragraph{start: start, end: end, text: joinDiag(cur)})
		}
		cur, end = nil, -1
	}
	for j := i - 1; j >= 0 && len(out) < n; j-- {
		l := strings.TrimSpace(lines[j])
		if isHit[j] {
			flush(j + 1)
			break
		}
		if l == "" || isRule(l) || isHeading(l) {
			flush(j + 1)
			continue
		}
		if end < 0 {
			end = j + 1
		}
		cur = append(cur, l)
	}
	if len(out) < n {
		flush(0)
	}
	return out
}

// noticeIndex is what the searches for each recipient's text share, built
// once per notice: with it, a recipient costs work near its own lines,
// never a pass over the whole notice (a notice of a thousand recipients
// was read a thousand times).
type noticeIndex struct {
	lines []string
	isHit map[int]bool
	// nextText[j] is the first line at or after j that can start a
	// paragraph (not a recipient line, blank, a rule or a heading), or
	// len(lines).
	nextText []int
	// after holds paragraphsAfter's results by the line they start from.
	after map[[2]int][]paragraph
	// transcript are the session transcript lines (">>> RCPT TO:<...>"),
	// trimmed, at most maxTranscriptLines of them, and lower-cased.
	transcript, transcriptLower []string
}

// maxTranscriptLines bounds the transcript lines searched for each
// recipient (a real transcript has a few per recipient).
const maxTranscriptLines = 4 * maxRecipients

func newNoticeIndex(lines []string, isHit map[int]bool) *noticeIndex {
	ix := &noticeIndex{lines: lines, isHit: isHit, nextText: make([]int, len(lines)+1), after: map[[2]int][]paragraph{}}
	ix.nextText[len(lines)] = len(lines)
	for j := len(lines) - 1; j >= 0; j-- {
		l := strings.TrimSpace(lines[j])
		if isHit[j] || l == "" || isRule(l) || isHeading(l) {
			ix.nextText[j] = ix.nextText[j+1]
		} else {
			ix.nextText[j] = j
		}
		if strings.HasPrefix(l, ">>>") {
			ix.transcript = append(ix.transcript, l)
		}
	}
	// Collected last line first.
	slices.Reverse(ix.transcript)
	if len(ix.transcript) > maxTranscriptLines {
		ix.transcript = ix.transcript[:maxTranscriptLines]
	}
	for _, t := range ix.transcript {
		ix.transcriptLower = append(ix.transcriptLower, strings.ToLower(t))
	}
	return ix
}

// paragraphsAfter is paragraphsAfter(ix.lines, i, ix.isHit, n), each
// result computed once. Until the first paragraph starts, paragraphsAfter
// only skips lines (recipient lines, blank lines, rules, headings), so its
// result depends on where that paragraph starts, not on i.
func (ix *noticeIndex) paragraphsAfter(i, n int) []paragraph {
	k := len(ix.lines)
	if i+1 >= 0 && i+1 < len(ix.lines) {
		k = ix.nextText[i+1]
	}
	key := [2]int{k, n}
	if ps, ok := ix.after[key]; ok {
		return ps
	}
	ps := paragraphsAfter(ix.lines, k-1, ix.isHit, n)
	for i := range ps {
		ps[i].isError, ps[i].coded = looksLikeError(ps[i].text), hasCode(ps[i].text)
	}
	ix.after[key] = ps
	return ps
}

// joinClipped joins texts with spaces, up to a little more than
// maxDiagnostic bytes (the diagnostic is clipped to it anyway): a long
// paragraph shared by many recipients is not copied for each.
func joinClipped(texts []string) string {
	var sb strings.Builder
	for _, t := range texts {
		if sb.Len() > maxDiagnostic {
			break
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t[:min(len(t), maxDiagnostic+1)])
	}
	return sb.String()
}

// nearbyError finds the error text of a recipient whose own line and block
// hold none: the first paragraphs after it that look like an error (and
// the one that follows such a paragraph's introduction), else the nearest
// one before it that does, else the nearest paragraph after it.
func nearbyError(ix *noticeIndex, line, after int) string {
	lines, isHit := ix.lines, ix.isHit
	if line < 0 {
		line, after = -1, -1
	}
	if line >= 0 {
		// The lines right above the address in its own paragraph
		// ("Reason: mailbox full" then "Address: x@y").
		if prev := paragraphsBefore(lines, line, isHit, 1); len(prev) > 0 && prev[0].end == line && looksLikeError(prev[0].text) {
			return prev[0].text
		}
	}
	next := ix.paragraphsAfter(after, maxTrailParas+3)
	var picked []string
	for _, p := range next {
		if p.isError {
			picked = append(picked, p.text)
			if p.coded || len(picked) == 2 {
				break
			}
		} else if len(picked) > 0 {
			break
		}
	}
	if len(picked) > 0 {
		return joinClipped(picked)
	}

	if line >= 0 {
		for _, p := range paragraphsBefore(lines, line, isHit, maxTrailParas) {
			if looksLikeError(p.text) {
				return p.text
			}
		}
		if prev := paragraphsBefore(lines, line, isHit, 1); len(prev) > 0 && prev[0].end == line {
			// The line right above the address, with nothing between.
			return prev[0].text
		}
	}
	var all []string
	for _, p := range next {
		all = append(all, p.text)
	}
	return joinClipped(all)
}

// hasErrorText reports whether s holds more than an address, a date or
// punctuation: some words of an error.
func hasErrorText(s string) bool {
	letters := 0
	for _, w := range strings.Fields(s) {
		if strings.Contains(w, "@") {
			continue
		}
		for i := 0; i < len(w); i++ {
			c := w[i] | 0x20
			if c >= 'a' && c <= 'z' || w[i] >= 0x80 {
				letters++
			}
		}
	}
	return letters >= 8
}

// looksLikeError reports whether s reads like an error: it has a reply or
// status code, or a word bounces use for errors and is not one of the
// stock sentences bounces open with.
func looksLikeError(s string) bool {
	if hasCode(s) {
		return true
	}
	lower := lowerASCII(s)
	if !anyPhrase(lowerASCII(stripAddresses(s)), errorWordPhrases) {
		return false
	}
	start := strings.TrimLeftFunc(lower, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '*' || r >= 0x80)
	})
	for _, p := range boilerplatePhrases {
		if strings.HasPrefix(start, p) {
			return false
		}
	}
	return true
}

var reOnDate = regexp.MustCompile(`(?i)^on\s+(?:mon|tue|wed|thu|fri|sat|sun|\d)[^:]*\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]m)?\s*[-+]?\d{0,4}\s*`)

// readText finds the failed recipients of a bounce that has no usable
// delivery-status part, from its text.
func (b *Bounce) readText(h rawmail.Header, notice string, excl map[string]bool) {
	if len(notice) > maxNoticeBytes {
		notice = notice[:maxNoticeBytes]
	}
	lines := rawmail.Lines(notice)
	hits := dropContinuations(lines, findHits(lines, excl))
	isHit := map[int]bool{}
	for _, x := range hits {
		isHit[x.line] = true
	}

	var cands []cand
	seen := map[string]int{}
	full := func() bool { return len(cands) >= maxRecipients }
	for i := range hits {
		k := normAddr(hits[i].addr)
		c := cand{addr: hits[i].addr, hit: &hits[i], line: hits[i].line}
		if j, dup := seen[k]; dup {
			// The same address on several lines ("To: x" in a summary,
			// then "x: error"): keep the line with the most error text.
			if hitScore(lines, &hits[i], isHit) > hitScore(lines, cands[j].hit, isHit) {
				cands[j] = c
			}
			continue
		}
		seen[k] = len(cands)
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		// X-Failed-Recipients (Exim and others) when the text has no
		// recipient line.
		var all []hit
		if h.Has("X-Failed-Recipients") {
			all = dropContinuations(lines, findHits(lines, nil))
		}
		for _, v := range h.Values("X-Failed-Recipients") {
			for _, a := range findAddresses(v) {
				if full() {
					break
				}
				k := normAddr(a)
				if _, dup := seen[k]; dup {
					continue
				}
				seen[k] = len(cands)
				c := cand{addr: a, line: -1, inSentence: true}
				// Its own line, even when it is the bounce's own address
				// (anonymised samples, self-addressed mail).
				for _, x := range all {
					if normAddr(x.addr) == k {
						x := x
						c.hit, c.line, c.inSentence = &x, x.line, false
						isHit[x.line] = true
						break
					}
				}
				if c.hit == nil && len(cands) < 20 {
					for i, l := range lines {
						if strings.Contains(lowerASCII(l), k) {
							c.line = i
							break
						}
					}
				}
				cands = append(cands, c)
			}
		}
	}
	if len(cands) == 0 {
		// An address in a sentence ("could not deliver your mail to
		// <x>"): first in angle brackets, then bare.
		for _, bracketed := range []bool{true, false} {
			for i, l := range lines {
				if len(l) > maxSentence || anyPhrase(lowerASCII(l), helpLinePhrases) {
					continue
				}
				for _, a := range findAddresses(l) {
					k := normAddr(a)
					if _, dup := seen[k]; dup || excl[k] || isDaemonAddr(k) {
						continue
					}
					if bracketed && !strings.Contains(l, "<"+a+">") {
						continue
					}
					seen[k] = len(cands)
					cands = append(cands, cand{addr: a, line: i, inSentence: true})
				}
			}
			if len(cands) > 0 {
				break
			}
		}
		if len(cands) > 3 {
			cands = cands[:1]
		}
	}
	if len(cands) == 0 && len(excl) > 0 {
		// Someone bounced to themselves: the sender is the recipient.
		if self := dropContinuations(lines, findHits(lines, nil)); len(self) > 0 && len(self) <= 4 {
			hits = self
			for i := range hits {
				isHit[hits[i].line] = true
			}
			for i := range hits {
				k := normAddr(hits[i].addr)
				if _, dup := seen[k]; !dup {
					seen[k] = len(cands)
					cands = append(cands, cand{addr: hits[i].addr, hit: &hits[i], line: hits[i].line})
				}
			}
		}
	}
	if len(cands) == 0 && b.Original != nil {
		// Last resort: the returned message's recipient.
		for _, a := range findAddresses(b.Original.To) {
			if !excl[normAddr(a)] {
				cands = append(cands, cand{addr: a, line: -1, inSentence: true})
				break
			}
		}
	}
	action := ActionFailed
	if anyPhrase(lowerASCII(notice), stillTryingPhrases) {
		action = ActionDelayed
	}
	ix := newNoticeIndex(lines, isHit)
	for _, c := range cands {
		r := Recipient{Recipient: c.addr, Action: action}
		var parts []string
		after := c.line
		if c.hit != nil {
			if rest := reOnDate.ReplaceAllString(c.hit.rest, ""); rest != "" {
				parts = append(parts, rest)
			}
			r.OriginalRecipient = c.hit.expanded
			blk := blockAfter(lines, c.line, isHit)
			parts = append(parts, blk...)
			after = c.line + len(blk)
		} else if c.line >= 0 {
			blk := blockAfter(lines, c.line, isHit)
			after = c.line + len(blk)
			if own := joinDiag(append([]string{lines[c.line]}, blk...)); hasCode(own) {
				// "... rejected recipient <x> ...: [550 5.1.1 User unknown]"
				parts = append(parts, own)
			}
		}
		diag := joinDiag(parts)
		if !looksLikeError(diag) && (!hasErrorText(stripAddresses(diag)) || isFieldList(parts)) {
			// The recipient's own lines say nothing of an error (a
			// summary, or nothing at all): the error is nearby.
			if near := nearbyError(ix, c.line, after); near != "" {
				diag = near
			}
		}
		r.Diagnostic = clip(diag)
		r.context = contextOf(ix, c.line, after)
		if len(cands) == 1 {
			r.context = notice
		}
		b.Recipients = append(b.Recipients, r)
		if len(b.Recipients) >= maxRecipients {
			break
		}
	}
}

// isFieldList reports text that is mostly "Name: value" lines: a summary
// of the message (Subject, Sent, Size, ...) rather than an error.
func isFieldList(lines []string) bool {
	n := 0
	for _, l := range lines {
		if i := strings.IndexByte(l, ':'); i > 0 && i <= 30 && !strings.ContainsAny(l[:i], "<>@") {
			n++
		}
	}
	return len(lines) > 0 && n*2 >= len(lines)
}

// hitScore ranks recipient lines of one address: error text and codes
// count, a "To:" label (a summary of the original) counts against.
func hitScore(lines []string, x *hit, isHit map[int]bool) int {
	t := joinDiag(append([]string{x.rest}, blockAfter(lines, x.line, isHit)...))
	n := 0
	if hasCode(t) {
		n += 2
	}
	if hasErrorText(stripAddresses(t)) {
		n++
	}
	if x.labelled {
		n--
	}
	return n
}

// dropContinuations removes recipient lines that continue an earlier
// recipient's block: indented deeper than it with no blank line between
// (Exim repeats the address inside its error text).
func dropContinuations(lines []string, hits []hit) []hit {
	out := hits[:0]
	last := -1 // index into out of the recipient whose block may continue
	// Lines after the last kept recipient up to checked are known to hold
	// a blank line (blank) or not; each line is looked at once.
	checked, blank := 0, false
	for _, x := range hits {
		if last >= 0 && x.indent > out[last].indent {
			for ; !blank && checked < x.line; checked++ {
				blank = strings.TrimSpace(lines[checked]) == ""
			}
			if !blank {
				continue
			}
		}
		out = append(out, x)
		last = len(out) - 1
		checked, blank = x.line+1, false
	}
	return out
}

// contextOf is the text around a recipient used to find the SMTP command:
// its line and block, the rest of its paragraph when no other recipient
// is in it (wrapped lines may have lost their indent), and the session
// transcript commands (">>>" lines) that name it or come right before it.
func contextOf(ix *noticeIndex, from, to int) string {
	lines := ix.lines
	var sb strings.Builder
	if from < 0 {
		return ""
	}
	addr := ""
	if a, _, _, ok := leadAddress(lines[from]); ok {
		addr = normAddr(a)
	}
	// The nearest transcript command above the recipient line.
	for j := from - 1; j >= 0 && j >= from-12; j-- {
		if t := strings.TrimSpace(lines[j]); strings.HasPrefix(t, ">>>") {
			sb.WriteString(t)
			sb.WriteByte(' ')
			break
		}
	}
	pFrom, pTo := from, to
	for pFrom > 0 && strings.TrimSpace(lines[pFrom-1]) != "" && pFrom > to-maxBlockLines {
		pFrom--
	}
	for pTo+1 < len(lines) && strings.TrimSpace(lines[pTo+1]) != "" && pTo-pFrom < 2*maxBlockLines {
		pTo++
	}
	for j := pFrom; j <= pTo; j++ {
		if j >= from && j <= to {
			continue
		}
		if a, _, _, ok := leadAddress(lines[j]); ok && normAddr(a) != addr {
			// Another recipient shares the paragraph: keep to our lines.
			pFrom, pTo = from, to
			break
		}
	}
	for j := pFrom; j <= pTo && j < len(lines); j++ {
		sb.WriteString(lines[j])
		sb.WriteByte(' ')
	}
	if addr != "" {
		for i, t := range ix.transcriptLower {
			if strings.Contains(t, addr) {
				sb.WriteString(ix.transcript[i])
				sb.WriteByte(' ')
			}
		}
	}
	return sb.String()
}

// cand is a failed recipient found in text, with the line it is on (-1
// when none) and its recipient line, if it has one.
type cand struct {
	addr       string
	hit        *hit
	line       int
	inSentence bool
}

// isDaemonAddr reports the addresses that write bounces rather than
// receive them.
func isDaemonAddr(a string) bool {
	local := a
	if i := strings.IndexByte(a, '@'); i >= 0 {
		local = a[:i]
	}
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "noreply", "no-reply", "abuse", "hostmaster", "webmaster":
		return true
	}
	return false
}

// stripAddresses removes addresses (and the brackets around them) so that
// hasErrorText counts words only.
func stripAddresses(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var sb strings.Builder
	for _, w := range strings.Fields(s) {
		if strings.Contains(w, "@") {
			continue
		}
		sb.WriteString(w)
		sb.WriteByte(' ')
	}
	return sb.String()
}

// joinDiag joins text lines into one diagnostic with single spaces.
func joinDiag(parts []string) string {
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

func clip(s string) string {
	if len(s) <= maxDiagnostic {
		return s
	}
	s = s[:maxDiagnostic]
	// Do not cut a UTF-8 sequence.
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1]
	}
	return s
}

// enrichFromText completes DSN recipients from the human-readable part:
// a recipient without a diagnostic takes its block of text, and every
// recipient takes the text around it as context for the SMTP command.
func (b *Bounce) enrichFromText(notice string) {
	if notice == "" {
		return
	}
	if len(notice) > maxNoticeBytes {
		notice = notice[:maxNoticeBytes]
	}
	lines := rawmail.Lines(notice)
	hits := dropContinuations(lines, findHits(lines, nil))
	isHit := map[int]bool{}
	for _, x := range hits {
		isHit[x.line] = true
	}
	ix := newNoticeIndex(lines, isHit)
	for i := range b.Recipients {
		r := &b.Recipients[i]
		k, ko := normAddr(r.Recipient), normAddr(r.OriginalRecipient)
		var parts []string
		line, after := -1, -1
		for _, x := range hits {
			a, e := normAddr(x.addr), normAddr(x.expanded)
			if a == k || a == ko && ko != "" || e == k || ko != "" && e == ko {
				if x.rest != "" {
					parts = append(parts, reOnDate.ReplaceAllString(x.rest, ""))
				}
				blk := blockAfter(lines, x.line, isHit)
				parts = append(parts, blk...)
				line, after = x.line, x.line+len(blk)
				break
			}
		}
		r.context = contextOf(ix, line, after)
		if len(b.Recipients) == 1 {
			r.context = notice
		}
		if r.Diagnostic != "" && hasErrorText(stripAddresses(r.Diagnostic)) {
			continue
		}
		text := joinDiag(parts)
		if !looksLikeError(text) && (len(b.Recipients) == 1 || line >= 0) {
			if near := nearbyError(ix, line, after); near != "" {
				text = strings.TrimSpace(text + " " + near)
			}
		}
		if hasErrorText(stripAddresses(text)) {
			if r.Diagnostic != "" {
				text = r.Diagnostic + " " + text
			}
			r.Diagnostic = clip(text)
		}
	}
}
