// Package logfollow reads log files the way `tail -F` does, but so that a
// process restarted at any moment, or a log rotated while the process was
// down, neither skips nor repeats a line.
//
// # Files are known by their head
//
// Paths are not identities: logrotate renames maillog to maillog.1 and a
// new maillog appears, or copies the file and truncates it in place
// (copytruncate). Inodes are not identities either: a copy has a new one,
// a deleted file's is reused. A file is identified by its fingerprint: the
// SHA-256 of its first line (of its first FingerprintBytes bytes when that
// line is longer), with the number of bytes hashed. A file gets one once
// its first line is complete; until then it has no line to read anyway.
//
// The fingerprint covers the first line rather than "the first N bytes of
// whatever is there now" so that it is a function of the content alone: a
// file read for the first time at 80 bytes and again, after a crash, at
// 80 kB has the same fingerprint, and so do the line ids derived from it
// (Line.FileID). A log line carries a timestamp and a process id, so the
// first lines of two different log files practically never agree. The one
// way they can: a log truncated (copytruncate) soon after it began, whose
// refill starts with the same line from the same process with the same
// stamp (Postfix stamps to the second, and an idle smtpd with the time of
// its previous event). The refill is then taken for the old file and its
// head is skipped up to the old offset. Rotation schedules truncate logs
// hours after they began; tests that rotate within seconds must make the
// first lines differ.
//
// # One table, every name
//
// A Follower keeps a table: fingerprint → how far that file was read, and
// how far the caller handled it. Each scan looks at the path and at every
// file matching the rotated-name globs, computes their fingerprints and
// reads whatever has bytes past the table's offset, oldest file first,
// the file at the path last. That one rule covers every rotation:
//
//   - rename: the old file shows up under its rotated name with the same
//     head, and its last lines (written before the writer reopened its
//     log) are read from where reading stopped. The new file at the path
//     is new to the table and read from its start.
//   - copytruncate: the copy has the original's head, so it continues
//     where the original was left; the truncated file at the path has a
//     new head as soon as it is refilled. A read from the path that raced
//     with the truncation is detected by re-checking the head after the
//     read, and dropped. (Lines written between the copy and the
//     truncation are lost to every reader: that is inherent in
//     copytruncate.)
//   - rotated once or several times while the process was down: the
//     checkpoint's table finds each known file under whatever name it has
//     now; files it does not know are read from their start.
//   - the file at the path renamed to a name no glob matches, or deleted:
//     like tail -F, the follower keeps it open and reads it to its end.
//
// A partial last line waits for its newline; in a rotated file left alone
// for RotateGrace it is returned as it is, because nobody will finish it.
//
// # Checkpoints
//
// Every Line comes with the Position just after it. The caller hands that
// position to Handled once the line is durably handled (for mailmon: once
// JetStream acknowledged the line's events) and persists Checkpoint, the
// handled offsets of the whole table. After a crash Open resumes from the
// checkpoint and handles some lines again, which is safe when handling is
// idempotent: the events of a line have ids derived from (FileID, Offset),
// so the bus drops the copies. A follower opened without a checkpoint
// reads the file at the path from its start (or its end, StartAtEnd) and
// treats rotated files already there as history.
//
// Files are polled (Wait sleeps PollInterval): polling a few files a few
// times a second costs nothing, works on every file system and needs no
// inotify limits.
//
// A StreamReader reads lines from a pipe (stdin) with the same Line type;
// it has no positions to resume from.
package logfollow
