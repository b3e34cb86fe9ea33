package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// arrivalWatch notes when each message lands in a set of maildir new/
// directories, through inotify: Dovecot writes a message under tmp/ and
// renames it into new/, so the IN_MOVED_TO event is the moment it is
// stored, to the microsecond (IMAP's INTERNALDATE has whole seconds).
// Each new file is opened at once for its Message-ID; a file the
// retriever already deleted counts as unread.
type arrivalWatch struct {
	f    *os.File
	dirs map[int32]string
	done chan struct{}

	mu      sync.Mutex
	arrived map[string]time.Time // Message-ID without <> -> first seen
	unread  int
}

func watchArrivals(dirs []string) (*arrivalWatch, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &arrivalWatch{dirs: map[int32]string{}, done: make(chan struct{}), arrived: map[string]time.Time{}}
	for _, d := range dirs {
		wd, err := syscall.InotifyAddWatch(fd, d, syscall.IN_MOVED_TO|syscall.IN_CREATE)
		if err != nil {
			syscall.Close(fd)
			return nil, fmt.Errorf("inotify watch %s: %w", d, err)
		}
		w.dirs[int32(wd)] = d
	}
	// A non-blocking descriptor in an os.File uses the runtime poller, so
	// Close ends a pending Read.
	w.f = os.NewFile(uintptr(fd), "inotify")
	go w.loop()
	return w, nil
}

func (w *arrivalWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameStart := off + syscall.SizeofInotifyEvent
			name := string(bytes.TrimRight(buf[nameStart:nameStart+int(ev.Len)], "\x00"))
			off = nameStart + int(ev.Len)
			dir, ok := w.dirs[ev.Wd]
			if !ok || name == "" || ev.Mask&syscall.IN_ISDIR != 0 {
				continue
			}
			w.note(filepath.Join(dir, name), now)
		}
	}
}

func (w *arrivalWatch) note(path string, at time.Time) {
	id, err := messageID(path)
	if err != nil {
		// Dovecot may already have moved it to cur/, with flags appended
		// to the name.
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(path)), "cur", filepath.Base(path)+"*"))
		if len(matches) > 0 {
			id, err = messageID(matches[0])
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || id == "" {
		w.unread++
		return
	}
	if _, seen := w.arrived[id]; !seen {
		w.arrived[id] = at
	}
}

// messageID reads the Message-ID header of the message file at path.
func messageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, err := textproto.NewReader(bufio.NewReader(io.LimitReader(f, 64*1024))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) && len(h) == 0 {
		return "", err
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"), nil
}

// stop ends the watch and returns the arrivals and the unread count.
func (w *arrivalWatch) stop() (map[string]time.Time, int) {
	w.f.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.arrived, w.unread
}
