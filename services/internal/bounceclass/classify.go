package bounceclass

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// Input is one remote reply or diagnostic text to classify.
type Input struct {
	// Text is the reply or diagnostic text, as logged or as found in a DSN's
	// Diagnostic-Code field; a leading code and status may be left in it.
	Text string
	// ReplyCode is the SMTP reply code (RFC 5321), 0 if unknown.
	ReplyCode int
	// Status is the enhanced status code (RFC 3463) such as "5.7.1", "" if unknown.
	Status string
	// Phase is the SMTP command the reply answered (PhaseConnect,
	// PhaseHelo, PhaseMail, PhaseRcpt, PhaseData for the end of DATA) when
	// the caller knows it from elsewhere than the text: a DSN's or a log
	// line's "in reply to ... command", Exim's "after RCPT TO". A phase
	// the text itself names wins. "" if unknown.
	Phase string
}

// Result is the classification of one Input.
type Result struct {
	// Reason, in the Sisimai vocabulary (Reason* constants). When neither a
	// text rule nor the codes tell anything: ReasonOnHold for a text with
	// words, ReasonUndefined for one without.
	Reason string
	// Category is CategoryOf(Reason).
	Category string
	// Signature names the blocklist or provider error the text cites, e.g.
	// "spamhaus", "barracuda", "gmail-5.7.26", "outlook-S3150", "yahoo-TSS04";
	// "" when there is none.
	Signature string
	// Rule is the id of the text rule that decided, "" when only the codes did.
	Rule string
	// Matched is true when a text rule decided the reason. Callers count and
	// sample the texts with Matched == false to write new rules.
	Matched bool
	// Permanent is true for a 5xx reply code or, when the reply code is
	// unknown, a 5.x.x status. With neither known it follows the reason
	// (see permanentReasons).
	Permanent bool
	// ReplyCode and Status are the codes used: the ones given in Input, or
	// else the first found in the text.
	ReplyCode int
	Status    string
}

// compiled is the rule table compiled into one automaton.
type compiled struct {
	m *matcher
	// ruleAny[p] lists the rules (indexes into Rules) with pattern p in Any.
	ruleAny [][]int32
	any     [][]int32 // per rule: pattern ids
	with    [][]int32
	without [][]int32
	sigAny  [][]int32 // per signature rule
	sigWith [][]int32
	phases  [][]int32 // per Phases entry
}

// compiledTable builds the automaton on first use: programs that never
// classify (most mailmon commands) do not pay its start-up cost.
var compiledTable = sync.OnceValue(func() *compiled { return mustCompile(Rules, Signatures) })

func mustCompile(rules []Rule, sigs []SignatureRule) *compiled {
	c, err := compile(rules, sigs)
	if err != nil {
		panic(err)
	}
	return c
}

// normalizePattern puts a pattern into the form texts are normalised to.
func normalizePattern(p string) string {
	var b strings.Builder
	normalizedBytes(p, func(c byte) { b.WriteByte(c) })
	return b.String()
}

