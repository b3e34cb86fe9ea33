package clickhousesink

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/chstore"
)

// InsertForTest sends events as one batch exactly as the sink does: the
// sink's INSERT for their kind and configuration, the same rows in the
// same order. A test calls it twice to play a retried batch.
func InsertForTest(ctx context.Context, conn driver.Conn, ch chstore.Config, k schemas.Kind, events []schemas.Event) error {
	rows := make([]held, len(events))
	for i, ev := range events {
		rows[i] = held{ev: ev}
	}
	_, err := insertBatch(ctx, conn, insertQuery(k, ch), rows)
	return err
}
