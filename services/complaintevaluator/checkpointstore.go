package complaintevaluator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckpointBucket is the KV bucket that holds the evaluator's
// checkpoints, one per partition.
const CheckpointBucket = "evaluator_checkpoints"

// checkpointChunk is the size of one chunk of a checkpoint. A KV value is
// one NATS message, at most the server's max_payload (1 MiB by default),
// and the state of a busy installation (the complaint ids of the longest
// window, the delivery ids of dedupe_window) is larger, so a checkpoint is
// written as chunks well under any sensible max_payload.
const checkpointChunk = 256 << 10

// maxCheckpointSize bounds what a reader assembles (and a writer writes).
const maxCheckpointSize = 1 << 30

// checkpointStore keeps the checkpoints of one partition in the bucket as
// chunked keys:
//
//	p<partition>-of-<partitions>              the manifest (JSON): slot, chunks, size, sha256
//	p<partition>-of-<partitions>.<slot>.<i>   chunk i of the checkpoint in slot a or b
//
// A write fills the slot the manifest does not point at, then replaces
// the manifest: a reader sees the old checkpoint or the new one, never a
// mix (the digest checks it), and a crash mid-write leaves the old one in
// force. The keys of a partition are bounded (two slots), so nothing
// accumulates; a changed partition count writes under new keys, and the
// bucket's max age (7 days: an older checkpoint is of no use) removes the
// old ones.
type checkpointStore struct {
	kv       jetstream.KeyValue
	manifest string
}

type checkpointManifest struct {
	Version int    `json:"version"`
	Slot    string `json:"slot"`
	Chunks  int    `json:"chunks"`
	Size    int    `json:"size"`
	SHA256  string `json:"sha256"`
	TakenAt string `json:"taken_at"`
}

func openCheckpointStore(ctx context.Context, js jetstream.JetStream, partition, partitions int) (*checkpointStore, error) {
	kv, err := js.KeyValue(ctx, CheckpointBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s (apply the pipelines): %w", CheckpointBucket, err)
	}
	return &checkpointStore{kv: kv, manifest: fmt.Sprintf("p%d-of-%d", partition, partitions)}, nil
}

func (s *checkpointStore) chunkKey(slot string, i int) string {
	return fmt.Sprintf("%s.%s.%d", s.manifest, slot, i)
}

// current returns the manifest in force; found is false when there is
// none.
func (s *checkpointStore) current(ctx context.Context) (m checkpointManifest, found bool, err error) {
	entry, err := s.kv.Get(ctx, s.manifest)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(entry.Value(), &m); err != nil {
		return m, false, fmt.Errorf("manifest %s: %w", s.manifest, err)
	}
	return m, true, nil
}

// Load returns the checkpoint in force, nil when there is none.
func (s *checkpointStore) Load(ctx context.Context) ([]byte, error) {
	m, found, err := s.current(ctx)
	if err != nil || !found {
		return nil, err
	}
	if m.Slot != "a" && m.Slot != "b" || m.Chunks < 1 || m.Size < 0 || m.Size > maxCheckpointSize || m.Chunks > m.Size/checkpointChunk+1 {
		return nil, fmt.Errorf("manifest %s: slot %q, %d chunks, %d bytes: not a checkpoint", s.manifest, m.Slot, m.Chunks, m.Size)
	}
	data := make([]byte, 0, m.Size)
	for i := range m.Chunks {
		entry, err := s.kv.Get(ctx, s.chunkKey(m.Slot, i))
		if err != nil {
			return nil, fmt.Errorf("chunk %d of %d: %w", i, m.Chunks, err)
		}
		if len(data)+len(entry.Value()) > m.Size {
			return nil, fmt.Errorf("chunk %d of %d: more than the %d bytes of the manifest", i, m.Chunks, m.Size)
		}
		data = append(data, entry.Value()...)
	}
	sum := sha256.Sum256(data)
	if len(data) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, fmt.Errorf("checkpoint %s: size or digest differs from its manifest (overwritten while read?)", s.manifest)
	}
	return data, nil
}

// Save writes data as the checkpoint in force.
func (s *checkpointStore) Save(ctx context.Context, data []byte, takenAt time.Time) error {
	if len(data) > maxCheckpointSize {
		return fmt.Errorf("checkpoint of %d bytes exceeds %d", len(data), maxCheckpointSize)
	}
	old, found, err := s.current(ctx)
	if err != nil {
		return err
	}
	slot := "a"
	if found && old.Slot == "a" {
		slot = "b"
	}
	chunks := 0
	for off := 0; off < len(data) || chunks == 0; off += checkpointChunk {
		end := min(off+checkpointChunk, len(data))
		if _, err := s.kv.Put(ctx, s.chunkKey(slot, chunks), data[off:end]); err != nil {
			return fmt.Errorf("chunk %d: %w", chunks, err)
		}
		chunks++
	}
	sum := sha256.Sum256(data)
	m := checkpointManifest{Version: checkpointVersion, Slot: slot, Chunks: chunks, Size: len(data),
		SHA256: hex.EncodeToString(sum[:]), TakenAt: takenAt.UTC().Format(time.RFC3339Nano)}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, s.manifest, b); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	// Chunks of an earlier, larger checkpoint in this slot are dropped.
	for i := chunks; ; i++ {
		_, err := s.kv.Get(ctx, s.chunkKey(slot, i))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil
		}
		if err != nil {
			return nil // harmless leftovers; the next write tries again
		}
		if err := s.kv.Purge(ctx, s.chunkKey(slot, i)); err != nil {
			return nil
		}
	}
}
