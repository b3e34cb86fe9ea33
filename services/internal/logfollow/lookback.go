package logfollow

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Lookback returns the complete lines in the maxBytes before the handled
// position of each file that is still being read (the file at the path,
// and rotated files with unread bytes), oldest file first. A caller that
// joins lines (a message's earlier lines give context to its delivery
// lines) feeds them to its joiner after a restart, without handling them
// again. No position moves.
func (fl *Follower) Lookback(maxBytes int64) ([]Line, error) {
	if maxBytes <= 0 {
		return nil, nil
	}
	if len(fl.queue) == 0 {
		if err := fl.scan(); err != nil {
			return nil, err
		}
	}
	var files []*fileState
	for _, r := range fl.files {
		if r.seen && r.missingSince.IsZero() && r.handled > 0 && (r.atPath || r.size > r.handled) {
			files = append(files, r)
		}
	}
	slices.SortFunc(files, func(a, b *fileState) int {
		if a.atPath != b.atPath {
			if a.atPath {
				return 1
			}
			return -1
		}
		return cmp.Or(a.modTime.Compare(b.modTime), cmp.Compare(b.path, a.path))
	})
	var out []Line
	for _, r := range files {
		lines, err := fl.lookback(r, maxBytes)
		if err != nil {
			fl.log.Warn("cannot read the lines before the checkpoint", "file", r.path, "error", err)
			continue
		}
		out = append(out, lines...)
	}
	return out, nil
}

func (fl *Follower) lookback(r *fileState, maxBytes int64) ([]Line, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if same, err := hasFingerprint(f, r.fp); err != nil || !same {
		return nil, errors.Join(err, fmt.Errorf("%s no longer has the head it had", r.path))
	}
	// Read one byte more in front: if it is a newline, the window starts
	// at a line; if not, it starts mid-line and that part is skipped.
	start := max(0, r.handled-maxBytes-1)
	buf := make([]byte, r.handled-start)
	n, err := f.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:n]
	if start > 0 || r.handled > maxBytes {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			return nil, nil
		}
		start += int64(nl + 1)
		buf = buf[nl+1:]
	}
	var out []Line
	for len(buf) > 0 {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			break
		}
		text := bytes.TrimSuffix(buf[:nl], []byte{'\r'})
		if len(text) > fl.opts.MaxLineBytes {
			text = text[:fl.opts.MaxLineBytes]
		}
		next := start + int64(nl+1)
		out = append(out, Line{
			Text:   string(text),
			Path:   r.path,
			FileID: r.fp.sum,
			Offset: start,
			Next:   Position{Path: r.path, Offset: next, Fingerprint: r.fp.sum, FingerprintLen: r.fp.n, Inode: r.inode},
		})
		start = next
		buf = buf[nl+1:]
	}
	return out, nil
}
