package app

import "testing"

func TestClickHouseClientUsesTheLocalServersPort(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClickHouse.Addr = "clickhouse.example.net:9000"
	if got := ClickHouseClient(cfg).Addr; got != "clickhouse.example.net:9000" {
		t.Errorf("without a local server: %q, want the configured address", got)
	}
	cfg.ClickHouse.Local.Enabled, cfg.ClickHouse.Local.TCPPort = true, 19123
	if got := ClickHouseClient(cfg).Addr; got != "127.0.0.1:19123" {
		t.Errorf("with a local server on 19123: %q", got)
	}
	// A local server on a free port has no address a command can know.
	cfg.ClickHouse.Local.TCPPort = 0
	if got := ClickHouseClient(cfg).Addr; got != "clickhouse.example.net:9000" {
		t.Errorf("with a local server on a free port: %q, want the configured address", got)
	}
}
