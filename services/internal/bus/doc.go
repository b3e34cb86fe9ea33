// Package bus is how mailmon's workers talk to each other: publishing events
// to NATS JetStream and consuming them from durable pull consumers, with the
// acknowledgement, retry and dead-letter rules every worker shares.
//
// # Publishing
//
// An event is published as JSON on its kind's subject (schemas.KindOf) with
// the event id as the Nats-Msg-Id header. JetStream drops a message whose id
// it has already stored within the stream's duplicate window and answers
// with a PubAck marked duplicate, which the Publisher counts as success. So
// a worker that is unsure whether an event went out (a crash, a timeout, a
// failed Flush) simply publishes it again.
//
// Publish waits for the PubAck. PublishAsync does not; it keeps at most
// MaxPending publishes unconfirmed, and Flush waits for all of them and
// reports the ones that failed. The order a worker follows is: read input,
// publish, Flush, and only then commit its own progress (a log offset, an
// SMTP 250 to a sender, a mailbox deletion). A crash in between repeats some
// publishes, which the duplicate window absorbs; committing first could lose
// events.
//
// # Consuming
//
// Consume binds to a durable pull consumer that already exists: streams and
// consumers are declared in pipelines/ and applied by the topology package,
// never created here. The consumer's attempt limit and AckWait are read
// from the server, so the operator changes them in one place.
//
// The attempt limit is the consumer's max_attempts (metadata
// pipelines.MetadataMaxAttempts) on a consumer with unlimited deliveries
// (MaxDeliver -1). It is not JetStream's MaxDeliver because the server
// counts every delivery, and not only failed ones: an AckWait expiry after
// a crash or a stall, a nak at shutdown. A message those brought to
// MaxDeliver would never be delivered again, with no dead letter and no
// counter. Counted against max_attempts, they can only bring a dead letter
// earlier. A consumer with a positive MaxDeliver and no max_attempts is
// still served, with MaxDeliver as its limit and that risk (Consume logs a
// warning); one with neither retries a failing message until it succeeds.
//
// A handler's result decides what happens to the message:
//
//   - nil: Ack. The handler returns nil only after its side effects are
//     durable (the row inserted, the KV entry written, the webhook
//     answered). Acking earlier would lose the message if the process died
//     in between; acking after means a crash can cause a redelivery, so
//     handlers are idempotent by event id (ClickHouse tables deduplicate on
//     it, KV updates are keyed by it).
//   - Permanent(err), or a panic: the message can never succeed (malformed,
//     violates the contract). It is copied to the dead-letter subject
//     mailmon.dlq.<worker> and then terminated.
//   - any other error: NakWithDelay with the backoff for this attempt; if
//     the delivery count has reached the attempt limit, the message is
//     dead-lettered like a permanent failure instead.
//
// The ack is a plain Ack by default. The server does not confirm it, so a
// lost ack shows up only as a redelivery, which idempotent handlers absorb;
// waiting for a confirmation per message would halve throughput. AckSync is
// there for handlers that want it.
//
// A handler that runs longer than AckWait would have its message delivered
// to another worker mid-flight. Consume prevents that by sending InProgress
// for every handler still running after InProgressEvery (AckWait/3 by
// default), from one loop that serves all handlers.
//
// # Dead letters
//
// A dead letter carries the original bytes unchanged and headers describing
// what failed: Mailmon-Dead-Letter-Reason (the error text, cut to 1 KiB and
// stripped of line breaks), -Subject, -Stream, -Sequence, -Deliveries,
// -Worker, -Time and -Msg-Id (the original event id). Its own message id is
// derived from worker, stream and sequence, so dead-lettering the same
// message twice stores it once.
//
// The copy is stored before the original is terminated. If storing it fails
// (no DLQ stream, server trouble) the original is not terminated: while it
// has attempts left it is nakked, and its next delivery tries again; once it
// has none, the dead-letter publish is retried in place while heartbeats
// hold the message. A shutdown ends that retry by handing the message back
// (with unlimited deliveries the server delivers it again); only on a
// consumer with a positive MaxDeliver, on the last delivery, can it be given
// up, with an error logged.
//
// # Shutdown
//
// When Consume's context ends it stops pulling, lets running handlers and
// the messages already buffered in the client finish and be acked, and
// returns nil. DrainTimeout bounds this: after it, handlers see their
// context cancelled, and their messages and the unstarted ones are nakked
// so another copy of the worker takes them at once, whatever their
// delivery count: a shutdown is not the message's failure. Only on a
// consumer with a positive MaxDeliver is a message on its last allowed
// delivery dead-lettered instead, since a nak would drop it.
//
// # Embedded server
//
// StartEmbedded runs nats-server with JetStream on file storage inside the
// process: the single-machine default of `mailmon run`, and the real server
// tests use (see package natstest). Given users, it accepts only them, each
// held to its permissions; without users it is open, for tests only.
package bus
