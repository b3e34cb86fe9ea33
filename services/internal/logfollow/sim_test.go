package logfollow

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRandomRotationsAndCrashes runs a writer that appends numbered lines
// and rotates its log by rename and by copytruncate, against a reader that
// handles lines, saves its position now and then, and crashes (reopens from
// the last saved position). Every line must be read, and a line read twice
// must come back with the same (FileID, Offset) both times, so a consumer
// that keys lines by it counts each once.
func TestRandomRotationsAndCrashes(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { simulate(t, seed, 1500) })
	}
}

type sim struct {
	t      *testing.T
	rng    *rand.Rand
	path   string
	clock  time.Time
	w      *os.File
	next   int  // number of the next line to write
	half   bool // a line's first half is written, not its newline
	nRot   int  // rotated files so far, named path.1 (newest) .. path.nRot
	opts   Options
	fl     *Follower
	saved  []Position
	keys   map[int]string // line number → "fileid@offset" first seen
	seen   map[string]int // "fileid@offset" → line number
	reads  int
	crash  int
	rename int
	copies int
}

// simDebug prints every step (set it while chasing a failing seed).
var simDebug = false

func (s *sim) logf(format string, args ...any) {
	if simDebug {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func simulate(t *testing.T, seed uint64, steps int) {
	s := &sim{
		t:     t,
		rng:   rand.New(rand.NewPCG(seed, seed)),
		path:  filepath.Join(t.TempDir(), "maillog"),
		clock: time.Unix(1_700_000_000, 0),
		keys:  map[int]string{},
		seen:  map[string]int{},
	}
	s.opts = Options{Path: s.path, RotatedGlobs: []string{s.path + ".[0-9]*"}, RotateGrace: 50 * time.Millisecond, MaxLineBytes: 1024}
	s.openWriter()
	defer func() { s.w.Close() }()
	s.write()
	s.reopen()
	defer func() { s.fl.Close() }()
	// Like the worker, persist a checkpoint once the first scan is done,
	// so a restart is never taken for a first start (which skips rotated
	// files as history).
	s.read(1)
	s.saved = s.fl.Checkpoint()

	for range steps {
		s.clock = s.clock.Add(5 * time.Millisecond)
		switch p := s.rng.IntN(100); {
		case p < 50:
			s.write()
		case p < 53 && !s.half:
			s.rotateByRename()
		case p < 56 && !s.half:
			s.rotateByCopy()
		case p < 58:
			s.crash++
			s.fl.Close()
			s.reopen()
		default:
			s.read(s.rng.IntN(20))
		}
	}
	if s.half {
		s.writeString("\n")
		s.half = false
	}
	// Drain: let every grace period pass.
	for idle := 0; idle < 3; {
		s.clock = s.clock.Add(time.Second)
		if s.read(1 << 30) {
			idle = 0
		} else {
			idle++
		}
	}
	for n := range s.next {
		if _, ok := s.keys[n]; !ok {
			t.Fatalf("line %d was never read (%d lines, %d rename and %d copytruncate rotations, %d crashes)", n, s.next, s.rename, s.copies, s.crash)
		}
	}
	if st := s.fl.Stats(); st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d lines, %d reads (re-reads after crashes: %d), %d rename and %d copytruncate rotations, %d crashes",
		s.next, s.reads, s.reads-s.next, s.rename, s.copies, s.crash)
}

func (s *sim) openWriter() {
	w, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.w = w
}

func (s *sim) reopen() {
	fl, err := openWithClock(s.opts, s.saved, func() time.Time { return s.clock })
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf("reopen at %+v", s.saved)
	s.fl = fl
}

func (s *sim) writeString(text string) {
	if _, err := s.w.WriteString(text); err != nil {
		s.t.Fatal(err)
	}
}

// write appends 1-5 lines of varied length, sometimes stopping half-way
// through the last one.
func (s *sim) write() {
	if s.half {
		s.writeString("tail\n")
		s.half = false
	}
	for range 1 + s.rng.IntN(5) {
		s.logf("write %d", s.next)
		s.writeString(fmt.Sprintf("L%07d %s\n", s.next, strings.Repeat("x", s.rng.IntN(120))))
		s.next++
	}
	if s.rng.IntN(4) == 0 {
		s.writeString(fmt.Sprintf("L%07d half ", s.next))
		s.next++
		s.half = true
	}
}

// shift renames path.N to path.N+1, newest last, to make room for path.1.
func (s *sim) shift() {
	for i := s.nRot; i >= 1; i-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", s.path, i), fmt.Sprintf("%s.%d", s.path, i+1)); err != nil {
			s.t.Fatal(err)
		}
	}
	s.nRot++
}

func (s *sim) rotateByRename() {
	s.rename++
	s.logf("rename rotation: %s", s.inodes())
	s.shift()
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		s.t.Fatal(err)
	}
	// The writer writes a little more before it reopens its log.
	if s.rng.IntN(2) == 0 {
		s.write()
		if s.half {
			s.writeString("\n")
			s.half = false
		}
	}
	s.w.Close()
	s.openWriter()
}

func (s *sim) rotateByCopy() {
	s.copies++
	s.logf("copy rotation: %s", s.inodes())
	s.shift()
	data, err := os.ReadFile(s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(s.path+".1", data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Truncate(s.path, 0); err != nil {
		s.t.Fatal(err)
	}
}

// read handles up to n lines and saves the position after the last one
// now and then; it reports whether it read anything.
func (s *sim) read(n int) bool {
	any := false
	for range n {
		line, ok, err := s.fl.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		if !ok {
			break
		}
		any = true
		s.reads++
		s.logf("read %q %s@%d next %d from %s ino %d", line.Text[:min(8, len(line.Text))], line.FileID[:6], line.Offset, line.Next.Offset, filepath.Base(line.Path), line.Next.Inode)
		num, err := strconv.Atoi(strings.TrimPrefix(strings.Fields(line.Text)[0], "L"))
		if err != nil {
			s.t.Fatalf("line %q: %v", line.Text, err)
		}
		key := line.FileID + "@" + strconv.FormatInt(line.Offset, 10)
		if prev, ok := s.keys[num]; ok && prev != key {
			s.t.Fatalf("line %d read as %s and again as %s", num, prev, key)
		}
		if other, ok := s.seen[key]; ok && other != num {
			s.t.Fatalf("lines %d and %d share the key %s", other, num, key)
		}
		s.keys[num], s.seen[key] = key, num
		if s.rng.IntN(3) == 0 {
			s.fl.Handled(line.Next)
			s.saved = s.fl.Checkpoint()
		}
	}
	return any
}

func (s *sim) inodes() string {
	var b strings.Builder
	for i := 0; i <= s.nRot; i++ {
		name := s.path
		if i > 0 {
			name = fmt.Sprintf("%s.%d", s.path, i)
		}
		if fi, err := os.Stat(name); err == nil {
			fmt.Fprintf(&b, " %d:%d", i, inodeOf(fi))
		}
	}
	return b.String()
}