func compile(rules []Rule, sigs []SignatureRule) (*compiled, error) {
	ids := map[string]int32{}
	var patterns []string
	intern := func(list []string) ([]int32, error) {
		out := make([]int32, 0, len(list))
		for _, p := range list {
			// Patterns keep their edge spaces: " dnsbl" means a word start.
			lead := strings.HasPrefix(p, " ")
			trail := strings.HasSuffix(p, " ")
			n := normalizePattern(p)
			n = strings.TrimSpace(n)
			if n == "" {
				return nil, fmt.Errorf("empty pattern %q", p)
			}
			if lead {
				n = " " + n
			}
			if trail {
				n += " "
			}
			id, ok := ids[n]
			if !ok {
				id = int32(len(patterns))
				ids[n] = id
				patterns = append(patterns, n)
			}
			out = append(out, id)
		}
		return out, nil
	}
	c := &compiled{}
	seen := map[string]bool{}
	for i, r := range rules {
		if r.ID == "" || seen[r.ID] {
			return nil, fmt.Errorf("bounceclass: rule %d: empty or duplicate id %q", i, r.ID)
		}
		seen[r.ID] = true
		if _, ok := reasonCategory[r.Reason]; !ok {
			return nil, fmt.Errorf("bounceclass: rule %s: unknown reason %q", r.ID, r.Reason)
		}
		if len(r.Any) == 0 {
			return nil, fmt.Errorf("bounceclass: rule %s: no patterns", r.ID)
		}
		a, err := intern(r.Any)
		if err != nil {
			return nil, fmt.Errorf("bounceclass: rule %s: %v", r.ID, err)
		}
		w, err := intern(r.With)
		if err != nil {
			return nil, fmt.Errorf("bounceclass: rule %s: %v", r.ID, err)
		}
		wo, err := intern(r.Without)
		if err != nil {
			return nil, fmt.Errorf("bounceclass: rule %s: %v", r.ID, err)
		}
		c.any = append(c.any, a)
		c.with = append(c.with, w)
		c.without = append(c.without, wo)
	}
	for i, s := range sigs {
		if s.Signature == "" || len(s.Any) == 0 {
			return nil, fmt.Errorf("bounceclass: signature rule %d: empty", i)
		}
		a, err := intern(s.Any)
		if err != nil {
			return nil, err
		}
		w, err := intern(s.With)
		if err != nil {
			return nil, err
		}
		c.sigAny = append(c.sigAny, a)
		c.sigWith = append(c.sigWith, w)
	}
	for _, ph := range Phases {
		p, err := intern(ph.Patterns)
		if err != nil {
			return nil, err
		}
		c.phases = append(c.phases, p)
	}
	m, err := newMatcher(patterns)
	if err != nil {
		return nil, err
	}
	c.m = m
	c.ruleAny = make([][]int32, len(patterns))
	for ri, a := range c.any {
		for _, p := range a {
			c.ruleAny[p] = append(c.ruleAny[p], int32(ri))
		}
	}
	return c, nil
}

func anyOf(found *matchSet, ids []int32) bool {
	for _, id := range ids {
		if found.has(id) {
			return true
		}
	}
	return false
}

// firstRule returns the index of the first rule (in table order) whose
// conditions hold, or -1.
func (c *compiled) firstRule(found *matchSet) int {
	best := int32(-1)
	for w, bits := range found {
		for bits != 0 {
			b := bits & -bits
			bits ^= b
			p := int32(w*64 + trailingZeros(b))
			for _, r := range c.ruleAny[p] {
				if best >= 0 && r >= best {
					break // ruleAny lists are in ascending order
				}
				if (len(c.with[r]) == 0 || anyOf(found, c.with[r])) && !anyOf(found, c.without[r]) {
					best = r
					break
				}
			}
		}
	}
	return int(best)
}

// phase returns the SMTP phase the text says the reply answered, or "".
func (c *compiled) phase(found *matchSet) string {
	for i, p := range c.phases {
		if anyOf(found, p) {
			return Phases[i].Phase
		}
	}
	return ""
}

func (c *compiled) signature(found *matchSet) string {
	for i, a := range c.sigAny {
		if anyOf(found, a) && (len(c.sigWith[i]) == 0 || anyOf(found, c.sigWith[i])) {
			return Signatures[i].Signature
		}
	}
	return ""
}

