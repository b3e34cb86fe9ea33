package clickhousesink

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Only an exception the server raised about the data counts towards
// reject_after: a lost connection, a timeout or the server's own state
// (full disk, too many parts, a missing table) say nothing about the rows,
// and counting them would dead-letter good events during an outage.
func TestOnlyRefusalsAboutTheRowsCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"function raised on a row", &clickhouse.Exception{Code: 395, Message: "Value passed to 'throwIf' function is non zero"}, true},
		{"wrapped", fmt.Errorf("send: %w", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}), true},
		{"disk full", &clickhouse.Exception{Code: 243, Message: "Not enough space"}, false},
		{"merges behind", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, false},
		{"table missing", &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false},
		{"connection lost", io.ErrUnexpectedEOF, false},
		{"dial", &net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		if got := refusedByServer(tc.err); got != tc.want {
			t.Errorf("%s: refusedByServer = %v, want %v", tc.name, got, tc.want)
		}
	}
}
