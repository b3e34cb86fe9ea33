package logfollow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// readChunk is how much one read asks for.
const readChunk = 64 << 10

// Line is one complete line of a log file.
type Line struct {
	// Text is the line without its newline (and without a carriage return
	// before it).
	Text string
	// Path is the name the file had when the line was read: the followed
	// path, or a rotated name.
	Path string
	// FileID identifies the file the line is in by its content (the
	// fingerprint): the same line read again, after a crash or under a
	// rotated name or from a copy, has the same FileID and Offset.
	FileID string
	// Offset is the byte offset of the line's first byte in its file.
	Offset int64
	// Next is the position just after the line (after its newline). Pass
	// it to Follower.Handled once the line is durably handled.
	Next Position
	// Truncated is set when the line was longer than MaxLineBytes; Text
	// then holds its first MaxLineBytes bytes.
	Truncated bool
}

// fileState is what a Follower knows about one file, identified by its
// fingerprint, and the reading state inside it.
type fileState struct {
	fp fingerprint
	// read is the offset of the first byte not yet returned in a line;
	// handled is the offset the caller confirmed (Handled). A restart
	// resumes at handled.
	read, handled int64

	// From the last scan that saw the file.
	path    string
	inode   uint64
	size    int64
	modTime time.Time
	atPath  bool // it is the file at the followed path
	// seen is false for a state loaded from a checkpoint until a scan finds
	// its file; missingSince is when a scan first did not find it.
	seen         bool
	missingSince time.Time

	// f is open while the file is queued for reading in this round.
	f *os.File

	// buf[start:] holds bytes read after read, not yet a complete line.
	buf   []byte
	start int
	// long holds the head of a line longer than the limit while the rest
	// of it is skipped; longAt is where that line started.
	long   []byte
	longAt int64
	// skipPartial drops bytes up to the next newline without returning
	// them (after starting at the end of a file, mid-line).
	skipPartial bool
	// stale is set when f no longer holds this content (truncated and
	// refilled); f is closed and the content is looked for again.
	stale bool
}

// readEnd is the offset just past the bytes read from the file so far.
func (r *fileState) readEnd() int64 { return r.read + int64(len(r.buf)-r.start) }

func (r *fileState) position() Position {
	return Position{Path: r.path, Offset: r.read, Fingerprint: r.fp.sum, FingerprintLen: r.fp.n, Inode: r.inode}
}

func (r *fileState) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *fileState) consume(n int) {
	r.start += n
	r.read += int64(n)
	if r.start == len(r.buf) {
		r.buf, r.start = r.buf[:0], 0
	}
}

// fill reads the next chunk of the file into buf; 0 bytes means the end of
// the file for now.
//
// The file at the path can be truncated and refilled past our offset
// between two reads (copytruncate); what we read then is another file's
// content. So for it, the head is checked after every read that returned
// bytes: if it is not ours any more, the bytes are dropped and the file is
// marked stale. (Truncated after the read but before the check: the bytes
// were good, and the copy that has our head gives them again.)
func (r *fileState) fill() (int, error) {
	if r.stale {
		return 0, nil
	}
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:])
		r.buf, r.start = r.buf[:n], 0
	}
	if cap(r.buf)-len(r.buf) < readChunk {
		grown := make([]byte, len(r.buf), 2*cap(r.buf)+readChunk)
		copy(grown, r.buf)
		r.buf = grown
	}
	n, err := r.f.ReadAt(r.buf[len(r.buf):len(r.buf)+readChunk], r.readEnd())
	r.buf = r.buf[:len(r.buf)+n]
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("logfollow: read %s: %w", r.path, err)
	}
	if n > 0 && r.atPath {
		same, err := hasFingerprint(r.f, r.fp)
		if err != nil {
			return 0, fmt.Errorf("logfollow: read %s: %w", r.path, err)
		}
		if !same {
			r.buf = r.buf[:len(r.buf)-n]
			r.stale = true
			return 0, nil
		}
	}
	return n, nil
}

// next returns the next complete line, or ok false at the end of the file.
func (r *fileState) next(maxLine int) (Line, bool, error) {
	for {
		data := r.buf[r.start:]
		nl := bytes.IndexByte(data, '\n')
		switch {
		case r.skipPartial && nl >= 0:
			r.consume(nl + 1)
			r.skipPartial = false
			continue
		case r.skipPartial:
			r.consume(len(data))
		case r.long != nil && nl >= 0:
			r.consume(nl + 1)
			text := r.long
			r.long = nil
			return r.line(text, r.longAt, true), true, nil
		case r.long != nil:
			r.consume(len(data))
		case nl >= 0:
			at := r.read
			text := data[:nl]
			truncated := len(text) > maxLine
			if truncated {
				text = text[:maxLine]
			}
			r.consume(nl + 1)
			return r.line(text, at, truncated), true, nil
		case len(data) > maxLine:
			r.long = bytes.Clone(data[:maxLine])
			r.longAt = r.read
			r.consume(len(data))
		}
		n, err := r.fill()
		if err != nil {
			return Line{}, false, err
		}
		if n == 0 {
			return Line{}, false, nil
		}
	}
}

// rest returns what is left after the last complete line of a file that
// will not grow any more, as a final line; ok is false if nothing is left.
func (r *fileState) rest(maxLine int) (Line, bool) {
	data := r.buf[r.start:]
	switch {
	case r.skipPartial || (r.long == nil && len(data) == 0):
		r.consume(len(data))
		r.skipPartial = false
		return Line{}, false
	case r.long != nil:
		r.consume(len(data))
		text := r.long
		r.long = nil
		return r.line(text, r.longAt, true), true
	default:
		at := r.read
		text := data
		truncated := len(text) > maxLine
		if truncated {
			text = text[:maxLine]
		}
		r.consume(len(data))
		return r.line(text, at, truncated), true
	}
}

// line builds the Line for text, which started at offset at.
func (r *fileState) line(text []byte, at int64, truncated bool) Line {
	text = bytes.TrimSuffix(text, []byte{'\r'})
	return Line{
		Text:      string(text),
		Path:      r.path,
		FileID:    r.fp.sum,
		Offset:    at,
		Next:      r.position(),
		Truncated: truncated,
	}
}
