package logfollow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Source is what a Follower and a StreamReader have in common.
type Source interface {
	// Next returns the next complete line, or ok false if none is ready.
	Next() (line Line, ok bool, err error)
	// Wait returns when more lines may be ready, or ctx ended.
	Wait(ctx context.Context)
	// Lag is how many bytes are known to wait behind the last line.
	Lag() int64
	Close() error
}

var (
	_ Source = (*Follower)(nil)
	_ Source = (*StreamReader)(nil)
)

// Options configures a Follower.
type Options struct {
	// Path is the log file to follow.
	Path string
	// RotatedGlobs are the names rotated files get (filepath.Match
	// patterns). Files matching them are read too, from where reading
	// stopped when they still had the path, or — if they were never seen —
	// from the start. Compressed files (.gz, .bz2, .xz, .zst, .lz4, .Z,
	// .zip) are never read. Default: DefaultRotatedGlobs(Path).
	RotatedGlobs []string
	// PollInterval is how long Wait sleeps. Default 250 ms.
	PollInterval time.Duration
	// RotateGrace is how long a rotated file must have been left unchanged
	// before a partial last line in it is returned as a line: its writer
	// may still complete it before reopening its log. Default 1 s.
	RotateGrace time.Duration
	// FingerprintBytes caps the bytes of the first line that are hashed
	// into the fingerprint; at most MaxFingerprintBytes. Default 1024.
	FingerprintBytes int
	// MaxLineBytes caps a line; a longer one is returned cut, marked
	// Truncated. At least FingerprintBytes. Default 64 KiB.
	MaxLineBytes int
	// StartAtEnd makes a follower opened without a checkpoint skip what
	// the file already holds. Default false: read it from the start.
	// Rotated files found then are history and never read.
	StartAtEnd bool
	// ForgetAfter is how long a file that is gone stays in the checkpoint,
	// in case it comes back under a name the globs match. Default 1 h.
	ForgetAfter time.Duration
	// Logger reports rotations, truncations and files that are gone.
	// Default: discard.
	Logger *slog.Logger
}

// DefaultRotatedGlobs returns the rotated names logrotate gives path by
// default: path.1 (numbered) and path-YYYYMMDD (dateext).
func DefaultRotatedGlobs(path string) []string {
	return []string{path + ".1", path + "-[0-9]*[0-9]"}
}

