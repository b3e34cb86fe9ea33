package pipelines

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

//go:embed topology.yaml
var topologyYAML []byte

// Topology is the whole declared set of streams, consumers and KV buckets.
type Topology struct {
	Streams   []Stream   `yaml:"streams"`
	Consumers []Consumer `yaml:"consumers"`
	Buckets   []Bucket   `yaml:"buckets"`
}

// Stream declares one JetStream stream. Every stream keeps messages by
// limits (age and bytes) on file storage, discarding the oldest first.
type Stream struct {
	Name            string   `yaml:"name"`
	Description     string   `yaml:"description"`
	Subjects        []string `yaml:"subjects"`
	MaxAge          Duration `yaml:"max_age"`
	MaxBytes        ByteSize `yaml:"max_bytes"`
	DuplicateWindow Duration `yaml:"duplicate_window"`
}

// Consumer declares one durable pull consumer. An empty FilterSubject means
// the whole stream. MaxDeliver -1 is unlimited: for a consumer that
// dead-letters by its own count, since JetStream's count also grows with
// every nak at shutdown and every AckWait expiry, and a message past it is
// never delivered again.
//
// MaxAttempts is that count for workers that consume through bus.Consume:
// a message whose handler fails on a delivery numbered MaxAttempts or more
// is dead-lettered by the worker. It needs MaxDeliver -1, so deliveries that
// were not failures (shutdowns, AckWait expiries) can only bring a dead
// letter earlier, never make the server drop the message. Apply stores it
// in the consumer's metadata under MetadataMaxAttempts, where the bus reads
// it; zero stores nothing (no limit of the worker's own).
type Consumer struct {
	Stream        string   `yaml:"stream"`
	Durable       string   `yaml:"durable"`
	FilterSubject string   `yaml:"filter_subject"`
	AckWait       Duration `yaml:"ack_wait"`
	MaxDeliver    int      `yaml:"max_deliver"`
	MaxAttempts   int      `yaml:"max_attempts"`
	MaxAckPending int      `yaml:"max_ack_pending"`
}

// MetadataMaxAttempts is the consumer metadata key that carries a declared
// max_attempts (a decimal integer) to the worker consuming through it.
const MetadataMaxAttempts = "mailmon_max_attempts"

// Bucket declares one KV bucket.
type Bucket struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	History     uint8  `yaml:"history"`
	// LimitMarkerTTL enables per-key TTLs (Create with jetstream.KeyTTL).
	LimitMarkerTTL Duration `yaml:"limit_marker_ttl"`
	// TTL removes every value this long after it was written; zero keeps
	// values until they are deleted.
	TTL Duration `yaml:"ttl"`
}

// Duration is a time.Duration written as a Go duration string ("90s").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a byte count written as an integer with an optional KiB, MiB
// or GiB suffix.
type ByteSize int64

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s, mult := n.Value, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: bad size %q", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

// Default returns the topology shipped with this build.
func Default() (Topology, error) { return Parse(topologyYAML) }

