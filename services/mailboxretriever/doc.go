// Package mailboxretriever is the mailbox-retriever worker: it reads the
// seed mailboxes the probe-sender writes to and reports, per probe, whether
// it arrived before its deadline, in which folder, how fast, and how the
// provider judged its authentication.
//
// # Expectations
//
// Each accepted mailmon.probe.sent becomes an entry in the KV bucket
// probe_pending (key: the probe id), written before the message is acked,
// so a restart loses no pending probe and a redelivery finds the key and
// changes nothing. A watcher keeps an in-memory index of the bucket for the
// deadline check. An entry moves pending → received, or pending → missing
// → late, always by compare-and-set, and the event of the new state is
// stored in the entry before it is published; a crash in between
// republishes the same event (same id, dropped by JetStream's duplicate
// window and by ClickHouse), and two copies of the worker racing for one
// probe report it once.
//
// # Reading
//
// IMAP (go-imap v2) over implicit TLS, STARTTLS, or plain TCP on loopback
// only; AUTHENTICATE PLAIN, LOGIN, or XOAUTH2 with a token read from a file
// or a command at every login. The folders are INBOX, the folder with the
// SPECIAL-USE \Junk attribute (else the first configured spam folder that
// exists) and configured other folders; each has its own connection in
// IDLE, re-issued every idle_refresh, with a search for new UIDs on every
// EXISTS, and a poll every poll_interval where IDLE is off or missing. A
// folder remembers its last UID while UIDVALIDITY holds, so reconnects do
// not re-read it. Connections that fail are retried with capped, jittered
// exponential backoff.
//
// POP3 (package pop3, written on net/textproto) is polled: UIDL, TOP n 0
// for new messages, DELE for reported probes, committed by QUIT. POP3 has
// no folders: placement is always inbox, and arrival is the topmost
// Received date.
//
// # A probe
//
// A message is ours only if its X-Mailmon-Track header verifies and names
// the probe customer; foreign, tampered, unknown-key, expired and other
// customers' messages are counted by reason and left alone. For a probe:
// placement (inbox, spam, other) and folder; arrival (IMAP INTERNALDATE, or
// the topmost Received date) giving the delivery latency from the relay's
// acceptance and the detection delay to when we saw it; the topmost
// Authentication-Results read leniently (package mailhdr: Microsoft omits
// the authserv-id) for SPF, DKIM (preferring our signing domain), DMARC and
// its policy, ARC and Microsoft's compauth; and the Received hop count.
// The event is published, then the message deleted if configured.
//
// A verified probe whose probe.sent is not known yet (it can arrive first)
// waits, and is reported the moment its expectation appears; after
// orphan_grace it is dropped as unexpected.
//
// # Deadlines
//
// A pending probe past its deadline is declared missing only once every
// folder of its account has been read completely after the deadline; the
// check asks the account for that read. An account that cannot be read
// therefore holds its probes pending instead of making them missing, and
// after alert_after raises an alert (resolved when it reads again). A
// probe found after its missing event is reported late, linked to it.
//
// # Running several copies
//
// Copies share the PROBE durable, so each probe.sent is consumed by one of
// them; expectations live in the bucket, which every copy watches. Each
// seed account has a lease (package lease, KV bucket leases, key
// mailbox-retriever.<account>): only the copy holding it reads the
// account, declares its probes missing (its complete reads are what make
// a probe missing) and raises its alert. Copies balance the accounts:
// each also holds a presence lease, so each knows its share (accounts ÷
// copies, rounded up); a copy at its share lets the others take a free
// account first, and one above it hands an account over per TTL. A copy
// that dies loses its leases within one TTL and another copy reads its
// accounts from then on, starting with a full read, and one that stops
// cleanly hands them over at once. The compare-and-set
// transitions make a probe reported once even when two readers overlap for
// a moment. A firing alert is remembered in the leases bucket so the next
// reader resolves it.
package mailboxretriever
