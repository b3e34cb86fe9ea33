package dsn

import (
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// maxRecipients bounds the recipients read from one message.
const maxRecipients = 1000

// dsnField is one field of a delivery-status body, with whether a blank
// line came before it (which starts a new group).
type dsnField struct {
	rawmail.Field
	newGroup bool
}

// readFieldGroups reads "Name: value" fields with folded continuations,
// marking each field that follows a blank line. Lines that are not fields
// are skipped when stopAtText is false; with stopAtText the reading ends at
// the first such line after some fields were read. The lines are read in
// one pass, and a folded value is built once, in one builder.
func readFieldGroups(text string, stopAtText bool, bud *rawmail.Budget) []dsnField {
	var out []dsnField
	blank := true
	var cur *dsnField
	var folded strings.Builder // the value of cur, when it has continuations
	isFolded := false
	endField := func() {
		if cur != nil && isFolded {
			cur.Value = strings.TrimSpace(folded.String())
		}
		cur, isFolded = nil, false
	}
	for len(text) > 0 {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		line = strings.TrimSuffix(line, "\r")
		if !bud.Lines(1) {
			break
		}
		if strings.TrimSpace(line) == "" {
			endField()
			blank = true
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if t := strings.TrimSpace(line); cur != nil && t != "" {
				if !isFolded {
					folded.Reset()
					folded.WriteString(cur.Value)
					isFolded = true
				}
				if folded.Len() > 0 {
					folded.WriteByte(' ')
				}
				folded.WriteString(t)
			}
			continue
		}
		name, value, ok := splitFieldLine(line)
		if !ok {
			endField()
			if stopAtText && len(out) > 0 {
				break
			}
			continue
		}
		endField()
		out = append(out, dsnField{Field: rawmail.Field{Name: name, Value: strings.TrimSpace(value)}, newGroup: blank})
		cur = &out[len(out)-1]
		blank = false
	}
	endField()
	return out
}

func splitFieldLine(line string) (string, string, bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 || i > 40 {
		return "", "", false
	}
	name := strings.TrimRight(line[:i], " \t")
	for j := 0; j < len(name); j++ {
		c := name[j]
		if c <= ' ' || c >= 0x7f {
			return "", "", false
		}
	}
	return name, line[i+1:], name != ""
}

// readDeliveryStatus reads a message/delivery-status part.
func (b *Bounce) readDeliveryStatus(p *rawmail.Part, bud *rawmail.Budget) {
	bud.Scan(2 * len(p.Body))
	b.readDSNFields(readFieldGroups(rawmail.ToUTF8(p.Params["charset"], p.Body), false, bud))
}

// readDeliveryStatusText reads delivery-status fields pasted into the text
// of a bounce (a Final-Recipient or Original-Recipient line starts them).
func (b *Bounce) readDeliveryStatusText(text string, bud *rawmail.Budget) {
	start := -1
	for i := 0; i < len(text); i++ {
		if i > 0 && text[i-1] != '\n' {
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j
				continue
			}
			break
		}
		for _, key := range []string{"reporting-mta:", "final-recipient:", "original-recipient:"} {
			if len(text)-i >= len(key) && strings.EqualFold(text[i:i+len(key)], key) {
				start = i
				break
			}
		}
		if start >= 0 {
			break
		}
	}
	if start < 0 || !strings.Contains(lowerASCII(text[start:min(len(text), start+4096)]), "recipient:") {
		return
	}
	b.readDSNFields(readFieldGroups(text[start:], true, bud))
	// Keep only recipients that really came with a DSN action or status:
	// "Original-Recipient:" alone in prose is not a DSN.
	var keep []Recipient
	for _, r := range b.Recipients {
		if r.Action != "" || r.Status != "" || r.Diagnostic != "" {
			keep = append(keep, r)
		}
	}
	b.Recipients = keep
	for i := range b.Recipients {
		if b.Recipients[i].Action == "" {
			b.Recipients[i].Action = ActionFailed
		}
	}
}

