// Package app assembles a mailmon process: the root config file (shared
// sections and one section per worker), the runtime every worker shares
// (NATS, embedded or external; the JetStream topology; ClickHouse with its
// migrations; metrics, health and logging) and the registry of workers that
// `mailmon run` and the per-worker subcommands start.
package app
