// Package obs is the observability plumbing every worker shares: the slog
// logger built from the log config, a Prometheus registry, and one HTTP
// server that answers /metrics, /healthz (the process is alive) and /readyz
// (every registered dependency is ready: NATS connected, ClickHouse
// reachable, a listener bound).
//
// Workers log with the injected logger and count per-message outcomes in
// metrics instead of logging each message.
package obs