// readDSNFields turns delivery-status fields into recipients (RFC 3464
// section 2.2 per-message fields, 2.3 per-recipient fields).
func (b *Bounce) readDSNFields(fields []dsnField) {
	var cur *Recipient
	first := len(b.Recipients)
	open := func() *Recipient {
		if len(b.Recipients) >= maxRecipients {
			return nil
		}
		b.Recipients = append(b.Recipients, Recipient{ReportingMTA: b.ReportingMTA})
		return &b.Recipients[len(b.Recipients)-1]
	}
	for _, f := range fields {
		v := f.Value
		switch strings.ToLower(f.Name) {
		case "reporting-mta":
			_, host := stripType(v)
			if cur == nil {
				b.ReportingMTA = host
			} else if f.newGroup {
				// Per-message fields repeated before the next group.
				b.ReportingMTA, cur = host, nil
			} else {
				cur.ReportingMTA = host
			}
		case "arrival-date":
			if t, ok := rawmail.ParseDate(v); ok && b.ArrivalDate.IsZero() {
				b.ArrivalDate = t
			}
		case "final-recipient", "x-actual-recipient":
			addr := cleanAddr(v)
			switch {
			case cur == nil || cur.Recipient != "" && strings.EqualFold(f.Name, "final-recipient") ||
				f.newGroup && (cur.Action != "" || cur.Status != ""):
				if cur = open(); cur == nil {
					return
				}
				cur.Recipient = addr
			case strings.EqualFold(f.Name, "x-actual-recipient"):
				// Sendmail: what an alias expanded to (often a program);
				// the final recipient stays the address.
				if cur.Recipient == "" {
					cur.Recipient = addr
				}
			default:
				cur.Recipient = addr
			}
		case "original-recipient":
			addr := cleanAddr(v)
			if cur == nil || cur.OriginalRecipient != "" || f.newGroup && cur.Recipient != "" {
				if cur = open(); cur == nil {
					return
				}
			}
			cur.OriginalRecipient = addr
		case "action":
			if cur == nil || cur.Action != "" {
				if cur = open(); cur == nil {
					return
				}
			}
			cur.Action = normAction(v)
		case "status":
			if cur == nil {
				if cur = open(); cur == nil {
					return
				}
			}
			if st := findStatus(v); st != "" {
				cur.Status = st
			}
		case "remote-mta":
			if cur != nil {
				_, cur.RemoteMTA = stripType(v)
			}
		case "diagnostic-code":
			if cur == nil {
				if cur = open(); cur == nil {
					return
				}
			}
			typ, text := stripType(v)
			cur.DiagnosticType, cur.Diagnostic = typ, text
		case "x-powermta-bouncecategory":
			if cur != nil {
				cur.vendorCategory = v
			}
		case "last-attempt-date":
			if cur != nil {
				if t, ok := rawmail.ParseDate(v); ok {
					cur.LastAttempt = t
				}
			}
		}
	}
	// Drop empty groups, fill what is missing.
	out := b.Recipients[:first]
	for _, r := range b.Recipients[first:] {
		if r.Recipient == "" {
			r.Recipient = r.OriginalRecipient
		}
		if r.Recipient == "" && r.Action == "" && r.Status == "" {
			continue
		}
		if r.Action == "" {
			r.Action = ActionFailed
			if strings.HasPrefix(r.Status, "2.") {
				r.Action = ActionDelivered
			}
		}
		if r.OriginalRecipient != "" && strings.EqualFold(r.OriginalRecipient, r.Recipient) {
			r.OriginalRecipient = ""
		}
		out = append(out, r)
	}
	b.Recipients = out
}

// normAction maps an Action value to the RFC 3464 vocabulary. Values seen
// in the wild that are not in it ("expired", "failure", "bounced", ...)
// mean failed; expired is remembered by the status check in classify.
func normAction(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, " \t(;"); i >= 0 {
		v = v[:i]
	}
	switch v {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
		return v
	case "expired":
		return actionExpired
	case "delay", "deferred", "queued", "retry":
		return ActionDelayed
	case "deliverable", "success", "sent":
		return ActionDelivered
	}
	return ActionFailed
}

// actionExpired marks an "Action: expired" recipient until classify turns
// it into a failed one with reason expired.
const actionExpired = "expired"

// cleanAddr reads an address field value: the type removed, angle brackets
// and quotes around it removed.
func cleanAddr(v string) string {
	_, v = stripType(v)
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	v = strings.Trim(v, "<>\"' \t")
	if i := strings.IndexAny(v, " \t"); i >= 0 && strings.Contains(v[:i], "@") {
		v = v[:i]
	}
	return v
}

// findStatus returns the first enhanced status code (RFC 3463 class.subject.
// detail) in s.
func findStatus(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '2' && c != '4' && c != '5' || i+4 >= len(s) || s[i+1] != '.' {
			continue
		}
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.') {
			continue
		}
		j := i + 2
		k := j
		for k < len(s) && isDigit(s[k]) && k-j < 3 {
			k++
		}
		if k == j || k >= len(s) || s[k] != '.' {
			continue
		}
		m := k + 1
		n := m
		for n < len(s) && isDigit(s[n]) && n-m < 3 {
			n++
		}
		if n == m || n < len(s) && (isDigit(s[n]) || s[n] == '.' && n+1 < len(s) && isDigit(s[n+1])) {
			continue
		}
		return s[i:n]
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
