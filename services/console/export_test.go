package console

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// WrapConn makes w wrap the ClickHouse connection it opens, so a test can
// see the queries.
func WrapConn(w *Worker, wrap func(driver.Conn) driver.Conn) {
	open := w.open
	w.open = func(ctx context.Context) (driver.Conn, error) {
		c, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
}
