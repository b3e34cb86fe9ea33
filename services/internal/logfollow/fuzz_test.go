package logfollow

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLinesMatchSplit checks that a Follower and a StreamReader both give
// exactly the complete lines of a file, cut at the line limit, with
// offsets that add up, whatever the bytes.
func FuzzLinesMatchSplit(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\nccc"), 8)
	f.Add([]byte("\n\n\n"), 4)
	f.Add(bytes.Repeat([]byte("x"), 300), 16)
	f.Add([]byte("short\n"+string(bytes.Repeat([]byte("y"), 70))+"\nend\n"), 32)
	f.Fuzz(func(t *testing.T, data []byte, maxLine int) {
		maxLine = 4 + abs(maxLine)%60
		type want struct {
			text      string
			offset    int64
			truncated bool
		}
		var wants []want
		rest, off := data, int64(0)
		for {
			nl := bytes.IndexByte(rest, '\n')
			if nl < 0 {
				break
			}
			text := rest[:nl]
			cut := len(text) > maxLine
			if cut {
				text = text[:maxLine]
			}
			wants = append(wants, want{string(bytes.TrimSuffix(text, []byte{'\r'})), off, cut})
			off += int64(nl + 1)
			rest = rest[nl+1:]
		}

		path := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fl, err := Open(Options{Path: path, FingerprintBytes: 4, MaxLineBytes: maxLine}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		var got []Line
		for {
			line, ok, err := fl.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, line)
		}
		if len(got) != len(wants) {
			t.Fatalf("follower: %d lines, want %d", len(got), len(wants))
		}
		for i, w := range wants {
			g := got[i]
			if g.Text != w.text || g.Offset != w.offset || g.Truncated != w.truncated || g.FileID != got[0].FileID {
				t.Fatalf("follower line %d: %+v, want %+v", i, g, w)
			}
			if i+1 < len(got) && g.Next.Offset != got[i+1].Offset {
				t.Fatalf("line %d ends at %d, the next starts at %d", i, g.Next.Offset, got[i+1].Offset)
			}
		}

		// A stream also returns the unterminated last line.
		s := NewStreamReader(bytes.NewReader(data), "-", maxLine, 4)
		defer s.Close()
		var streamed []Line
		for {
			line, ok, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				s.Wait(t.Context())
				continue
			}
			streamed = append(streamed, line)
		}
		if len(streamed) < len(wants) || len(streamed) > len(wants)+1 {
			t.Fatalf("stream: %d lines, want %d or one more", len(streamed), len(wants))
		}
		for i, w := range wants {
			g := streamed[i]
			if g.Text != w.text || g.Offset != w.offset || g.Truncated != w.truncated {
				t.Fatalf("stream line %d: %+v, want %+v", i, g, w)
			}
			if len(got) > 0 && g.FileID != got[0].FileID {
				t.Fatalf("stream file id %s, follower %s", g.FileID, got[0].FileID)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
