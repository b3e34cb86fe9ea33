//go:build !linux

package peers

import "syscall"

// procAttr leaves the peer in its parent's process group: the process
// group and parent-death settings used on Linux are not portable.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
