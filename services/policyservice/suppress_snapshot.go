package policyservice

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// The suppression snapshot is the set on disk, so a restart loads ten
// million entries in about a second and then reads only the bucket's
// changes since its revision. Layout, little-endian:
//
//	magic     8 bytes  "MMSUPSET"
//	format    uint32   suppressFormat
//	revision  uint64   the bucket revision the entries are at
//	count     uint64   number of entries
//	entries   count x (key uint64, expiry uint32), keys strictly ascending
//	checksum  uint32   CRC-32C (Castagnoli) of everything before it
//
// The file holds only hashes of keys and expiry seconds: nothing about a
// recipient or a reason.
const (
	suppressMagic     = "MMSUPSET"
	suppressFormat    = 1
	suppressHeader    = 8 + 4 + 8 + 8
	suppressPairBytes = 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeSuppressionSnapshot sorts pairs and replaces the snapshot at path
// with them, atomically, mode 0600.
func writeSuppressionSnapshot(path string, pairs []suppressPair, revision uint64) error {
	sortPairs(pairs)
	return writeFileAtomic(path, ".suppression-*.tmp", func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if err := encodeSuppressionSnapshot(w, pairs, revision); err != nil {
			return err
		}
		return w.Flush()
	})
}

// encodeSuppressionSnapshot writes the layout above; pairs are sorted.
func encodeSuppressionSnapshot(w io.Writer, pairs []suppressPair, revision uint64) error {
	sum := crc32.New(castagnoli)
	out := io.MultiWriter(w, sum)
	var head [suppressHeader]byte
	copy(head[:8], suppressMagic)
	binary.LittleEndian.PutUint32(head[8:], suppressFormat)
	binary.LittleEndian.PutUint64(head[12:], revision)
	binary.LittleEndian.PutUint64(head[20:], uint64(len(pairs)))
	if _, err := out.Write(head[:]); err != nil {
		return err
	}
	buf := make([]byte, 0, 4096*suppressPairBytes)
	for i, p := range pairs {
		buf = binary.LittleEndian.AppendUint64(buf, p.key)
		buf = binary.LittleEndian.AppendUint32(buf, p.expiry)
		if len(buf) == cap(buf) || i == len(pairs)-1 {
			if _, err := out.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	return err
}

// errSuppressionSnapshot marks a snapshot that is not usable.
var errSuppressionSnapshot = errors.New("suppression snapshot unusable")

// readSuppressionSnapshot reads the snapshot at path into a set, leaving
// out entries expired at now. A missing file is (nil, 0, nil). The file
// must be writable by its owner only, its size must match its count, its
// keys ascend, and its checksum match: anything else refuses it whole.
func readSuppressionSnapshot(path string, now time.Time) (map[uint64]uint32, uint64, error) {
	f, st, err := openTrusted(path)
	if f == nil || err != nil {
		return nil, 0, err
	}
	defer f.Close()
	entries, revision, err := decodeSuppressionSnapshot(bufio.NewReaderSize(f, 1<<20), st.Size(), now)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return entries, revision, nil
}

// decodeSuppressionSnapshot reads a snapshot of size bytes from r.
func decodeSuppressionSnapshot(r io.Reader, size int64, now time.Time) (map[uint64]uint32, uint64, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errSuppressionSnapshot, fmt.Sprintf(format, args...))
	}
	sum := crc32.New(castagnoli)
	in := io.TeeReader(r, sum)
	var head [suppressHeader]byte
	if _, err := io.ReadFull(in, head[:]); err != nil {
		return nil, 0, bad("header: %v", err)
	}
	if string(head[:8]) != suppressMagic {
		return nil, 0, bad("not a suppression snapshot (magic %q)", head[:8])
	}
	if f := binary.LittleEndian.Uint32(head[8:]); f != suppressFormat {
		return nil, 0, bad("format %d, want %d", f, suppressFormat)
	}
	revision := binary.LittleEndian.Uint64(head[12:])
	count := binary.LittleEndian.Uint64(head[20:])
	if size < suppressHeader+4 || count != uint64(size-suppressHeader-4)/suppressPairBytes ||
		uint64(size) != suppressHeader+4+count*suppressPairBytes {
		return nil, 0, bad("%d entries do not fit a file of %d bytes", count, size)
	}
	entries := make(map[uint64]uint32, count)
	sec := now.Unix()
	buf := make([]byte, 4096*suppressPairBytes)
	var prev uint64
	for done := uint64(0); done < count; {
		n := min(count-done, 4096)
		chunk := buf[:n*suppressPairBytes]
		if _, err := io.ReadFull(in, chunk); err != nil {
			return nil, 0, bad("entries: %v", err)
		}
		for i := 0; i < len(chunk); i += suppressPairBytes {
			key := binary.LittleEndian.Uint64(chunk[i:])
			exp := binary.LittleEndian.Uint32(chunk[i+8:])
			if done > 0 && key <= prev {
				return nil, 0, bad("keys out of order at entry %d", done)
			}
			prev = key
			done++
			if exp == 0 || sec < int64(exp) {
				entries[key] = exp
			}
		}
	}
	want := sum.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(r, tail[:]); err != nil {
		return nil, 0, bad("checksum: %v", err)
	}
	if got := binary.LittleEndian.Uint32(tail[:]); got != want {
		return nil, 0, bad("checksum %08x, computed %08x", got, want)
	}
	return entries, revision, nil
}