func (o *Options) setDefaults() error {
	if o.Path == "" {
		return errors.New("logfollow: no path")
	}
	if o.RotatedGlobs == nil {
		o.RotatedGlobs = DefaultRotatedGlobs(o.Path)
	}
	for _, g := range o.RotatedGlobs {
		if _, err := filepath.Match(g, ""); err != nil {
			return fmt.Errorf("logfollow: rotated glob %q: %w", g, err)
		}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.RotateGrace < 0 || o.ForgetAfter < 0 {
		return errors.New("logfollow: negative rotate grace or forget-after")
	}
	if o.RotateGrace == 0 {
		o.RotateGrace = time.Second
	}
	if o.ForgetAfter == 0 {
		o.ForgetAfter = time.Hour
	}
	if o.FingerprintBytes == 0 {
		o.FingerprintBytes = 1024
	}
	if o.FingerprintBytes < 1 || o.FingerprintBytes > MaxFingerprintBytes {
		return fmt.Errorf("logfollow: fingerprint bytes %d not in 1..%d", o.FingerprintBytes, MaxFingerprintBytes)
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = 64 << 10
	}
	if o.MaxLineBytes < o.FingerprintBytes {
		return fmt.Errorf("logfollow: max line bytes %d is below fingerprint bytes %d", o.MaxLineBytes, o.FingerprintBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats counts what a Follower noticed since it was opened.
type Stats struct {
	// Files counts the files (fingerprints) found.
	Files uint64
	// Rotations counts the times another file took the path (renamed away
	// and a new one created).
	Rotations uint64
	// Truncations counts the times the file at the path was truncated
	// (copytruncate) and refilled.
	Truncations uint64
	// Lost counts files that disappeared (deleted, or renamed to a name no
	// glob matches) before they were read to their end.
	Lost uint64
}

// maxFiles bounds the files a Follower remembers; the ones gone longest
// are forgotten first.
const maxFiles = 1000

// Follower reads the lines of one log file and its rotated files across
// rotations and restarts. It is not safe for concurrent use.
type Follower struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	// files are the known files by fingerprint.
	files map[string]*fileState
	// fresh is set until the first scan of a follower opened without a
	// checkpoint: the files found then are history, except the path's.
	fresh bool
	// pathFile is the file at the path at the last scan, and pathInode
	// its inode there.
	pathFile  *fileState
	pathInode uint64
	// queue holds the files with something to read in this round, oldest
	// first, each with its file open.
	queue []*fileState

	stats Stats
}

// Open starts following opts.Path from a checkpoint (nil: from the start of
// the file, or its end with StartAtEnd). The file need not exist yet.
func Open(opts Options, checkpoint []Position) (*Follower, error) {
	return openWithClock(opts, checkpoint, time.Now)
}

// openWithClock is Open with another clock, for tests that step time.
func openWithClock(opts Options, checkpoint []Position, now func() time.Time) (*Follower, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	fl := &Follower{
		opts:  opts,
		log:   opts.Logger.With("path", opts.Path),
		now:   now,
		files: map[string]*fileState{},
		fresh: len(checkpoint) == 0,
	}
	for _, p := range checkpoint {
		if p.Fingerprint == "" || p.FingerprintLen < 1 || p.FingerprintLen > MaxFingerprintBytes || p.Offset < 0 {
			return nil, fmt.Errorf("logfollow: checkpoint entry %+v is malformed", p)
		}
		fl.files[p.Fingerprint] = &fileState{
			fp:   fingerprint{sum: p.Fingerprint, n: p.FingerprintLen},
			read: p.Offset, handled: p.Offset,
			path: p.Path, inode: p.Inode,
		}
	}
	return fl, nil
}

// Stats returns what the follower noticed so far.
func (fl *Follower) Stats() Stats { return fl.stats }

// Close closes every open file.
func (fl *Follower) Close() error {
	for _, r := range fl.files {
		r.closeFile()
	}
	fl.queue = nil
	return nil
}

// Wait sleeps one poll interval, or until ctx ends.
func (fl *Follower) Wait(ctx context.Context) {
	t := time.NewTimer(fl.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Next returns the next complete line, or ok false when there is none yet
// (call Wait, then Next again). It never blocks on a file growing.
func (fl *Follower) Next() (Line, bool, error) {
	scanned := false
	for {
		if len(fl.queue) == 0 {
			if scanned {
				return Line{}, false, nil
			}
			if err := fl.scan(); err != nil {
				return Line{}, false, err
			}
			scanned = true
			continue
		}
		r := fl.queue[0]
		line, ok, err := r.next(fl.opts.MaxLineBytes)
		if err != nil || ok {
			return line, ok, err
		}
		// At its end for now. A rotated file left alone for RotateGrace
		// will not get the newline of a partial last line any more.
		if !r.atPath && fl.now().Sub(r.modTime) >= fl.opts.RotateGrace {
			if line, ok := r.rest(fl.opts.MaxLineBytes); ok {
				return line, true, nil
			}
		}
		if !r.atPath || r.stale {
			r.closeFile() // the file at the path stays open: see scan
		}
		fl.queue = fl.queue[1:]
	}
}

// Handled records that the caller durably handled the lines up to p (a
// Line's Next). Checkpoint reports it from then on.
func (fl *Follower) Handled(p Position) {
	if r := fl.files[p.Fingerprint]; r != nil && p.Offset > r.handled {
		r.handled = p.Offset
	}
}

// Checkpoint returns the handled position in every known file, for Open
// after a restart. Persist it whole: it includes files read to their end,
// so they are not read again.
func (fl *Follower) Checkpoint() []Position {
	out := make([]Position, 0, len(fl.files))
	for _, r := range fl.files {
		out = append(out, Position{Path: r.path, Offset: r.handled, Fingerprint: r.fp.sum, FingerprintLen: r.fp.n, Inode: r.inode})
	}
	slices.SortFunc(out, func(a, b Position) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out
}

// Lag returns the bytes in the followed files not yet returned in lines:
// the open files as they are now, the others as of the last scan.
func (fl *Follower) Lag() int64 {
	var lag int64
	for _, r := range fl.files {
		size := r.size
		if r.f != nil {
			if st, err := r.f.Stat(); err == nil {
				size = st.Size()
			}
		} else if !r.missingSince.IsZero() {
			continue
		}
		if size > r.read {
			lag += size - r.read
		}
	}
	return lag
}

// candidate is one file found by a scan.
type candidate struct {
	name   string
	f      *os.File
	info   os.FileInfo
	fp     fingerprint
	atPath bool
}

// scan looks at the path and the rotated files, identifies each by its
// fingerprint, and queues those with unread bytes, oldest first.
func (fl *Follower) scan() error {
	now := fl.now()
	byFP := map[string]*candidate{}
	for _, name := range fl.names() {
		c, err := fl.inspect(name)
		if err != nil {
			fl.log.Warn("cannot read log file", "file", name, "error", err)
			continue
		}
		if c == nil {
			continue
		}
		// Two names with one head: a copy (copytruncate) next to its
		// original, or a hard link. They hold the same bytes as far as
		// the shorter goes; read the longer.
		if prev := byFP[c.fp.sum]; prev != nil {
			keep, drop := prev, c
			if c.info.Size() > prev.info.Size() {
				keep, drop = c, prev
			}
			keep.atPath = keep.atPath || drop.atPath
			drop.f.Close()
			c = keep
		}
		byFP[c.fp.sum] = c
	}

	var queue []*fileState
	var pathFile *fileState
	for sum, c := range byFP {
		r := fl.files[sum]
		if r == nil {
			r = fl.newFile(c)
		}
		if r.f != nil && r.inode != 0 && r.inode == inodeOf(c.info) {
			c.f.Close() // already open
		} else {
			r.closeFile()
			r.f = c.f
		}
		r.stale = false
		r.seen, r.missingSince = true, time.Time{}
		r.path, r.inode, r.size, r.modTime, r.atPath = c.name, inodeOf(c.info), c.info.Size(), c.info.ModTime(), c.atPath
		if c.atPath {
			pathFile = r
		}
		if fl.hasWork(r, now) {
			queue = append(queue, r)
		} else if !r.atPath {
			r.closeFile()
		}
	}
	// The file that was at the path stays open from one scan to the next,
	// like tail -F keeps it: renamed to a name no glob matches, or
	// deleted, its last lines are still read through the descriptor.
	present := map[uint64]bool{}
	for _, c := range byFP {
		present[inodeOf(c.info)] = true
	}
	for sum, r := range fl.files {
		if byFP[sum] != nil || r.f == nil {
			continue
		}
		if r.inode != 0 && present[r.inode] {
			// Still there, but its head changed: it was truncated and
			// refilled. What it holds now is another file's content.
			r.closeFile()
			continue
		}
		r.atPath = false
		if st, err := r.f.Stat(); err == nil {
			r.size, r.modTime = st.Size(), st.ModTime()
		}
		if fl.hasWork(r, now) {
			queue = append(queue, r)
		} else {
			r.closeFile()
		}
	}
	fl.noticePathChange(pathFile, byFP)
	fl.fresh = false
	fl.forgetMissing(byFP, now)

	// Oldest first, the file at the path last: rotated files hold the
	// earlier lines.
	slices.SortFunc(queue, func(a, b *fileState) int {
		if a.atPath != b.atPath {
			if a.atPath {
				return 1
			}
			return -1
		}
		// Equal times (a coarse clock): path.2 is older than path.1.
		return cmp.Or(a.modTime.Compare(b.modTime), cmp.Compare(b.path, a.path))
	})
	fl.queue = queue
	return nil
}

// hasWork reports whether r has bytes to read, or a partial last line to
// give up waiting for.
func (fl *Follower) hasWork(r *fileState, now time.Time) bool {
	partialIdle := !r.atPath && r.readEnd() > r.read && now.Sub(r.modTime) >= fl.opts.RotateGrace
	return r.size > r.readEnd() || partialIdle
}

// names lists the path and the files matching the rotated globs, without
// compressed ones.
func (fl *Follower) names() []string {
	names := []string{fl.opts.Path}
	for _, g := range fl.opts.RotatedGlobs {
		m, _ := filepath.Glob(g) // the pattern was checked in Open
		for _, name := range m {
			if name != fl.opts.Path && !slices.ContainsFunc(compressed, func(s string) bool { return strings.HasSuffix(name, s) }) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names[1:])
	return slices.Compact(names)
}

// compressed are suffixes of rotated files that are never read as text.
var compressed = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip"}

// inspect opens name and reads its fingerprint; nil if there is no such
// file or it has no complete first line yet (then it has no line to read
// either).
func (fl *Follower) inspect(name string) (*candidate, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	fp, ok, err := fileFingerprint(f, fl.opts.FingerprintBytes)
	if err != nil || !ok {
		f.Close()
		return nil, err
	}
	return &candidate{name: name, f: f, info: info, fp: fp, atPath: name == fl.opts.Path}, nil
}

// newFile registers a file seen for the first time. It is read from its
// start — unless this is the first scan without a checkpoint, when rotated
// files are history and the path's file is read from its start or, with
// StartAtEnd, from after its last complete line.
func (fl *Follower) newFile(c *candidate) *fileState {
	r := &fileState{fp: c.fp}
	fl.stats.Files++
	if fl.fresh && (!c.atPath || fl.opts.StartAtEnd) {
		r.read = c.info.Size()
		if c.atPath {
			// A partial last line is skipped when its newline comes.
			last := make([]byte, 1)
			if r.read > 0 {
				if _, err := c.f.ReadAt(last, r.read-1); err == nil && last[0] != '\n' {
					r.skipPartial = true
				}
			}
		}
		r.handled = r.read
	}
	if len(fl.files) >= maxFiles {
		fl.forgetOldest()
	}
	fl.files[c.fp.sum] = r
	return r
}

// noticePathChange counts a new file at the path, as a rotation (another
// inode) or a truncation (the same inode, another head).
func (fl *Follower) noticePathChange(now *fileState, found map[string]*candidate) {
	before, beforeInode := fl.pathFile, fl.pathInode
	fl.pathFile = now
	if now != nil {
		fl.pathInode = inodeOf(found[now.fp.sum].info)
		if !found[now.fp.sum].atPath {
			fl.pathInode = now.inode
		}
	}
	if before == nil || now == nil || before == now {
		return
	}
	if beforeInode != 0 && beforeInode == fl.pathInode {
		fl.stats.Truncations++
		fl.log.Info("log file truncated and refilled", "read_before", before.read)
	} else {
		fl.stats.Rotations++
		fl.log.Info("log file rotated", "old_name", before.path)
	}
}

// forgetMissing marks the files this scan did not find as missing, counts
// those that went with unread bytes, and forgets those gone for
// ForgetAfter.
func (fl *Follower) forgetMissing(found map[string]*candidate, now time.Time) {
	for sum, r := range fl.files {
		if found[sum] != nil || r.f != nil {
			continue
		}
		if r.missingSince.IsZero() {
			r.missingSince = now
			if r.seen && r.size > r.readEnd() {
				fl.stats.Lost++
				fl.log.Warn("log file disappeared before it was read to its end; check rotated_globs",
					"file", r.path, "unread_bytes", r.size-r.readEnd(), "rotated_globs", fl.opts.RotatedGlobs)
			}
		}
		if now.Sub(r.missingSince) >= fl.opts.ForgetAfter {
			delete(fl.files, sum)
		}
	}
}

// forgetOldest drops the file missing for the longest time or, if none is
// missing, the one modified longest ago.
func (fl *Follower) forgetOldest() {
	var victim string
	var vr *fileState
	for sum, r := range fl.files {
		switch {
		case vr == nil:
		case !r.missingSince.IsZero() && vr.missingSince.IsZero():
		case r.missingSince.IsZero() != vr.missingSince.IsZero():
			continue
		case !r.missingSince.IsZero() && r.missingSince.Before(vr.missingSince):
		case r.missingSince.IsZero() && r.modTime.Before(vr.modTime):
		default:
			continue
		}
		victim, vr = sum, r
	}
	delete(fl.files, victim)
}
