//go:build !unix

package logfollow

import "os"

// inodeOf returns 0: the platform has no inode numbers; os.SameFile still
// tells files apart while they are open.
func inodeOf(os.FileInfo) uint64 { return 0 }
