package mailboxretriever

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
)

// Bucket is the KV bucket holding one entry per expected probe, keyed by
// probe id (declared in pipelines/topology.yaml).
const Bucket = "probe_pending"

// States of an expectation. pending → received, or pending → missing →
// late. The event of the current state is stored in the entry before it is
// published, so a crash between the two republishes the same event (same
// id: JetStream and ClickHouse drop the copy) instead of making a new one.
const (
	statePending  = "pending"
	stateReceived = "received"
	stateMissing  = "missing"
	stateLate     = "late"
)

// keyRE is what a probe id must look like to be a KV key.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_=.-]{1,128}$`)

// entry is the value of a probe's key.
type entry struct {
	State      string    `json:"state"`
	Account    string    `json:"account"`
	Deadline   time.Time `json:"deadline"`
	DeadlineMs int64     `json:"deadline_ms"`
	Probe      probeInfo `json:"probe"`
	// Event is the event of the current state (received, missing or late),
	// stored before it is published.
	Event     json.RawMessage `json:"event,omitempty"`
	Published bool            `json:"published,omitempty"`
	// MissingEventID is the id of the missing event, kept for the late one.
	MissingEventID string `json:"missing_event_id,omitempty"`
}

// probeInfo is what the retriever keeps of a probe.sent.
type probeInfo struct {
	schemas.ProbeRoute
	schemas.ProbeSeed
	MessageID  string    `json:"message_id"`
	SentAt     time.Time `json:"sent_at"`
	DKIMDomain string    `json:"dkim_domain,omitempty"`
}

func decodeEntry(kve jetstream.KeyValueEntry) (entry, error) {
	var e entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return entry{}, fmt.Errorf("expectation %s: %w", kve.Key(), err)
	}
	return e, nil
}

// errConflict: another writer updated the entry first.
var errConflict = errors.New("expectation changed concurrently")

// update writes e over revision rev.
func update(ctx context.Context, kv jetstream.KeyValue, key string, e entry, rev uint64) (uint64, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	n, err := kv.Update(ctx, key, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errConflict
	}
	return n, err
}

// indexed is what the in-memory index keeps per key.
type indexed struct {
	State     string
	Account   string
	Deadline  time.Time
	Published bool
	Updated   time.Time
}