// Parse reads a topology document strictly (unknown keys are errors) and
// validates it.
func Parse(doc []byte) (Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("pipelines: %w", err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// Validate checks names and limits, that no two streams claim one subject,
// and that every consumer's filter lies inside its stream.
func (t Topology) Validate() error {
	var errs []error
	streams := map[string]Stream{}
	for _, s := range t.Streams {
		switch {
		case s.Name == "" || strings.ToUpper(s.Name) != s.Name:
			errs = append(errs, fmt.Errorf("stream %q: name must be UPPER_CASE", s.Name))
		case len(s.Subjects) == 0:
			errs = append(errs, fmt.Errorf("stream %s: no subjects", s.Name))
		case s.MaxAge <= 0 || s.MaxBytes <= 0:
			errs = append(errs, fmt.Errorf("stream %s: max_age and max_bytes must be set", s.Name))
		case s.DuplicateWindow <= 0 || s.DuplicateWindow > s.MaxAge:
			errs = append(errs, fmt.Errorf("stream %s: duplicate_window must be set and within max_age", s.Name))
		}
		if _, dup := streams[s.Name]; dup {
			errs = append(errs, fmt.Errorf("stream %s: declared twice", s.Name))
		}
		for _, other := range streams {
			for _, a := range s.Subjects {
				for _, b := range other.Subjects {
					if Overlaps(a, b) {
						errs = append(errs, fmt.Errorf("stream %s: subject %q overlaps %q of stream %s", s.Name, a, b, other.Name))
					}
				}
			}
		}
		streams[s.Name] = s
	}
	durables := map[string]bool{}
	for _, c := range t.Consumers {
		s, ok := streams[c.Stream]
		if !ok {
			errs = append(errs, fmt.Errorf("consumer %s: unknown stream %q", c.Durable, c.Stream))
			continue
		}
		if c.Durable == "" {
			errs = append(errs, fmt.Errorf("consumer on %s: durable name missing", c.Stream))
		}
		if key := c.Stream + "/" + c.Durable; durables[key] {
			errs = append(errs, fmt.Errorf("consumer %s: declared twice", key))
		} else {
			durables[key] = true
		}
		if c.FilterSubject != "" && !s.Covers(c.FilterSubject) {
			errs = append(errs, fmt.Errorf("consumer %s/%s: filter %q is not inside the stream's subjects", c.Stream, c.Durable, c.FilterSubject))
		}
		if c.AckWait <= 0 || c.MaxDeliver == 0 || c.MaxDeliver < -1 || c.MaxAckPending <= 0 {
			errs = append(errs, fmt.Errorf("consumer %s/%s: ack_wait, max_deliver (-1: unlimited) and max_ack_pending must be set", c.Stream, c.Durable))
		}
		switch {
		case c.MaxAttempts < 0:
			errs = append(errs, fmt.Errorf("consumer %s/%s: max_attempts must not be negative", c.Stream, c.Durable))
		case c.MaxAttempts > 0 && c.MaxDeliver != -1:
			errs = append(errs, fmt.Errorf("consumer %s/%s: max_attempts needs max_deliver -1 (a server limit would drop messages that shutdowns and AckWait expiries brought to it)", c.Stream, c.Durable))
		}
	}
	buckets := map[string]bool{}
	for _, b := range t.Buckets {
		if b.Name == "" || buckets[b.Name] {
			errs = append(errs, fmt.Errorf("bucket %q: empty or declared twice", b.Name))
		}
		buckets[b.Name] = true
		if b.History < 1 {
			errs = append(errs, fmt.Errorf("bucket %s: history must be at least 1", b.Name))
		}
		if b.TTL < 0 {
			errs = append(errs, fmt.Errorf("bucket %s: ttl must not be negative", b.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pipelines: invalid topology:\n%w", err)
	}
	return nil
}

// Covers reports whether every subject matching subject is captured by the
// stream.
func (s Stream) Covers(subject string) bool {
	for _, pattern := range s.Subjects {
		if Contains(pattern, subject) {
			return true
		}
	}
	return false
}

// StreamFor returns the stream that captures subject.
func (t Topology) StreamFor(subject string) (Stream, bool) {
	for _, s := range t.Streams {
		if s.Covers(subject) {
			return s, true
		}
	}
	return Stream{}, false
}

// ConsumersOf lists the consumers that receive messages published on
// subject.
func (t Topology) ConsumersOf(subject string) []Consumer {
	s, ok := t.StreamFor(subject)
	if !ok {
		return nil
	}
	var out []Consumer
	for _, c := range t.Consumers {
		if c.Stream == s.Name && (c.FilterSubject == "" || Contains(c.FilterSubject, subject)) {
			out = append(out, c)
		}
	}
	return out
}

// ApplyOptions adjust the declared topology to a deployment.
type ApplyOptions struct {
	// Replicas for streams, consumers and buckets: 1 on one machine, 3 in a
	// NATS cluster. Zero means 1.
	Replicas int
}

// Apply creates or updates every stream, consumer and bucket. It is
// idempotent: applying the same topology twice changes nothing.
func (t Topology) Apply(ctx context.Context, js jetstream.JetStream, opts ApplyOptions) error {
	replicas := max(opts.Replicas, 1)
	for _, s := range t.Streams {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        s.Name,
			Description: s.Description,
			Subjects:    s.Subjects,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      time.Duration(s.MaxAge),
			MaxBytes:    int64(s.MaxBytes),
			Duplicates:  time.Duration(s.DuplicateWindow),
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return fmt.Errorf("pipelines: stream %s: %w", s.Name, err)
		}
	}
	for _, c := range t.Consumers {
		var metadata map[string]string
		if c.MaxAttempts > 0 {
			metadata = map[string]string{MetadataMaxAttempts: strconv.Itoa(c.MaxAttempts)}
		}
		_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Durable:       c.Durable,
			FilterSubject: c.FilterSubject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       time.Duration(c.AckWait),
			MaxDeliver:    c.MaxDeliver,
			MaxAckPending: c.MaxAckPending,
			Replicas:      replicas,
			Metadata:      metadata,
		})
		if err != nil {
			return fmt.Errorf("pipelines: consumer %s/%s: %w", c.Stream, c.Durable, err)
		}
	}
	for _, b := range t.Buckets {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         b.Name,
			Description:    b.Description,
			History:        b.History,
			Storage:        jetstream.FileStorage,
			Replicas:       replicas,
			LimitMarkerTTL: time.Duration(b.LimitMarkerTTL),
			TTL:            time.Duration(b.TTL),
		})
		if err != nil {
			return fmt.Errorf("pipelines: bucket %s: %w", b.Name, err)
		}
	}
	return nil
}
