package policyservice

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Request is one Postfix SMTP access policy delegation request: the
// name=value attributes Postfix sent, e.g. request, protocol_state,
// sender, recipient, client_address, sasl_username.
type Request map[string]string

// Limits bound what one client may send, against a broken or hostile
// client on the policy port.
type Limits struct {
	// MaxAttributes per request. Postfix 3.7 sends about 30.
	MaxAttributes int
	// MaxLineBytes per attribute line, newline included.
	MaxLineBytes int
}

// Protocol errors. Each ends the connection: the stream can no longer be
// trusted to be at a request boundary.
var (
	ErrTooManyAttributes = errors.New("too many attributes")
	ErrLineTooLong       = errors.New("attribute line too long")
	ErrMalformed         = errors.New("malformed attribute line")
)

// ReadRequest reads one request: name=value lines ended by an empty line
// (SMTPD_POLICY_README, "Protocol description"). It returns io.EOF when the
// client closed the connection between requests, and io.ErrUnexpectedEOF
// when it closed in the middle of one. A later attribute of the same name
// replaces an earlier one, as in Postfix's own servers.
func ReadRequest(r *bufio.Reader, lim Limits) (Request, error) {
	req := Request{}
	lines := 0
	for {
		line, err := readLine(r, lim.MaxLineBytes)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if lines == 0 {
					return nil, io.EOF
				}
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			if lines == 0 {
				continue // stray empty line between requests
			}
			return req, nil
		}
		lines++
		if lines > lim.MaxAttributes {
			return nil, fmt.Errorf("%w (more than %d)", ErrTooManyAttributes, lim.MaxAttributes)
		}
		name, value, ok := bytes.Cut(line, []byte{'='})
		if !ok || len(name) == 0 || !validName(name) {
			return nil, fmt.Errorf("%w: %q", ErrMalformed, truncate(line, 40))
		}
		req[string(name)] = string(value)
	}
}

// readLine returns one line without its LF (and CRs before it). A line
// longer than max is an error; the rest of it is not read.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return nil, fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, max)
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(buf[:len(buf)-1], "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func validName(name []byte) bool {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Answer encodes the reply to one request: "action=<action>" and an empty
// line. Line breaks in action would end the reply early, so they become
// spaces.
func Answer(action string) []byte {
	action = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, action)
	return []byte("action=" + action + "\n\n")
}
