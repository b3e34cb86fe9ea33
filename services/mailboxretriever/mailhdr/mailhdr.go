package mailhdr

import (
	"bufio"
	"bytes"
	"net/mail"
	"strings"
	"time"
)

// maxFields bounds what Parse keeps of a pathological header.
const maxFields = 1000

// Field is one header field, unfolded: continuation lines are joined with
// a single space.
type Field struct {
	Name  string
	Value string
}

// Header is a message header in order, topmost field first.
type Header []Field

// Parse reads the header block of msg (up to the first empty line, or all
// of msg when there is none). Lines that are neither fields nor
// continuations are skipped.
func Parse(msg []byte) Header {
	var h Header
	sc := bufio.NewScanner(bytes.NewReader(msg))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(h) > 0 {
				last := &h[len(h)-1]
				last.Value = strings.TrimSpace(last.Value + " " + strings.TrimSpace(line))
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		if len(h) == maxFields {
			break
		}
		h = append(h, Field{Name: name, Value: strings.TrimSpace(value)})
	}
	return h
}

// Get returns the value of the topmost field called name (case-insensitive).
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field called name, topmost first.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// ReceivedHops is the number of Received fields.
func (h Header) ReceivedHops() int { return len(h.Values("Received")) }

// ReceivedTime is the date of a Received field: the text after its last
// ";". ok is false when there is none or it does not parse.
func ReceivedTime(value string) (time.Time, bool) {
	i := strings.LastIndexByte(value, ';')
	if i < 0 {
		return time.Time{}, false
	}
	d := strings.TrimSpace(value[i+1:])
	t, err := mail.ParseDate(d)
	if err != nil {
		// Some MTAs add a zone name after the offset, or none at all.
		if j := strings.LastIndex(d, " ("); j > 0 {
			t, err = mail.ParseDate(d[:j])
		}
		if err != nil {
			return time.Time{}, false
		}
	}
	return t, true
}

// MessageID returns the Message-ID without angle brackets.
func (h Header) MessageID() string {
	v := strings.TrimSpace(h.Get("Message-ID"))
	return strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
}
