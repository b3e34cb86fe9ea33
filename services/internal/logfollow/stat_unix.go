//go:build unix

package logfollow

import (
	"os"
	"syscall"
)

// inodeOf returns the inode number of fi, or 0 when it has none.
func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // Ino is uint32 on some platforms
	}
	return 0
}
