// Package natstest starts a real NATS server with JetStream for tests.
//
// mailmon's workers talk only through JetStream, so their tests run against
// the real thing rather than a fake: an embedded nats-server (the same one
// `mailmon run` uses on a single machine) listening on a random loopback
// port, storing its streams in the test's temporary directory. Starting one
// takes tens of milliseconds, so every test can have its own server and
// tests stay independent under -shuffle and t.Parallel.
package natstest
