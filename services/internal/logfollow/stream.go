package logfollow

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// StreamReader reads lines from a stream such as stdin. Lines carry the
// byte offset in the stream and a FileID from the stream's first line, the
// same as a Follower gives for a file with that content, so piping a log
// file in gives its lines the ids following it would. Positions cannot be
// resumed from: a stream cannot be reopened.
type StreamReader struct {
	name  string
	lines chan Line
	done  chan struct{}
	errc  chan error
	// peeked is a line Wait received before Next asked for it.
	peeked *Line
	err    error
}

// NewStreamReader starts reading r in the background; name is used as the
// Line Path. A last line without a newline is returned at the end of the
// stream. Close stops the reading (the goroutine ends at the next read
// that returns).
func NewStreamReader(r io.Reader, name string, maxLineBytes, fingerprintBytes int) *StreamReader {
	if fingerprintBytes <= 0 || fingerprintBytes > MaxFingerprintBytes {
		fingerprintBytes = 1024
	}
	if maxLineBytes < fingerprintBytes {
		maxLineBytes = 64 << 10
	}
	s := &StreamReader{
		name:  name,
		lines: make(chan Line, 1024),
		done:  make(chan struct{}),
		errc:  make(chan error, 1),
	}
	go s.read(r, maxLineBytes, fingerprintBytes)
	return s
}

func (s *StreamReader) read(r io.Reader, maxLine, maxFP int) {
	br := bufio.NewReaderSize(r, 64<<10)
	var offset int64
	var fp fingerprint
	var head []byte // the stream's first bytes, until the fingerprint is known
	for {
		text, n, truncated, err := readStreamLine(br, maxLine)
		if n > 0 {
			if !fp.known() {
				head = append(head, text...)
				if !truncated && err == nil {
					head = append(head, '\n')
				}
				if f, ok := fingerprintOfHead(head, maxFP); ok {
					fp = f
				} else {
					// The stream ended before a full first line.
					fp, _ = fingerprintOfHead(append(head, '\n'), maxFP)
				}
				head = nil
			}
			line := Line{
				Text:      string(bytes.TrimSuffix(text, []byte{'\r'})),
				Path:      s.name,
				FileID:    fp.sum,
				Offset:    offset,
				Truncated: truncated,
			}
			offset += int64(n)
			line.Next = Position{Path: s.name, Offset: offset, Fingerprint: fp.sum, FingerprintLen: fp.n}
			select {
			case s.lines <- line:
			case <-s.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("logfollow: read %s: %w", s.name, err)
			}
			s.errc <- err
			close(s.lines)
			return
		}
	}
}

// readStreamLine reads one line: its text (cut to maxLine), the bytes it
// took from the stream, and whether it was cut. err is io.EOF after the
// last line.
func readStreamLine(br *bufio.Reader, maxLine int) (text []byte, n int, truncated bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		n += len(chunk)
		body := bytes.TrimSuffix(chunk, []byte{'\n'})
		if room := maxLine - len(text); len(body) > room {
			truncated = true
			body = body[:max(room, 0)]
		}
		text = append(text, body...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && n == 0 {
			return nil, 0, false, err
		}
		return text, n, truncated, err
	}
}

// Next returns the next line if one has been read, ok false if none is
// ready yet, and io.EOF once the stream ended and every line was returned.
func (s *StreamReader) Next() (Line, bool, error) {
	if s.peeked != nil {
		line := *s.peeked
		s.peeked = nil
		return line, true, nil
	}
	if s.err != nil {
		return Line{}, false, s.err
	}
	select {
	case line, open := <-s.lines:
		if open {
			return line, true, nil
		}
		s.err = <-s.errc
		return Line{}, false, s.err
	default:
		return Line{}, false, nil
	}
}

// Wait returns when a line is ready, the stream ended, or ctx ended.
func (s *StreamReader) Wait(ctx context.Context) {
	if s.peeked != nil || s.err != nil {
		return
	}
	select {
	case line, open := <-s.lines:
		if open {
			s.peeked = &line
			return
		}
		s.err = <-s.errc
	case <-ctx.Done():
	}
}

// Lag is unknown for a stream: 0.
func (s *StreamReader) Lag() int64 { return 0 }

// Close stops reading.
func (s *StreamReader) Close() error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	return nil
}
