package clickhousesink

import (
	"time"

	"github.com/mailmon/mailmon/services/internal/config"
)

// Config is the `clickhouse_sink` section of the mailmon config. Where the
// events go (server, database, retention) is the shared `clickhouse`
// section.
type Config struct {
	// BatchRows sends a table's batch once it holds this many rows.
	BatchRows int `yaml:"batch_rows"`
	// BatchAge sends a table's batch once its oldest row waited this long,
	// however few rows it holds. It bounds how stale the tables are; every
	// insert costs ClickHouse a new part (files per column, merged later),
	// so it is seconds, not less. A batch of a tenth of BatchRows or more
	// goes in as soon as no new row arrived for 100 ms.
	BatchAge config.Duration `yaml:"batch_age"`
	// MaxPending caps the messages the sink holds unacknowledged at once,
	// across all streams and tables; it stops pulling at the cap. This is
	// what bounds memory while ClickHouse is down.
	// At least batch_rows.
	MaxPending int `yaml:"max_pending"`
	// FetchBatch is how many messages the pull subscription keeps buffered
	// ahead of the batches, and the most taken in one step.
	FetchBatch int `yaml:"fetch_batch"`
	// FetchBytes caps the bytes each stream's pull subscription asks for at
	// once. The server holds what it sent until the client reads it and
	// drops a connection whose unread data passes its max_pending (64 MB
	// by default) as a slow consumer; the messages in flight then come back
	// only after AckWait. All streams together, and the other workers on
	// the same connection, must stay below that.
	FetchBytes config.ByteSize `yaml:"fetch_bytes"`
	// Decoders is how many goroutines decode and check messages; 0 means
	// one per CPU (GOMAXPROCS). Decoding is the sink's largest own cost,
	// and one stream (deliveries) carries most events, so it is spread
	// over the cores rather than done by each stream's puller.
	Decoders int `yaml:"decoders"`
	// InsertTimeout bounds one batch insert.
	InsertTimeout config.Duration `yaml:"insert_timeout"`
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// to insert a batch that failed.
	// The same batch is retried, and a dead letter that could not be stored
	// too; JetStream keeps the messages meanwhile.
	RetryMin config.Duration `yaml:"retry_min"`
	RetryMax config.Duration `yaml:"retry_max"`
	// RejectAfter is how many times ClickHouse may refuse the same rows
	// (answer the insert with an error of its own, not a lost connection
	// or a server overloaded or out of space) before the sink splits the
	// batch in two; a single row refused that often is dead-lettered. The
	// sink counts this itself: the consumers have no delivery limit, since
	// JetStream's count grows with every shutdown and AckWait expiry too.
	// Such a row is dead-lettered with the reason "rejected: …", and the rest
	// of the batch is stored.
	RejectAfter int `yaml:"reject_after"`
	// ShutdownTimeout bounds the final flush at shutdown; what is not
	// stored by then is handed back to JetStream unacknowledged.
	ShutdownTimeout config.Duration `yaml:"shutdown_timeout"`
	// RetentionInterval is how often day partitions older than
	// clickhouse.retention_days are dropped.
	// Once at start, on servers with TTL support, a table TTL is set as well.
	RetentionInterval config.Duration `yaml:"retention_interval"`
	// LagInterval is how often the consumers' pending counts are sampled
	// for the lag metric.
	LagInterval config.Duration `yaml:"lag_interval"`
}

// DefaultConfig returns batches of 50,000 rows or 5 s, at most 200,000
// messages held, and hourly retention.
func DefaultConfig() Config {
	return Config{
		BatchRows:         50_000,
		BatchAge:          config.Duration(5 * time.Second),
		MaxPending:        200_000,
		FetchBatch:        5_000,
		FetchBytes:        4 << 20,
		InsertTimeout:     config.Duration(30 * time.Second),
		RetryMin:          config.Duration(250 * time.Millisecond),
		RetryMax:          config.Duration(30 * time.Second),
		RejectAfter:       5,
		ShutdownTimeout:   config.Duration(10 * time.Second),
		RetentionInterval: config.Duration(time.Hour),
		LagInterval:       config.Duration(15 * time.Second),
	}
}

// Validate reports every problem at once, with paths relative to the
// section.
func (c Config) Validate() error {
	var check config.Check
	if c.BatchRows < 1 {
		check.Addf("batch_rows", "must be at least 1, got %d", c.BatchRows)
	}
	if c.MaxPending < c.BatchRows {
		check.Addf("max_pending", "must be at least batch_rows (%d), got %d", c.BatchRows, c.MaxPending)
	}
	if c.FetchBatch < 1 {
		check.Addf("fetch_batch", "must be at least 1, got %d", c.FetchBatch)
	}
	if c.FetchBytes < 64<<10 {
		check.Addf("fetch_bytes", "must be at least 64KiB (a message must fit), got %s", c.FetchBytes)
	}
	if c.RejectAfter < 1 {
		check.Addf("reject_after", "must be at least 1, got %d", c.RejectAfter)
	}
	if c.Decoders < 0 {
		check.Addf("decoders", "must be 0 (one per CPU) or more, got %d", c.Decoders)
	}
	for _, d := range []struct {
		key   string
		value config.Duration
	}{
		{"batch_age", c.BatchAge},
		{"insert_timeout", c.InsertTimeout},
		{"retry_min", c.RetryMin},
		{"retry_max", c.RetryMax},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"retention_interval", c.RetentionInterval},
		{"lag_interval", c.LagInterval},
	} {
		if d.value <= 0 {
			check.Addf(d.key, "must be positive, got %s", d.value)
		}
	}
	if c.RetryMin > 0 && c.RetryMax < c.RetryMin {
		check.Addf("retry_max", "must be at least retry_min (%s), got %s", c.RetryMin, c.RetryMax)
	}
	return check.Err()
}