// Classify tells why a remote server refused or delayed a message.
//
// A 2xx reply code (or a 2.x.x status when the code is unknown) is an
// acceptance: ReasonDelivered at once, without reading the text.
//
// The text decides: the first rule of Rules (in order) whose patterns occur
// in the normalised text gives the reason. Only when no rule matches do the
// enhanced status code (RFC 3463 subject and detail, see statusReason) and
// then the reply code (replyReason) decide. Codes missing from Input are
// looked for in the text (FindCodes).
func Classify(in Input) Result {
	in.Text = clipText(in.Text)
	code, status := in.ReplyCode, in.Status
	if code == 0 || status == "" {
		fc, fs := FindCodes(in.Text)
		if code == 0 {
			code = fc
		}
		if status == "" {
			status = fs
		}
	}
	res := Result{ReplyCode: code, Status: status}
	// A 2xx reply (or, without one, a 2.x.x status) is an acceptance: no
	// rule applies, and log parsers call this for every "sent" line.
	if code >= 200 && code < 300 || code == 0 && strings.HasPrefix(status, "2.") {
		res.Reason, res.Category = ReasonDelivered, CategoryOf(ReasonDelivered)
		return res
	}
	var found matchSet
	table := compiledTable()
	table.m.scan(in.Text, &found)
	if r := table.firstRule(&found); r >= 0 {
		rule := &Rules[r]
		res.Reason, res.Rule, res.Matched, res.Signature = rule.Reason, rule.ID, true, rule.Signature
		phase := table.phase(&found)
		if phase == "" {
			phase = in.Phase
		}
		if rule.IfPhase != nil && rule.IfPhase[phase] != "" {
			res.Reason = rule.IfPhase[phase]
		} else if phase == "" && res.Reason == ReasonUserUnknown && rule.IfPhase[PhaseData] == ReasonFiltered && filterStatus(status) {
			res.Reason = ReasonFiltered
		} else if r := statusNarrowing(rule.IfStatus, status); r != "" {
			res.Reason = r
		}
		if rule.OnlyWithoutCodes {
			if r := codeReason(code, status); r != ReasonUndefined {
				res.Reason, res.Rule, res.Matched = r, "", false
			}
		}
	} else {
		res.Reason = codeReason(code, status)
		// A reply with words but no evidence of any cause is onhold (too
		// little detail to judge); undefined is for no reply text at all.
		if res.Reason == ReasonUndefined && hasWords(in.Text) {
			res.Reason = ReasonOnHold
		}
	}
	// A status whose registered or provider-documented meaning names one
	// reason overrules the wording (see decisiveStatus); Rule and Matched
	// then no longer name a deciding text rule.
	if r := statusEvidence(status); r != "" && r != res.Reason {
		res.Reason, res.Rule, res.Matched = r, "", false
	}
	if sig := table.signature(&found); sig != "" {
		res.Signature = sig
	}
	res.Signature = expandSignature(res.Signature, status)
	res.Category = CategoryOf(res.Reason)
	switch {
	case code >= 500 && code < 600:
		res.Permanent = true
	case code >= 200 && code < 500:
	case strings.HasPrefix(status, "5."):
		res.Permanent = true
	case status != "":
	default:
		res.Permanent = permanentReasons[res.Reason]
	}
	return res
}

// expandSignature replaces "{status}" in a signature with the status code.
func expandSignature(sig, status string) string {
	i := strings.Index(sig, "{status}")
	if i < 0 {
		return sig
	}
	if status == "" {
		return strings.TrimSuffix(sig[:i], "-") + sig[i+len("{status}"):]
	}
	return sig[:i] + status + sig[i+len("{status}"):]
}

// hasWords reports whether text holds at least one letter, i.e. more than
// codes and punctuation.
func hasWords(text string) bool {
	for _, r := range text {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// filterStatus reports an enhanced status that, given with an unknown-user
// wording at an unknown stage, says the refusal came from a filter after
// DATA rather than from the recipient check at RCPT TO: MTAs that check
// recipients at RCPT give X.1.x (bad destination mailbox, RFC 3463), so a
// mailbox (X.2.x), undefined (X.0.0) or security (X.7.x) status with that
// wording is a filter hiding its verdict.
func filterStatus(status string) bool {
	if len(status) < 5 || status[1] != '.' {
		return false
	}
	switch status[2] {
	case '0', '2', '7':
		return true
	}
	return false
}
