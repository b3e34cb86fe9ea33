// Package lease elects one holder of a named unit of work among the copies
// of a worker, with a key in the NATS KV bucket leases.
//
// # The protocol
//
// A lease is one key. A copy acquires it with Create, which succeeds only
// when the key is absent (or deleted, or expired), writing its holder id
// with a per-key TTL. The holder renews it every TTL/3 by writing the
// same key again, on the condition that the key's last revision is the one
// it wrote (compare-and-set), with the TTL again. A renewal that the
// server refuses (another copy holds the key, or it expired), or that does
// not succeed within 2·TTL/3 of the last stored write (a write that fails
// in transit is retried until then), ends the holder's term at once: its
// work is cancelled before it tries anything else. A term therefore ends
// at most 2·TTL/3 after the last write the server stored was sent, while
// the server keeps that write for a whole TTL: two copies never hold the
// same lease at once (only clocks running at very different speeds could
// break this).
//
// A copy that stops cleanly deletes the key (on the condition that it
// still holds the revision it wrote), so a standby takes over at once. A
// copy that dies (SIGKILL, a lost host) leaves the key to expire: a
// standby takes over within one TTL. A standby watches the key and tries
// Create as soon as it is deleted or expires, and every TTL/3 in any case.
//
// # What the holder may assume
//
// Holding a lease means no other copy holds it, not that no other copy's
// writes are still in flight: a holder that lost its lease may have
// published a moment before. Work done under a lease must therefore stay
// idempotent (events with ids derived from the work, compare-and-set on
// shared state); the lease only keeps the copies from doing the same work
// in parallel.
//
// # Keys in the bucket
//
//	dns-sweeper                      the dns-sweeper leader
//	probe-sender                     the probe-sender leader
//	probe-sender.round.<unix ms>     a round's slot, claimed (Claim) by its sender
//	mailbox-retriever.<account>      the copy reading one seed account
//	mailbox-retriever.<account>.alert  that account's alert is firing
//	mailbox-retriever.copy.<holder>  a mailbox-retriever copy is present
//
// A holder's value is its id, host-pid-random by default (DefaultHolder),
// so an operator (or a failure test) can tell which process leads.
package lease
