//go:build unix

package cli

import (
	"errors"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"unsafe"
)

// eachMappedLine calls fn with every line of a regular file, read in place
// from a read-only memory map: no copy at all. It reports ok false when the
// file cannot be mapped (not regular, empty, too large for the address
// space), and the caller reads it instead. A line is valid only during its
// call. If the file shrinks while it is read (a log truncated by rotation),
// the fault becomes an error instead of a crash.
func eachMappedLine(f *os.File, fn func(string) bool) (ok bool, err error) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || st.Size() != int64(int(st.Size())) {
		return false, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return false, nil
	}
	defer syscall.Munmap(data)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			ok, err = true, errors.New("the file changed while it was read (truncated?)")
		}
	}()
	all := unsafe.String(&data[0], len(data))
	for all != "" {
		line := all
		if i := strings.IndexByte(all, '\n'); i >= 0 {
			line, all = all[:i], all[i+1:]
		} else {
			all = ""
		}
		if !fn(line) {
			break
		}
	}
	return true, nil
}
