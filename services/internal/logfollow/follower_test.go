package logfollow

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fastOptions polls often and gives rotated files a short grace, so tests
// on real time stay quick.
func fastOptions(path string) Options {
	return Options{Path: path, PollInterval: 2 * time.Millisecond, RotateGrace: 20 * time.Millisecond}
}

func open(t *testing.T, opts Options, saved []Position) *Follower {
	t.Helper()
	fl, err := Open(opts, saved)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	return fl
}

// readAvailable returns the lines that are ready now, without waiting.
func readAvailable(t *testing.T, fl *Follower) []Line {
	t.Helper()
	var out []Line
	for {
		line, ok, err := fl.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, line)
	}
}

// readN reads until n lines came or 5 s passed.
func readN(t *testing.T, fl *Follower, n int) []Line {
	t.Helper()
	var out []Line
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		line, ok, err := fl.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, line)
			continue
		}
		fl.Wait(context.Background())
	}
	if len(out) != n {
		t.Fatalf("got %d lines %q, want %d", len(out), texts(out), n)
	}
	return out
}

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func equalTexts(t *testing.T, got []Line, want ...string) {
	t.Helper()
	if g := texts(got); !slices.Equal(g, want) {
		t.Fatalf("lines %q, want %q", g, want)
	}
}

func TestAppendAndPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "one\ntwo\nthr")
	fl := open(t, fastOptions(path), nil)

	got := readAvailable(t, fl)
	equalTexts(t, got, "one", "two")
	if got[0].Offset != 0 || got[1].Offset != 4 || got[1].Next.Offset != 8 {
		t.Fatalf("offsets %d %d next %d, want 0 4 8", got[0].Offset, got[1].Offset, got[1].Next.Offset)
	}
	if got[0].FileID == "" || got[0].FileID != got[1].FileID || got[1].Next.Fingerprint != got[0].FileID {
		t.Fatalf("file ids %q %q, fingerprint %q", got[0].FileID, got[1].FileID, got[1].Next.Fingerprint)
	}
	if got[1].Next.FingerprintLen != 4 {
		t.Fatalf("fingerprint covers %d bytes, want the first line's 4", got[1].Next.FingerprintLen)
	}

	// The partial line waits for its newline.
	appendFile(t, path, "ee")
	equalTexts(t, readAvailable(t, fl))
	appendFile(t, path, "\r\nfour\n")
	got = readAvailable(t, fl)
	equalTexts(t, got, "three", "four")
	if got[0].Offset != 8 || got[1].Next.Offset != 20 {
		t.Fatalf("offsets %d, next %d; want 8, 20", got[0].Offset, got[1].Next.Offset)
	}
	if lag := fl.Lag(); lag != 0 {
		t.Fatalf("lag %d at the end of the file", lag)
	}
	appendFile(t, path, "12345")
	if lag := fl.Lag(); lag != 5 {
		t.Fatalf("lag %d, want 5", lag)
	}
}

func TestFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	fl := open(t, fastOptions(path), nil)
	equalTexts(t, readAvailable(t, fl))
	appendFile(t, path, "hello\n")
	equalTexts(t, readAvailable(t, fl), "hello")
}

func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	appendFile(t, path, "1\n2\n")
	fl := open(t, fastOptions(path), nil)
	first := readAvailable(t, fl)
	equalTexts(t, first, "1", "2")

	// The writer keeps its descriptor across the rename and writes a line
	// and half of one more before it reopens the log.
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("3\nhalf"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "4\n5\n")
	got := readAvailable(t, fl)
	equalTexts(t, got, "3", "4", "5")
	if got[0].FileID != first[0].FileID || got[0].Offset != 4 || got[0].Path != path+".1" {
		t.Fatalf("the renamed file's line: %+v", got[0])
	}
	if got[1].Offset != 0 || got[1].FileID == first[0].FileID {
		t.Fatalf("the new file's first line: %+v", got[1])
	}
	// Nobody completes the half line once the old file is left alone.
	got = readN(t, fl, 1)
	equalTexts(t, got, "half")
	if got[0].Next.Offset != int64(len("1\n2\n3\nhalf")) {
		t.Fatalf("the partial last line ends at %d", got[0].Next.Offset)
	}
	if s := fl.Stats(); s.Rotations != 1 || s.Lost != 0 || s.Files != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	appendFile(t, path, "1\n2\n")
	fl := open(t, fastOptions(path), nil)
	first := readAvailable(t, fl)
	equalTexts(t, first, "1", "2")

	// Lines 3 and 4 arrive and are copied away before the reader sees them.
	appendFile(t, path, "3\n4\n")
	copyFile(t, path, path+".1")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "5\n")
	got := readAvailable(t, fl)
	equalTexts(t, got, "3", "4", "5")
	if got[0].FileID != first[0].FileID || got[0].Offset != 4 {
		t.Fatalf("the copy's lines must keep the original file id and offsets: %+v", got[0])
	}
	if got[2].Offset != 0 || got[2].FileID == first[0].FileID {
		t.Fatalf("after the truncation: %+v", got[2])
	}
	if s := fl.Stats(); s.Truncations != 1 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTruncatedWithoutCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "1\n2\n")
	fl := open(t, fastOptions(path), nil)
	equalTexts(t, readAvailable(t, fl), "1", "2")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "3\n")
	equalTexts(t, readAvailable(t, fl), "3")
	if s := fl.Stats(); s.Truncations != 1 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A file rewritten in place with another head, and already longer than the
