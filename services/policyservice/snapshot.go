package policyservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// snapshotFormat is the version of the snapshot file's layout.
const snapshotFormat = 1

// snapshotFile is the service's copy of the bucket on disk. Each record
// is kept as the bucket stored it, so the snapshot is read back through
// the same checks as the watch.
type snapshotFile struct {
	Format    int              `json:"format"`
	WrittenAt time.Time        `json:"written_at"`
	Records   []snapshotRecord `json:"records"`
}

type snapshotRecord struct {
	Key      string          `json:"key"`
	Revision uint64          `json:"revision"`
	Record   json.RawMessage `json:"record"`
}

// errSnapshotTooBig is returned when the snapshot would exceed (or
// exceeds) snapshot_max_bytes.
var errSnapshotTooBig = errors.New("snapshot larger than snapshot_max_bytes")

// encodeSnapshot lays out the entries, leaving out those expired at now.
func encodeSnapshot(entries []*entry, now time.Time, maxBytes int64) ([]byte, error) {
	f := snapshotFile{Format: snapshotFormat, WrittenAt: now.UTC(), Records: []snapshotRecord{}}
	for _, e := range entries {
		if e.rec.Active(now) {
			f.Records = append(f.Records, snapshotRecord{Key: e.key, Revision: e.revision, Record: e.value})
		}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: %d records, %d bytes over %d", errSnapshotTooBig, len(f.Records), len(data), maxBytes)
	}
	return data, nil
}

// writeSnapshot replaces the file at path with data, atomically (see
// writeFileAtomic).
func writeSnapshot(path string, data []byte) error {
	return writeFileAtomic(path, ".enforcement-*.tmp", func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileAtomic replaces the file at path with what write writes,
// atomically: a temporary file in the same directory (named by pattern,
// mode 0600), synced, renamed over the old one, and the directory synced,
// so a crash leaves either the old file or the new one, never a part.
func writeFileAtomic(path, pattern string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, pattern) // created 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed; only the directory's durability is unsure
	}
	defer d.Close()
	d.Sync()
	return nil
}

// readSnapshot reads the snapshot at path. A missing file is (nil, nil).
// The file must be at most maxBytes and writable by its owner only:
// anyone else able to write it could make the service enforce at start.
func readSnapshot(path string, maxBytes int64) (*snapshotFile, error) {
	f, _, err := openTrusted(path)
	if f == nil || err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, errSnapshotTooBig, maxBytes)
	}
	var snap snapshotFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if snap.Format != snapshotFormat {
		return nil, fmt.Errorf("%s: format %d, want %d", path, snap.Format, snapshotFormat)
	}
	return &snap, nil
}

// openTrusted opens a snapshot file for reading: nil (and no error) when
// there is none. It must be a regular file writable by its owner only:
// anyone else able to write it could make the service enforce at start.
func openTrusted(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil && st.Mode().Perm()&0o022 != 0 {
		err = fmt.Errorf("%s is writable by group or others (mode %v); not trusted", path, st.Mode().Perm())
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}
