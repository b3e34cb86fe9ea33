package logfollow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
)

// MaxFingerprintBytes bounds Options.FingerprintBytes.
const MaxFingerprintBytes = 4096

// Position is where a reader stands in one file: persist it after the line
// it follows was handled, and pass it to Open to resume.
type Position struct {
	// Path is the path the file was opened under. It is informational: a
	// rotated file is found again by its fingerprint, whatever it is named.
	Path string `json:"path,omitempty"`
	// Offset is the byte offset of the next line to read.
	Offset int64 `json:"offset"`
	// Fingerprint is the hex SHA-256 of the first FingerprintLen bytes of
	// the file: its first line, or its first FingerprintBytes bytes when
	// that line is longer.
	Fingerprint    string `json:"fingerprint"`
	FingerprintLen int    `json:"fingerprint_len"`
	// Inode is a hint that decides between files with the same head; zero
	// where the platform has none.
	Inode uint64 `json:"inode,omitempty"`
}

// IsZero reports whether p says nothing about any file (no line was read).
func (p Position) IsZero() bool { return p.Fingerprint == "" }

// fingerprint identifies a file by its head.
type fingerprint struct {
	sum string // hex SHA-256
	n   int    // bytes hashed
}

func (f fingerprint) known() bool { return f.sum != "" }

// fingerprintOfHead returns the fingerprint of a file whose first bytes
// (up to max) are head: the first line including its newline, or max bytes
// when there is no newline within them. ok is false while the file is too
// short to tell (no complete first line, fewer than max bytes).
func fingerprintOfHead(head []byte, max int) (fingerprint, bool) {
	if len(head) > max {
		head = head[:max]
	}
	n := len(head)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		n = i + 1
	} else if len(head) < max {
		return fingerprint{}, false
	}
	sum := sha256.Sum256(head[:n])
	return fingerprint{sum: hex.EncodeToString(sum[:]), n: n}, true
}

// readHead reads up to max bytes from the start of f.
func readHead(f *os.File, max int) ([]byte, error) {
	buf := make([]byte, max)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// fileFingerprint computes the fingerprint of an open file.
func fileFingerprint(f *os.File, max int) (fingerprint, bool, error) {
	head, err := readHead(f, max)
	if err != nil {
		return fingerprint{}, false, err
	}
	fp, ok := fingerprintOfHead(head, max)
	return fp, ok, nil
}

// hasFingerprint reports whether f starts with the bytes fp was computed
// from.
func hasFingerprint(f *os.File, fp fingerprint) (bool, error) {
	buf := make([]byte, fp.n)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if n < fp.n {
		return false, nil
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]) == fp.sum, nil
}