// offset, is told apart by its fingerprint.
func TestReplacedInPlaceWithAnotherHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "first\n")
	fl := open(t, fastOptions(path), nil)
	equalTexts(t, readAvailable(t, fl), "first")
	if err := os.WriteFile(path, []byte("other head\nmore\n"), 0o644); err != nil { // O_TRUNC: same inode
		t.Fatal(err)
	}
	got := readAvailable(t, fl)
	equalTexts(t, got, "other head", "more")
	if got[0].Offset != 0 {
		t.Fatalf("offset %d", got[0].Offset)
	}
}

// restart closes fl and opens a follower from its checkpoint, as a crash
// and restart would.
func restart(t *testing.T, fl *Follower, opts Options) *Follower {
	t.Helper()
	cp := fl.Checkpoint()
	fl.Close()
	return open(t, opts, cp)
}

func TestRestartFromCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "1\n2\n3\n")
	fl := open(t, fastOptions(path), nil)
	got := readAvailable(t, fl)
	fl.Handled(got[1].Next) // line 3 read but not handled when we crash

	appendFile(t, path, "4\n")
	fl = restart(t, fl, fastOptions(path))
	again := readAvailable(t, fl)
	equalTexts(t, again, "3", "4")
	if again[0].FileID != got[2].FileID || again[0].Offset != got[2].Offset {
		t.Fatalf("line 3 re-read as (%s, %d), first read as (%s, %d)", again[0].FileID, again[0].Offset, got[2].FileID, got[2].Offset)
	}
	fl.Handled(again[0].Next)
	fl.Handled(got[0].Next) // older positions do not move it back
	cp := fl.Checkpoint()
	if len(cp) != 1 || cp[0].Offset != again[0].Next.Offset || cp[0].Path != path {
		t.Fatalf("checkpoint %+v", cp)
	}
}

// The fingerprint depends on the content only: a file first read when it
// was one line long and again when it is long gets the same FileID.
func TestFileIDDoesNotDependOnFileSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "short first line\n")
	fl := open(t, fastOptions(path), nil)
	id := readAvailable(t, fl)[0].FileID
	fl.Close()

	appendFile(t, path, strings.Repeat("x", 10000)+"\n")
	fl = open(t, fastOptions(path), nil)
	if got := readAvailable(t, fl)[0].FileID; got != id {
		t.Fatalf("file id changed as the file grew: %s then %s", id, got)
	}

	s := NewStreamReader(strings.NewReader("short first line\nmore\n"), "-", 0, 0)
	defer s.Close()
	line := waitStream(t, s)
	if line.FileID != id {
		t.Fatalf("stdin gives file id %s, the file %s", line.FileID, id)
	}
}

func TestRotationWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	opts := fastOptions(path)
	opts.RotatedGlobs = []string{path + ".[0-9]*"}
	appendFile(t, path, "a1\na2\na3\n")
	fl := open(t, opts, nil)
	fl.Handled(readAvailable(t, fl)[1].Next)
	cp := fl.Checkpoint()
	fl.Close()

	// While we are down: a3 was handled by nobody; the log is rotated
	// twice (rename, numbered), and a compressed older file lies around.
	appendFile(t, path, "a4\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "b1\n")
	if err := os.Rename(path+".1", path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".3.gz", "\x1f\x8b garbage\n")
	appendFile(t, path, "c1\nc2\n")
	fl = open(t, opts, cp)
	equalTexts(t, readAvailable(t, fl), "a3", "a4", "b1", "c1", "c2")
	if s := fl.Stats(); s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCopyTruncateWhileStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "a1\na2\na3\n")
	fl := open(t, fastOptions(path), nil)
	fl.Handled(readAvailable(t, fl)[0].Next)
	cp := fl.Checkpoint()
	fl.Close()

	copyFile(t, path, path+".1")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "b1 is a longer line than a1 was\n")
	fl = open(t, fastOptions(path), cp)
	equalTexts(t, readAvailable(t, fl), "a2", "a3", "b1 is a longer line than a1 was")
}

// Without a checkpoint, rotated files are history; with one, a file never
// seen is read from its start.
func TestFirstStartSkipsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path+".1", "old\n")
	appendFile(t, path, "current\n")
	fl := open(t, fastOptions(path), nil)
	got := readAvailable(t, fl)
	equalTexts(t, got, "current")
	fl.Handled(got[0].Next)
	cp := fl.Checkpoint()
	if len(cp) != 2 {
		t.Fatalf("checkpoint %+v", cp)
	}
	fl.Close()

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "next\n")
	fl = open(t, fastOptions(path), cp)
	equalTexts(t, readAvailable(t, fl), "next")
}

func TestFileRenamedOutOfSightIsReadToItsEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	appendFile(t, path, "1\n")
	fl := open(t, fastOptions(path), nil)
	equalTexts(t, readAvailable(t, fl), "1")
	if err := os.Rename(path, filepath.Join(dir, "archived")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "archived"), "2\n")
	appendFile(t, path, "3\n")
	equalTexts(t, readAvailable(t, fl), "2", "3")
}

func TestSameHeadOnlyTheLongerIsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "same head\nx1\n")
	copyFile(t, path, path+".1")
	appendFile(t, path, "x2\n")
	fl := open(t, fastOptions(path), nil)
	equalTexts(t, readAvailable(t, fl), "same head", "x1", "x2")
}

func TestLongLinesAreCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	long := strings.Repeat("z", 200_000)
	appendFile(t, path, "a\n"+long+"\nb\n")
	opts := fastOptions(path)
	opts.MaxLineBytes = 4096
	fl := open(t, opts, nil)
	got := readAvailable(t, fl)
	if len(got) != 3 || got[1].Text != long[:4096] || !got[1].Truncated || got[2].Text != "b" || got[2].Offset != int64(2+len(long)+1) {
		t.Fatalf("got %d lines; second %d bytes truncated=%v", len(got), len(got[1].Text), got[1].Truncated)
	}
	if got[1].Next.Offset != got[2].Offset {
		t.Fatalf("the cut line's next position %d is not the next line's start %d", got[1].Next.Offset, got[2].Offset)
	}
}

func TestStartAtEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "old\nhalf of a li")
	opts := fastOptions(path)
	opts.StartAtEnd = true
	fl := open(t, opts, nil)
	equalTexts(t, readAvailable(t, fl))
	appendFile(t, path, "ne\nnew\n")
	equalTexts(t, readAvailable(t, fl), "new")
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{},
		{Path: "x", FingerprintBytes: MaxFingerprintBytes + 1},
		{Path: "x", MaxLineBytes: 10},
		{Path: "x", RotatedGlobs: []string{"["}},
		{Path: "x", RotateGrace: -1},
	} {
		if _, err := Open(o, nil); err == nil {
			t.Errorf("Open(%+v) accepted", o)
		}
	}
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "x")}, []Position{{Fingerprint: "ab", FingerprintLen: 0}}); err == nil {
		t.Error("a malformed saved position was accepted")
	}
}

func waitStream(t *testing.T, s *StreamReader) Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		line, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return line
		}
		s.Wait(ctx)
	}
	t.Fatal("no line from the stream")
	return Line{}
}

func TestStreamReader(t *testing.T) {
	pr, pw := io.Pipe()
	s := NewStreamReader(pr, "stdin", 8, 4)
	defer s.Close()
	go func() {
		fmt.Fprint(pw, "one\r\nthis line is long\n")
		time.Sleep(10 * time.Millisecond)
		fmt.Fprint(pw, "last")
		pw.Close()
	}()
	var got []Line
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		line, ok, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			s.Wait(ctx)
			continue
		}
		got = append(got, line)
	}
	equalTexts(t, got, "one", "this lin", "last")
	if !got[1].Truncated || got[1].Offset != 5 || got[2].Offset != 23 || got[2].Next.Offset != 27 || got[0].Path != "stdin" {
		t.Fatalf("lines %+v", got)
	}
	if got[0].FileID == "" || got[0].FileID != got[2].FileID {
		t.Fatalf("file ids %q %q", got[0].FileID, got[2].FileID)
	}
	if _, _, err := s.Next(); err != io.EOF {
		t.Fatalf("after the end: %v", err)
	}
}

func TestLookback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	appendFile(t, path, "a\nbb\nccc\ndddd\n")
	fl := open(t, fastOptions(path), nil)
	got := readAvailable(t, fl)
	fl.Handled(got[2].Next) // a, bb, ccc handled; dddd not
	fl = restart(t, fl, fastOptions(path))

	back, err := fl.Lookback(7) // "bb\nccc\n" is 7 bytes before offset 9
	if err != nil {
		t.Fatal(err)
	}
	equalTexts(t, back, "bb", "ccc")
	if back[0].Offset != 2 || back[1].FileID != got[2].FileID {
		t.Fatalf("lookback %+v", back)
	}
	back, _ = fl.Lookback(5) // starts mid "bb": only ccc
	equalTexts(t, back, "ccc")
	equalTexts(t, readAvailable(t, fl), "dddd")
}
